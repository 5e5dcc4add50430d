"""Cells whose state is a matrix per head, written by outer products:
gated linear attention, the mLSTM of xLSTM, Mamba-2.

Per head, with `q_t, k_t` of `key_dim` and `v_t` of `value_dim`:

    S_t = diag(exp(g_t)) S_{t-1} + k_t v_tᵀ        (key_dim x value_dim)
    o_t = S_tᵀ q_t

`g_t` is the log decay, one per head (Mamba-2's `Δ_t A`, mLSTM's forget gate)
or one per key dimension (GLA's). With `normalized`, the mLSTM's form: an
exponential input gate `exp(i_t)` scales the write, a normaliser `n_t` follows
the same recurrence with `k_t` for `k_t v_tᵀ`, and a stabiliser `m_t` keeps
the exponentials finite (xLSTM, Beck et al. 2024, eq. 19-27):

    m_t = max(g_t + m_{t-1}, i_t)
    C_t = exp(g_t + m_{t-1} - m_t) C_{t-1} + exp(i_t - m_t) k_t v_tᵀ
    n_t = exp(g_t + m_{t-1} - m_t) n_{t-1} + exp(i_t - m_t) k_t
    o_t = C_tᵀ q_t / (max(|n_tᵀ q_t|, exp(-m_t)) + eps)

The gates depend on the step's input alone, so a whole sequence is chunkwise
parallel (`keras_rnnx.kernels.chunkwise`); one step is the equations above,
so these cells also run in any loop, stream and carry state like other cells.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import keras
from keras import ops

from keras_rnnx.cells.base import Options, ZeroStates
from keras_rnnx.types import Config, Structure, Tensor

# mLSTM's denominator floor, as in xLSTM's and mlstm_kernels' step.
EPSILON = 1e-6
# RMSNorm's epsilon in the papers' code (fla's and mamba_ssm's `norm_eps`).
NORM_EPSILON = 1e-5


class MatrixGates(NamedTuple):
    """One step's (or a sequence's) gates of a matrix-state cell, as
    `MatrixRecurrentCell.gates` returns them: each with the input's leading
    axes, then `(heads, ...)`.

    Args:
        query: `(..., heads, key_dim)`, `q_t` (with any scale applied).
        key: `(..., heads, key_dim)`, `k_t`.
        value: `(..., heads, value_dim)`, `v_t`.
        log_decay: `(..., heads, 1)` (one per head) or `(..., heads,
            key_dim)`, `g_t`, at most 0 for a decay.
        log_input: `(..., heads, 1)`, the exponential input gate's
            pre-activation `i_t` (normalized cells only, else `None`).

    Returns:
        A named tuple.

    Raises:
        TypeError: a required field is missing (as any named tuple).

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> q = k = v = np.ones((2, 4, 8), "float32")
        >>> gates = keras_rnnx.MatrixGates(q, k, v, np.zeros((2, 4, 1), "float32"))
        >>> gates.log_input is None
        True
    """

    query: Tensor
    key: Tensor
    value: Tensor
    log_decay: Tensor
    log_input: Tensor | None = None


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"Expected `{name}` to be a positive integer. Received: {name}={value!r}")
    return value


def heads_dividing(units: int, heads: Any) -> int:
    """`heads`, checked: a positive int that divides `units`."""
    if isinstance(heads, bool) or not isinstance(heads, int) or heads <= 0 or units % heads:
        raise ValueError(
            f"Expected `heads` to be a positive integer dividing `units` ({units}). "
            f"Received: heads={heads!r}"
        )
    return heads


def dt_range(dt_min: Any, dt_max: Any) -> tuple[float, float]:
    """Mamba-2's initial range of `Δ` (Gated DeltaNet's too), checked."""
    numbers = (dt_min, dt_max)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers) or not (
        0 < dt_min < dt_max
    ):
        raise ValueError(
            f"Expected 0 < `dt_min` < `dt_max`. Received: dt_min={dt_min!r}, dt_max={dt_max!r}"
        )
    return float(dt_min), float(dt_max)


def build_decay(cell: Any, a_min: float) -> None:
    """Mamba-2's decay weights on `cell` (one per head): `dt_bias`,
    `softplus⁻¹` of a `Δ` log-uniform in `[cell.dt_min, cell.dt_max]`, and
    `A_log`, the log of an `A` uniform in `[a_min, 16]`."""
    low, high = math.log(cell.dt_min), math.log(cell.dt_max)

    def dt_bias_init(shape, dtype=None):
        dt = ops.exp(keras.random.uniform(shape, low, high, dtype=dtype))
        return dt + ops.log(-ops.expm1(-dt))  # softplus⁻¹(dt)

    def a_log_init(shape, dtype=None):
        return ops.log(keras.random.uniform(shape, a_min, 16.0, dtype=dtype))

    heads = cell.heads
    cell.dt_bias = cell.add_weight(shape=(heads,), name="dt_bias", initializer=dt_bias_init)
    cell.A_log = cell.add_weight(shape=(heads,), name="A_log", initializer=a_log_init)


def build_query_key_value(cell: Any, features: int) -> None:
    """`cell.kernel`, `[W_q | W_k | W_v]`: `(features, heads (2 key_dim +
    value_dim))`."""
    cell.kernel = cell.add_weight(
        shape=(features, cell.heads * (2 * cell.key_dim + cell.value_dim)),
        name="kernel",
        initializer=cell.kernel_initializer,
    )


def query_key_value(cell: Any, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """`z = x [W_q | W_k | W_v]` split into `q`, `k`, `v`, each `(..., heads, dim)`."""
    width = cell.heads * cell.key_dim
    q, k, v = ops.split(z, [width, 2 * width], axis=-1)
    return split_heads(q, cell.heads), split_heads(k, cell.heads), split_heads(v, cell.heads)


def split_heads(x: Tensor, heads: int) -> Tensor:
    """`(..., heads * dim)` as `(..., heads, dim)` (leading axes may be
    unknown when traced)."""
    return ops.reshape(x, (*ops.shape(x)[:-1], heads, x.shape[-1] // heads))


def merge_heads(x: Tensor) -> Tensor:
    """`(..., heads, dim)` as `(..., heads * dim)`, the heads side by side."""
    return ops.reshape(x, (*ops.shape(x)[:-2], x.shape[-2] * x.shape[-1]))


def rms_norm(o: Tensor, scale: Tensor, epsilon: float = NORM_EPSILON) -> Tensor:
    """`o / rms(o) * scale` over the last axis (each head's values)."""
    return o * ops.rsqrt(ops.mean(ops.square(o), axis=-1, keepdims=True) + epsilon) * scale


def build_gated_norm(cell: Any, features: int) -> None:
    """The weights of `gated_norm` that `cell`'s `output_gate` and
    `normalize` options ask for."""
    width = cell.heads * cell.value_dim
    if cell.output_gate:
        cell.output_gate_kernel = cell.add_weight(
            shape=(features, width),
            name="output_gate_kernel",
            initializer=cell.kernel_initializer,
        )
        cell.output_gate_bias = cell.add_weight(
            shape=(width,), name="output_gate_bias", initializer="zeros"
        )
    if cell.normalize:
        cell.norm_scale = cell.add_weight(
            shape=(cell.value_dim,), name="norm_scale", initializer="ones"
        )


def gated_norm(cell: Any, o: Tensor, inputs: Tensor, activation: Any) -> Tensor:
    """The readout of GLA's and xLSTM's blocks: each head's `o` RMS-normalised
    (`normalize`), the heads side by side, gated by `activation(x W + b)`
    (`output_gate`)."""
    if cell.normalize:
        o = rms_norm(o, cell.norm_scale)
    y = merge_heads(o)
    if cell.output_gate:
        y = y * activation(ops.matmul(inputs, cell.output_gate_kernel) + cell.output_gate_bias)
    return y


def _read(q: Tensor, state: Tensor) -> Tensor:
    """`Sᵀ q` per head, as a sum of products (which promote mixed dtypes, as
    Keras's cells' ops do; an einsum on torch does not)."""
    return ops.sum(ops.expand_dims(q, -1) * state, axis=-2)


class MatrixRecurrentCell(keras.layers.Layer, Options, ZeroStates):
    """A cell whose state is a `(key_dim, value_dim)` matrix per head (the
    module's equations).

    Subclasses define `gates(inputs)`, which gives the step's `MatrixGates`
    for inputs of any leading shape (one step `(batch, features)` or a
    sequence `(batch, time, features)`), and `readout(o, inputs)`, the output
    from `o_t` `(..., heads, value_dim)` and the input. The cell's `call`,
    which every loop runs, and the chunkwise kernel, which runs a whole
    sequence at once, are both built from them, so they agree.

    States: `S (batch, heads, key_dim, value_dim)`; with `normalized`, also
    `n (batch, heads, key_dim)` and `m (batch, heads)`.

    A subclass whose `gates` give a decay per key dimension sets the class
    attribute `decay_per_key = True` (as `GLACell`): on JAX's CPU, where the
    compiled step loop infers those faster, the loop then runs inference.

    Args:
        heads: positive int, the number of heads.
        key_dim: positive int, the size of queries and keys per head.
        value_dim: positive int, the size of values per head (default
            `key_dim`).
        chunk_size: positive int, the steps per chunk of the chunkwise
            kernel, or `None` to choose by shape (64).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called as `cell(inputs, states)`: `(output, new_states)`.

    Raises:
        ValueError: `heads`, `key_dim`, `value_dim` or `chunk_size` not a
            positive int.

    Examples:
        Linear attention with a fixed decay, `S_t = 0.9 S_{t-1} + k_t v_tᵀ`:

        >>> import math, keras, numpy as np, keras_rnnx
        >>> class Decaying(keras_rnnx.MatrixRecurrentCell):
        ...     def build(self, input_shape):
        ...         self.kernel = self.add_weight(shape=(input_shape[-1], 3 * self.heads * 4))
        ...     def gates(self, inputs):
        ...         z = keras.ops.matmul(inputs, self.kernel)
        ...         q, k, v = keras.ops.split(z, 3, axis=-1)
        ...         shape = (*keras.ops.shape(z)[:-1], self.heads, 4)
        ...         q, k, v = (keras.ops.reshape(t, shape) for t in (q, k, v))
        ...         decay = keras.ops.full_like(q[..., :1], math.log(0.9))
        ...         return keras_rnnx.MatrixGates(q, k, v, decay)
        >>> layer = keras_rnnx.RNN(Decaying(heads=2, key_dim=4), return_sequences=True)
        >>> tuple(layer(np.ones((2, 100, 3), "float32")).shape)
        (2, 100, 8)
    """

    normalized = False
    # Whether `gates` gives a decay per key dimension (GLA's), which some
    # backends infer faster by the step loop (`kernels/chunkwise.py`).
    decay_per_key = False
    options: tuple[str, ...] = ("heads", "key_dim", "value_dim")
    own_options: dict = {"chunk_size": None}

    def __init__(
        self,
        heads: int,
        key_dim: int,
        value_dim: int | None = None,
        *,
        chunk_size: int | None = None,
        **kwargs: Any,
    ):
        heads = _positive_int("heads", heads)
        key_dim = _positive_int("key_dim", key_dim)
        value_dim = key_dim if value_dim is None else _positive_int("value_dim", value_dim)
        if chunk_size is not None:
            _positive_int("chunk_size", chunk_size)
        super().__init__(**kwargs)
        self.heads, self.key_dim, self.value_dim = heads, key_dim, value_dim
        self.chunk_size = chunk_size

    @property
    def state_size(self) -> Any:
        matrix = (self.heads, self.key_dim, self.value_dim)
        if self.normalized:
            return [matrix, (self.heads, self.key_dim), self.heads]
        return [matrix]

    @property
    def output_size(self) -> Any:
        return self.heads * self.value_dim

    def gates(self, inputs: Structure) -> MatrixGates:
        """The gates for `inputs` (`(..., features)`), as `MatrixGates`."""
        raise NotImplementedError

    def readout(self, o: Tensor, inputs: Structure) -> Tensor:
        """The output from `o` `(..., heads, value_dim)` and the step's
        `inputs` (any leading shape); default: the heads side by side."""
        return merge_heads(o)

    def call(self, inputs: Structure, states: Structure) -> Structure:
        q, k, v, log_decay, log_input = self.gates(inputs)
        state = states[0]
        decay = ops.exp(ops.expand_dims(log_decay, -1))
        if not self.normalized:
            state = decay * state + ops.expand_dims(k, -1) * ops.expand_dims(v, -2)
            return self.readout(_read(q, state), inputs), [state]
        if log_input is None:
            raise ValueError(
                f"{type(self).__name__} is normalized: its `gates` must give `log_input`."
            )
        n, m = states[1], states[2]
        log_decay, log_input = log_decay[..., 0], log_input[..., 0]
        m_new = ops.maximum(log_decay + m, log_input)
        f = ops.exp(log_decay + m - m_new)[..., None]
        i = ops.exp(log_input - m_new)[..., None]
        n = f * n + i * k
        state = f[..., None] * state + i[..., None] * ops.expand_dims(k, -1) * ops.expand_dims(
            v, -2
        )
        numerator = _read(q, state)
        denominator = ops.abs(ops.sum(q * n, axis=-1, keepdims=True))
        floor = ops.exp(-m_new)[..., None]
        o = numerator / (ops.maximum(denominator, floor) + EPSILON)
        return self.readout(o, inputs), [state, n, m_new]

    def get_config(self) -> Config:
        return {**super().get_config(), **self.options_config()}
