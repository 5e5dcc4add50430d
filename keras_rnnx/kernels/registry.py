"""The kernel registry: what a kernel is, what it is given, and registration.

A kernel runs a whole recurrent sequence for some cells on some backends. A
layer describes each call as a `RecurrentCall`; each registered kernel
answers `why_not(call)`: `None` if it can run this call, else the reason it
cannot. `kernels/selection.py` picks the kernel that runs it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import warnings
from typing import Any, Protocol, runtime_checkable

import keras

from keras_rnnx.cells.base import step_arguments
from keras_rnnx.cells.dropout import foreign_cells_masks
from keras_rnnx.cells.stacked import step_masks_argument
from keras_rnnx.context import CallContext
from keras_rnnx.registry import Registry

logger = logging.getLogger("keras_rnnx")


@dataclasses.dataclass(frozen=True)
class RecurrentCall:
    """Everything a kernel needs to run one sequence; a layer makes one per call.

    Frozen: kernels read it (a kernel that runs a variant of the call, as
    torch's segments do, makes one with `dataclasses.replace`).

    Args:
        cell: the cell to run (already built).
        inputs: the input structure: `(batch, time, ...)` tensors, in the
            cell's compute dtype, zeros at masked steps.
        states: the initial state structure, as the cell's `state_size`.
        mask: a `(batch, time)` boolean tensor, or `None`.
        training: whether dropout is active.
        go_backwards: process the sequence from its end.
        unroll: the user asked for an unrolled loop.
        zero_output_for_mask: output zeros at masked steps instead of the
            previous step's output.
        return_sequences: the layer returns every step's output.
        use_cudnn: the layer's `use_cudnn`: `"auto"`, `True` or `False`
            (selection applies it; kernels need not read it).
        backend: the Keras backend's name.
        dropout_masks: the dropout masks drawn for this sequence, a
            `CellMasks(cell, inputs, recurrent, recurrent_kernel)` named
            tuple for each cell that draws them (a stacked cell's inner cells
            in order; a mask is `None` when its rate is 0). They apply only
            when `training`. A fused kernel multiplies the inputs by the
            input mask and the recurrent kernel by its DropConnect mask
            itself; a kernel that runs the cell step by step calls
            `call.step(inputs, states)`, which hands each cell its masks, inside
            `call.dropout_on_cells()` (for a foreign cell, Keras's
            `DropoutRNNCell`, which reads them from its attributes).
        reset: a `(batch, time)` boolean tensor, in time order as the mask,
            true where a row's states go back to `restart_states` (and its
            previous output to zeros) before that step is processed, or `None`.
        restart_states: the states a reset row restarts from, structured as
            `states`: the layer's initial states (zeros unless the cell
            defines `get_initial_state`), whatever `states` the call began from. Only kernels that
            declare `resets = True` are selected for a call with one.
        context: what the call learned from its surroundings (a
            `keras_rnnx.context.CallContext`): the export it is traced for
            (`call.exporting`: a `model.export` format, `"trace"` for another
            torch trace, or `None`; a kernel then uses only ops that exporter
            converts: no sort, no host read of mask values, no `TensorArray`
            for OpenVINO or LiteRT), whether it is traced (`call.traced`),
            compiled by torch's Dynamo (`call.compiling`) or recorded by
            TorchScript's tracer (`call.jit_tracing`). Kernels and their
            vendor functions read these facts here, never from the backend.

    Returns:
        A dataclass instance.

    Raises:
        TypeError: a required field is missing (as any dataclass).

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> cell = keras_rnnx.SimpleRNNCell(2)
        >>> cell.build((3, 4))
        >>> call = keras_rnnx.RecurrentCall(
        ...     cell, inputs=np.ones((3, 5, 4), "float32"),
        ...     states=[np.zeros((3, 2), "float32")], mask=None, training=False,
        ...     go_backwards=False, unroll=False, zero_output_for_mask=False,
        ...     return_sequences=True)
        >>> call.backend in ("tensorflow", "torch", "jax")
        True
    """

    cell: Any
    inputs: Any
    states: Any
    mask: Any
    training: bool
    go_backwards: bool
    unroll: bool
    zero_output_for_mask: bool
    return_sequences: bool
    use_cudnn: Any = "auto"
    backend: str = dataclasses.field(default_factory=keras.backend.backend)
    dropout_masks: tuple = ()
    reset: Any = None
    restart_states: Any = None
    context: CallContext = CallContext()

    @property
    def reset_states(self) -> Any:
        """Deprecated name of `restart_states` (until 0.3): `RNN.reset_states()`
        is the stateful reset, another thing."""
        warnings.warn(
            "`RecurrentCall.reset_states` is deprecated: use `RecurrentCall.restart_states`.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.restart_states

    @property
    def exporting(self) -> str | None:
        """The format the call is traced for (`context.exporting`), or `None`."""
        return self.context.exporting

    @property
    def traced(self) -> bool:
        """Whether a graph is being recorded (`context.traced`)."""
        return self.context.traced

    @property
    def compiling(self) -> bool:
        """Whether torch's Dynamo traces the call (`context.compiling`)."""
        return self.context.compiling

    @property
    def jit_tracing(self) -> bool:
        """Whether TorchScript's tracer records the call, for inference
        (`context.jit_tracing`)."""
        return self.context.jit_tracing

    def step(self, inputs: Any, states: Any) -> tuple[Any, Any]:
        """One step of the cell, `cell(inputs, states, **call.step_arguments())`.

        Returns:
            The cell's `(output, new_states)`.
        """
        return self.cell(inputs, states, **self.step_arguments())

    def step_arguments(self) -> dict:
        """The keyword arguments of each step of the cell: the call's
        `training` and dropout masks (each for a cell that takes it)."""
        masks = step_masks_argument(self.cell, self.dropout_masks)
        return step_arguments(self.cell, self.training, masks)

    def dropout_on_cells(self) -> contextlib.AbstractContextManager[None]:
        """A context in which foreign cells (Keras's `DropoutRNNCell`, which
        reads its masks from its attributes) find `dropout_masks`: a kernel
        that runs the cell step by step runs its loop inside it."""
        return foreign_cells_masks(self.dropout_masks)


