"""Kernel registry and selection.

A kernel runs a whole recurrent sequence for some cells on some backends. Each
registered kernel answers `why_not(call)`: `None` if it can run this call, else
the reason it cannot. Selection walks kernels by priority (highest first) and
takes the first that accepts; the reference kernel accepts everything and has
the lowest priority. Selection reads only static facts of the call (backend,
options, mask presence), so it happens once per trace.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Protocol, runtime_checkable

import keras

from keras_rnnx.plugins import load_entry_points

logger = logging.getLogger("keras_rnnx")


@dataclasses.dataclass
class RecurrentCall:
    """Everything a kernel needs to run one sequence; a layer makes one per call.

    Kernels read it and never change it, except `facts`.

    Args:
        cell: the cell to run (already built).
        inputs: the input structure: `(batch, time, ...)` tensors, dropout
            already fixed per sequence by the layer.
        states: the initial state structure, as the cell's `state_size`.
        mask: a `(batch, time)` boolean tensor, or `None`.
        training: whether dropout is active.
        go_backwards: process the sequence from its end.
        unroll: the user asked for an unrolled loop.
        zero_output_for_mask: output zeros at masked steps instead of the
            previous step's output.
        return_sequences: the layer returns every step's output.
        use_cudnn: the layer's `use_cudnn`: `"auto"`, `True` or `False`.
        backend: the Keras backend's name.
        facts: what kernels derive from the call once and share between
            `why_not` and `run` (keyed by kernel), e.g. a mask's lengths read
            from the device.

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
    facts: dict = dataclasses.field(default_factory=dict)


@runtime_checkable
class Kernel(Protocol):
    """What a kernel is: an object that runs a whole sequence for some calls.

    Selection asks the registered kernels, highest `priority` first, whether
    they can run a call (`why_not(call)` returns `None`) and runs the first
    that can; the reference loop (priority 0) runs anything. `why_not` must
    decide from what is known when the layer is traced (the backend, the
    cell and its options, whether there is a mask); a kernel that can only
    tell at run time (say, from a mask's values) falls back inside `run`.
    Its reason is what `keras_rnnx.explain` reports.

    Attributes:
        name: the name `explain` reports, e.g. `"torch-fused"`.
        priority: higher runs first; built-in fused kernels use 10, the
            TensorFlow loop 1, the reference loop 0.
        fused: whether it satisfies `use_cudnn=True` (whole-sequence fused
            gate equations, as cuDNN).
        xla: optional; `False` when its ops cannot be XLA-compiled, so a layer
            that ran it sets `supports_jit = False`, as Keras's cuDNN path does.

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
            `(last_output, outputs, states)`: the last step's output, every
            step's output `(batch, time, ...)` in processing order, and the
            final states in the structure of `call.states`; what the
            reference loop returns, to float rounding, gradients included.

        Raises:
            Exception: only what the cell itself raises for its inputs; a call
                the kernel cannot run is declined in `why_not`.
        """


ENTRY_POINT_GROUP = "keras_rnnx.kernels"

_KERNELS: list[Kernel] = []
_discovered = False


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
    _KERNELS.append(kernel)
    _KERNELS.sort(key=lambda k: -k.priority)
    return kernel


def discover_kernels(force: bool = False) -> None:
    """Register the kernels installed packages declare (once; again with `force`)."""
    global _discovered
    if _discovered and not force:
        return
    _discovered = True
    for _, loaded in load_entry_points(ENTRY_POINT_GROUP):
        kernel = loaded() if isinstance(loaded, type) else loaded
        if kernel not in _KERNELS:
            register_kernel(kernel)


@dataclasses.dataclass(frozen=True)
class Selection:
    """Which kernel ran a layer at its last trace, and why faster ones did not.

    `keras_rnnx.explain(layer)` returns it; `str()` gives a readable report.

    Args:
        kernel: the name of the kernel that ran.
        passed_over: `(kernel name, reason)` for each faster kernel that
            declined, fastest first.

    Returns:
        A frozen dataclass instance.

    Raises:
        TypeError: `kernel` is missing (as any dataclass).

    Examples:
        >>> import keras_rnnx
        >>> print(keras_rnnx.Selection("reference", (("fast", "no GPU"),)))
        kernel: reference
          not fast: no GPU
    """

    kernel: str
    passed_over: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        lines = [f"kernel: {self.kernel}"]
        lines += [f"  not {name}: {reason}" for name, reason in self.passed_over]
        return "\n".join(lines)


def select(call: RecurrentCall) -> tuple[Kernel, Selection]:
    """The kernel to run `call`, and the record of the choice.

    Raises:
        ValueError: `use_cudnn=True` and no fused kernel accepts the call.
    """
    discover_kernels()
    passed_over = []
    for kernel in _KERNELS:
        if call.use_cudnn is False and kernel.priority > 0:
            passed_over.append((kernel.name, "use_cudnn=False asks for the reference loop"))
            continue
        reason = kernel.why_not(call)
        if reason is None:
            if call.use_cudnn is True and not kernel.fused:
                break
            return kernel, Selection(kernel.name, tuple(passed_over))
        passed_over.append((kernel.name, reason))
    reasons = "; ".join(f"{n}: {r}" for n, r in passed_over if n) or (
        f"no fused kernel is registered for {type(call.cell).__name__} "
        f"on the {call.backend} backend"
    )
    raise ValueError(
        "use_cudnn=True requires a fused kernel, and none can run this call "
        f"({reasons}). Pass use_cudnn='auto' to fall back to the reference kernel."
    )


def select_bidirectional(forward: RecurrentCall, backward: RecurrentCall):
    """A kernel to run both directions of a `Bidirectional` in one call.

    Kernels offer it with `why_not_bidirectional(forward, backward)` and
    `run_bidirectional(forward, backward)` (returning one `run` result per
    direction). Returns `(kernel, Selection)`, or `(None, passed_over)` with
    the reasons each such kernel declined.
    """
    discover_kernels()
    passed_over = []
    for kernel in _KERNELS:
        if not hasattr(kernel, "run_bidirectional"):
            continue
        name = f"{kernel.name}-bidirectional"
        if False in (forward.use_cudnn, backward.use_cudnn):
            reason = "use_cudnn=False asks for the reference loop"
        else:
            reason = kernel.why_not_bidirectional(forward, backward)
        if reason is None:
            return kernel, Selection(name)
        passed_over.append((name, reason))
    return None, tuple(passed_over)


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
    discover_kernels()
    return list(_KERNELS)
