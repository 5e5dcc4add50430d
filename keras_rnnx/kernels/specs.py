"""Fused-cell specs: what a fused (cuDNN-style) kernel needs to know of a cell.

A fused kernel runs a whole sequence with a vendor's built-in gate equations
(cuDNN, torch's ATen/oneDNN). It can run a cell whose step is one of those
equations: a `FusedSpec` says which one (the vendor `mode`), and how the cell's
Keras weights map onto the vendor's layout. Kernels read the spec; none of
them tests a cell's class. A package adds a spec for its own cell with
`register_fused_spec`, and every fused kernel that runs that `mode` runs it.

A spec declares one form of cell, the vendors' gated RNNs, so its modes are
theirs. A family of cells with a kernel of its own declares its form as a
cell class instead, as `LinearRecurrentCell` declares a linear recurrence for
the parallel scan ("A family with its own kernel" in docs/architecture.md).

The vendor layout is cuDNN's (and torch's): per direction, `w_ih (gates *
units, features)`, `w_hh (gates * units, units)`, `b_ih` and `b_hh (gates *
units,)`, gate blocks in the vendor's order. Keras keeps `kernel (features,
gates * units)` and `recurrent_kernel (units, gates * units)`, so the matrices
are transposed, and gate blocks are permuted by `gate_order`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_rnnx.cells.gru import GRUCell
from keras_rnnx.cells.lstm import LSTMCell
from keras_rnnx.cells.simple_rnn import SimpleRNNCell
from keras_rnnx.registry import Registry
from keras_rnnx.types import Cell, Tensor

# The vendor modes, with their gate blocks and states per unit.
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
STATES = {"lstm": 2, "gru": 1, "rnn_tanh": 1, "rnn_relu": 1}
MODES = tuple(GATES)
BIAS_LAYOUTS = ("one", "two")

TANH, SIGMOID, RELU = (keras.activations.get(n) for n in ("tanh", "sigmoid", "relu"))


@dataclasses.dataclass(frozen=True)
class FusedSpec:
    """How fused kernels run one cell class: the vendor mode and weight layout.

    Args:
        cell: the cell class, matched exactly (a subclass may change the step,
            so it needs its own spec).
        mode: the vendor's equations: `"lstm"` (gates i, f, g, o; states
            `[h, c]`), `"gru"` (cuDNN's GRU: gates r, z, n, the reset gate
            applied after the recurrent matmul, as Keras's `reset_after=True`),
            `"rnn_tanh"` or `"rnn_relu"`.
        gate_order: for each of the vendor's gate blocks, in its order, the
            index of the cell's block; `(1, 0, 2)` for a Keras GRU, whose
            blocks are (z, r, h). Defaults to the identity.
        bias: `"one"`: `bias` is `(gates * units,)`, added once (the vendor's
            recurrent bias is zeros); `"two"`: `bias` is `(2, gates * units)`,
            the input bias then the recurrent one.
        options: attribute values the cell must have for the equations to be
            its own, e.g. `{"activation": <tanh>, "reset_after": True}`; a cell
            with other values runs another kernel, and `explain` says why.
        projection: for mode `"lstm"`, the name of the cell's attribute that
            holds its output projection `(units, proj_size)` (torch's
            `weight_hr` transposed; `"projection_kernel"` for `LSTMCell`), or
            None when the cell never projects. A cell whose attribute is None
            does not project.

    The cell has `units`, `kernel`, `recurrent_kernel` and `bias` (`None`
    without one), as the built-in cells do; `dropout` and
    `recurrent_dropout` if it has dropout masks.

    Returns:
        A frozen dataclass instance.

    Raises:
        ValueError: an unknown `mode` or `bias`, or a `gate_order` that is not a
            permutation of the mode's gates.

    Examples:
        A GRU variant with Keras's GRU weights, run by the fused GRU kernels:

        >>> import keras, keras_rnnx
        >>> class MyGRUCell(keras_rnnx.GRUCell):
        ...     pass
        >>> spec = keras_rnnx.FusedSpec(
        ...     MyGRUCell, "gru", gate_order=(1, 0, 2), bias="two",
        ...     options={"activation": keras.activations.tanh,
        ...              "recurrent_activation": keras.activations.sigmoid,
        ...              "reset_after": True})
        >>> spec.gates, spec.states
        (3, 1)
    """

    cell: type
    mode: str
    gate_order: tuple[int, ...] | None = None
    bias: str = "one"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    projection: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(
                f"Expected `mode` to be one of {', '.join(MODES)}. Received: mode={self.mode!r}"
            )
        if self.bias not in BIAS_LAYOUTS:
            raise ValueError(f"Expected `bias` to be 'one' or 'two'. Received: bias={self.bias!r}")
        order = tuple(range(self.gates)) if self.gate_order is None else tuple(self.gate_order)
        if sorted(order) != list(range(self.gates)):
            raise ValueError(
                f"Expected `gate_order` to be a permutation of {tuple(range(self.gates))} "
                f"for mode {self.mode!r}. Received: gate_order={self.gate_order!r}"
            )
        if self.projection is not None and self.mode != "lstm":
            raise ValueError(
                "Expected `projection` only for mode 'lstm' (the vendors project "
                f"LSTMs only). Received: projection={self.projection!r}, mode={self.mode!r}"
            )
        object.__setattr__(self, "gate_order", order)

    @property
    def gates(self) -> int:
        """Gate blocks per unit: 4 for LSTM, 3 for GRU, 1 for a simple RNN."""
        return GATES[self.mode]

    @property
    def states(self) -> int:
        """How many states the cell has: 2 (`h`, `c`) for LSTM, else 1."""
        return STATES[self.mode]

    def fits(self, cell: Cell) -> bool:
        """Whether `cell` has the option values these equations need."""
        return all(_is(getattr(cell, name, None), v) for name, v in self.options.items())

    def projects(self, cell: Cell) -> bool:
        """Whether `cell` projects its output (has a projection weight)."""
        return self.projection is not None and getattr(cell, self.projection, None) is not None

    def vendor_weights(
        self, cell: Cell, dtype: Any = None, recurrent_kernel_mask: Tensor | None = None
    ) -> list[Tensor | None]:
        """`[w_ih, w_hh, b_ih, b_hh]` of `cell` in the vendor layout (see the
        module docstring), differentiable, cast to `dtype`; the biases are
        `None` when the cell has no bias. `recurrent_kernel_mask` (DropConnect,
        shaped as `recurrent_kernel`) multiplies the recurrent kernel. A cell
        that projects has a fifth weight, `w_hr (proj_size, units)`, as torch's
        (`w_hh` is then `(gates * units, proj_size)`)."""
        kernel, recurrent = cell.kernel, cell.recurrent_kernel
        if recurrent_kernel_mask is not None:
            recurrent = ops.multiply(recurrent, ops.cast(recurrent_kernel_mask, recurrent.dtype))
        # The variable's shape, not the tensor's: a torch trace records sizes
        # read from tensors as computed, and OpenVINO needs them constant.
        block = cell.recurrent_kernel.shape[-1] // self.gates
        weights = [
            self._blocks(ops.transpose(kernel), block),
            self._blocks(ops.transpose(recurrent), block),
        ]
        bias = getattr(cell, "bias", None)
        if bias is None:
            weights += [None, None]
        elif self.bias == "two":
            weights += [self._blocks(bias[0], block), self._blocks(bias[1], block)]
        else:
            bias = self._blocks(bias, block)
            weights += [bias, ops.zeros_like(bias)]
        if self.projection is not None and self.projects(cell):
            weights.append(ops.transpose(getattr(cell, self.projection)))
        dtype = dtype or kernel.dtype
        return [None if w is None else ops.cast(w, dtype) for w in weights]

    def set_vendor_weights(self, cell: Cell, weights: Any) -> None:
        """Set a built `cell`'s weights from `weights` in the vendor layout,
        the inverse of `vendor_weights`: `[w_ih, w_hh, b_ih, b_hh]` (and
        `w_hr` for a cell that projects), arrays; a bias layout `"one"` adds
        the two biases, and a cell without a bias takes `None`s."""
        arrays: list[Any] = [None if w is None else np.asarray(w) for w in weights]
        w_ih, w_hh, b_ih, b_hh, *projection = arrays
        cell.kernel.assign(self._cell_blocks(w_ih).T)
        cell.recurrent_kernel.assign(self._cell_blocks(w_hh).T)
        if getattr(cell, "bias", None) is not None:
            if self.bias == "two":
                cell.bias.assign(np.stack([self._cell_blocks(b_ih), self._cell_blocks(b_hh)]))
            else:
                cell.bias.assign(self._cell_blocks(b_ih + b_hh))
        if projection and self.projection is not None:
            getattr(cell, self.projection).assign(projection[0].T)

    def _cell_blocks(self, w):
        """`w`'s gate blocks (along its first axis) back in the cell's order."""
        blocks = np.split(w, self.gates, axis=0)
        return np.concatenate([blocks[self.gate_order.index(i)] for i in range(self.gates)])

    def _blocks(self, w, block):
        """`w`'s gate blocks (along its first axis, `block` rows each) in the
        vendor's order."""
        w = ops.convert_to_tensor(w)
        if self.gate_order == tuple(range(self.gates)):
            return w
        return ops.concatenate([w[i * block : (i + 1) * block] for i in self.gate_order], axis=0)


def _is(value, wanted) -> bool:
    return value is wanted or value == wanted


def _name(value) -> str:
    return getattr(value, "__name__", repr(value))


def _mismatch(name, value, allowed) -> str:
    if all(isinstance(a, bool) for a in allowed):
        return f"{name}={value!r}"
    return f"{name} is not {' or '.join(_name(a) for a in allowed)}"


# Plugins register theirs as their modules are imported: no entry points.
SPECS: Registry[FusedSpec] = Registry()


def register_fused_spec(spec: FusedSpec) -> FusedSpec:
    """Let the fused kernels run `spec.cell` (those that run `spec.mode`).

    A cell class may have several specs (a SimpleRNN cell has one for tanh and
    one for relu); the first whose `options` the cell has is used.

    Args:
        spec: a `FusedSpec`.

    Returns:
        `spec`.

    Raises:
        TypeError: `spec` is not a `FusedSpec`.

    Examples:
        >>> import keras, keras_rnnx
        >>> class MyGRUCell(keras_rnnx.GRUCell):
        ...     pass
        >>> _ = keras_rnnx.register_fused_spec(keras_rnnx.FusedSpec(
        ...     MyGRUCell, "gru", gate_order=(1, 0, 2), bias="two",
        ...     options={"activation": keras.activations.tanh,
        ...              "recurrent_activation": keras.activations.sigmoid,
        ...              "reset_after": True}))
        >>> keras_rnnx.fused_spec(MyGRUCell(4)).mode
        'gru'
    """
    if not isinstance(spec, FusedSpec):
        raise TypeError(f"Expected `spec` to be a keras_rnnx.FusedSpec. Received: spec={spec!r}")
    return SPECS.register(spec)


def fused_spec(cell: Cell, modes: tuple[str, ...] = MODES) -> FusedSpec | None:
    """The spec fused kernels run `cell` by, or None if it has none.

    Args:
        cell: a cell.
        modes: only specs of these vendor modes (those a kernel runs).

    Returns:
        The first registered spec for `type(cell)` whose options the cell has.

    Raises:
        Nothing: a cell with no spec gives `None`.

    Examples:
        >>> import keras_rnnx
        >>> keras_rnnx.fused_spec(keras_rnnx.LSTMCell(4)).mode
        'lstm'
        >>> keras_rnnx.fused_spec(keras_rnnx.GRUCell(4, reset_after=False)) is None
        True
    """
    spec, _ = find_spec(cell, modes)
    return spec


def spec_of(cell: Cell) -> FusedSpec:
    """The spec of a cell a fused kernel has accepted, which has one.

    Raises:
        ValueError: `cell` has none (a kernel ran a cell it should have declined).
    """
    spec = fused_spec(cell)
    if spec is None:
        raise ValueError(f"{type(cell).__name__} has no fused spec; no fused kernel runs it.")
    return spec


def find_spec(cell: Cell, modes: tuple[str, ...] = MODES) -> tuple[FusedSpec | None, str | None]:
    """`(spec, None)` as `fused_spec`, or `(None, the reason there is none)`."""
    ours = [s for s in SPECS.items() if type(cell) is s.cell and s.mode in modes]
    if not ours:
        fused = dict.fromkeys(s.cell.__name__ for s in SPECS.items() if s.mode in modes)
        return None, f"no fused kernel for {type(cell).__name__} (fused: {', '.join(fused)})"
    for spec in ours:
        if spec.fits(cell):
            return spec, None
    # Name every value some spec accepts, option by option.
    reasons = []
    for name in dict.fromkeys(n for s in ours for n in s.options):
        allowed: list = []
        for a in (s.options[name] for s in ours if name in s.options):
            allowed += [] if any(_is(a, b) for b in allowed) else [a]
        value = getattr(cell, name, None)
        if not any(_is(value, a) for a in allowed):
            reasons.append(_mismatch(name, value, allowed))
    return None, " or ".join(reasons)


_ACTIVATIONS = {"activation": TANH, "recurrent_activation": SIGMOID}

for _spec in (
    FusedSpec(LSTMCell, "lstm", options=_ACTIVATIONS, projection="projection_kernel"),
    FusedSpec(
        GRUCell,
        "gru",
        gate_order=(1, 0, 2),
        bias="two",
        options={**_ACTIVATIONS, "reset_after": True},
    ),
    FusedSpec(SimpleRNNCell, "rnn_tanh", options={"activation": TANH}),
    FusedSpec(SimpleRNNCell, "rnn_relu", options={"activation": RELU}),
):
    register_fused_spec(_spec)