@runtime_checkable
class Kernel(Protocol):
    """What a kernel is: an object that runs a whole sequence for some calls.

    Selection asks the registered kernels, highest `priority` first, whether
    they can run a call (`why_not(call)` returns `None`) and runs the first
    that can; the reference loop (priority 0) runs anything. The layer's
    `use_cudnn` filters the kernels first: `False` leaves the reference loop
    alone, `True` only the `fused` ones. `why_not` decides from what is known
    when the layer is traced (the backend, the cell and its options, whether
    there is a mask), and `run` then runs any call it accepted, whatever its
    mask's values: there is no fallback at run time that `explain` would not
    see. The reason is what `keras_rnnx.explain` reports.

    Attributes:
        name: the name `explain` reports, e.g. `"torch-fused"`.
        priority: higher runs first; built-in fused kernels use 10, the
            TensorFlow loop 1, the reference loop 0.
        fused: whether it satisfies `use_cudnn=True` (whole-sequence fused
            gate equations, as cuDNN).
        xla: optional; `False` when its ops cannot be XLA-compiled: a layer
            it might run sets `supports_jit = False` when constructed, as
            Keras's cuDNN path does. Such a kernel may say from the cell alone
            with `why_not_cell(cell, unroll)` (`None`: it might run it);
            without one it counts for every layer.
        resets: optional; `True` when it runs a call's per-sample `reset`
            (`RecurrentCall.reset`); selection passes over the others for
            such a call, so a kernel that predates resets never ignores one.

    A kernel may also run both directions of a `Bidirectional` in one call,
    with `why_not_bidirectional(forward, backward)` and
    `run_bidirectional(forward, backward)` (one `run` result per direction).

    Examples:
        The shape of a kernel (the Plugins guide has one that runs a cell):

        >>> import keras_rnnx
        >>> class OnlySimpleRNN:
        ...     name, priority, fused = "only-simple-rnn", 5, False
        ...     def why_not(self, call):
        ...         if not isinstance(call.cell, keras_rnnx.SimpleRNNCell):
        ...             return f"{type(call.cell).__name__} is not a SimpleRNNCell"
        ...         return None
        ...     def run(self, call):
        ...         ...  # (last_output, outputs, states) for the whole sequence
        >>> isinstance(OnlySimpleRNN(), keras_rnnx.Kernel)
        True
    """

    name: str
    priority: int
    fused: bool

    def why_not(self, call: RecurrentCall) -> str | None:
        """Whether this kernel can run `call`.

        Args:
            call: the `RecurrentCall` to run.

        Returns:
            `None` if it can, else the reason it cannot, as a short phrase
            that `explain` reports.

        Raises:
            Nothing: a kernel declines (returns a reason) rather than raise.
        """

    def run(self, call: RecurrentCall) -> tuple[Any, Any, Any]:
        """Runs the whole sequence of `call` (which `why_not` accepted).

        Args:
            call: the `RecurrentCall` to run.

        Returns:
            `(last_output, outputs, states)`: the last step's output, the
            steps' outputs in processing order, and the final states in the
            structure of `call.states`; what the reference loop returns, to
            float rounding, gradients included. `outputs` is every step's
            output, `(batch, time, ...)`, when `call.return_sequences`;
            otherwise the layer reads only `last_output`, and a kernel may
            return any steps ending with the last (the TensorFlow loop
            returns `(batch, 1, ...)`).

        Raises:
            Exception: only what the cell itself raises for its inputs; a call
                the kernel cannot run is declined in `why_not`.
        """


ENTRY_POINT_GROUP = "keras_rnnx.kernels"


def _register_entry_point(entry_point, loaded) -> None:
    kernel: Any = loaded() if isinstance(loaded, type) else loaded
    if kernel not in KERNELS:
        register_kernel(kernel)


KERNELS: Registry[Kernel] = Registry(
    ENTRY_POINT_GROUP, _register_entry_point, rank=lambda kernel: -kernel.priority
)


def register_kernel(kernel: Kernel) -> Kernel:
    """Add a kernel to the selection, ranked by its `priority`.

    Packages usually register theirs through the entry-point group
    `keras_rnnx.kernels` instead (naming a kernel object or a class to
    instantiate), so that it loads before the first selection without being
    imported; see the Plugins guide.

    Args:
        kernel: an object with the `Kernel` attributes and methods.

    Returns:
        `kernel`, so that `register_kernel(MyKernel())` can be assigned.

    Raises:
        TypeError: `kernel` lacks a `Kernel` attribute or method, or its
            `priority` is not an int.

    Examples:
        >>> import keras_rnnx
        >>> class Declining:
        ...     name, priority, fused = "declining", 3, False
        ...     def why_not(self, call):
        ...         return "it only shows how registration works"
        ...     def run(self, call):
        ...         raise NotImplementedError
        >>> kernel = keras_rnnx.register_kernel(Declining())
        >>> kernel in keras_rnnx.registered_kernels()
        True
    """
    if not isinstance(kernel, Kernel) or isinstance(kernel, type):
        raise TypeError(
            "Expected `kernel` to be a kernel object with `name`, `priority`, `fused`, "
            f"`why_not(call)` and `run(call)`. Received: kernel={kernel!r}"
        )
    if not isinstance(kernel.priority, int) or isinstance(kernel.priority, bool):
        raise TypeError(
            f"Expected `kernel.priority` to be an int. Received: priority={kernel.priority!r}"
        )
    return KERNELS.register(kernel)


def registered_kernels() -> list[Kernel]:
    """Every registered kernel, plugins included, in the order selection tries them.

    Returns:
        A new list of kernel objects, highest priority first; only the current
        backend's kernels are registered.

    Raises:
        Nothing: a plugin that fails to load is skipped with a `RuntimeWarning`.

    Examples:
        >>> import keras_rnnx
        >>> keras_rnnx.registered_kernels()[-1].name
        'reference'
    """
    return KERNELS.items()
