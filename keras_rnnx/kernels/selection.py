"""Kernel selection: which registered kernel runs a call, and why.

Selection reads only static facts of the call (backend, cell and options,
mask presence), so it happens once per trace. The layer's `use_cudnn` filters
the kernels first; then the first, highest priority first, whose `why_not`
returns `None` runs the call. `explain` reports the `Selection`.
"""

from __future__ import annotations

import dataclasses
import warnings

from keras_rnnx.kernels.empty import EMPTY, is_empty
from keras_rnnx.kernels.registry import Kernel, RecurrentCall, registered_kernels
from keras_rnnx.types import Cell, UseCudnn


@dataclasses.dataclass(frozen=True)
class Selection:
    """Which kernel ran a layer at its last trace, and why faster ones did not.

    `keras_rnnx.explain(layer)` returns it; `str()` gives a readable report.

    Args:
        kernel_name: the name of the kernel that ran (`None` from
            `select_bidirectional` when no kernel runs both directions in one
            call); `kernel` is its deprecated name (until 0.3).
        passed_over: `(kernel name, reason)` for each faster kernel that
            declined, fastest first.
        exporting: the format of the export the trace was for (see
            `RecurrentCall.exporting`), or `None`.

    Returns:
        A frozen dataclass instance.

    Raises:
        TypeError: `kernel_name` is missing (as any dataclass).

    Examples:
        >>> import keras_rnnx
        >>> print(keras_rnnx.Selection("reference", (("fast", "no GPU"),)))
        kernel: reference
          not fast: no GPU
    """

    kernel_name: str | None
    passed_over: tuple[tuple[str, str], ...] = ()
    exporting: str | None = None

    @property
    def kernel(self) -> str | None:
        """Deprecated name of `kernel_name` (until 0.3): `select` returns the
        kernel itself, this its name."""
        warnings.warn(
            "`Selection.kernel` is deprecated: use `Selection.kernel_name`.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.kernel_name

    def __str__(self) -> str:
        export = f", traced for export ({self.exporting})" if self.exporting else ""
        lines = [f"kernel: {self.kernel_name}{export}"]
        lines += [f"  not {name}: {reason}" for name, reason in self.passed_over]
        return "\n".join(lines)


def candidates(use_cudnn: UseCudnn) -> tuple[list[Kernel], list[tuple[str, str]]]:
    """The kernels selection may try for a layer's `use_cudnn`, best first,
    and `(name, reason)` for those it filters out that would rank above them.

    `False` leaves the reference loop (priority 0) alone; `True` the fused
    kernels; `"auto"` every kernel.
    """
    kernels = registered_kernels()
    if use_cudnn is False:
        reason = "use_cudnn=False asks for the reference loop"
        return [k for k in kernels if k.priority <= 0], [
            (k.name, reason) for k in kernels if k.priority > 0
        ]
    if use_cudnn is True:
        return [k for k in kernels if k.fused], []
    return kernels, []


def supports_xla(cell: Cell, use_cudnn: UseCudnn, unroll: bool) -> bool:
    """Whether a layer of `cell` runs only kernels XLA compiles, decided when
    the layer is made, as Keras decides it for cuDNN: `compile(jit_compile=
    "auto")` reads `supports_jit` before a functional model's layers run.

    A kernel that XLA cannot compile (`xla = False`) and that might run the
    layer makes it `False`: one with `why_not_cell(cell, unroll)` says from
    the cell, its options and the device whether it might; one without it
    might run any layer.
    """
    for kernel in candidates(use_cudnn)[0]:
        if getattr(kernel, "xla", True):
            continue
        why_not_cell = getattr(kernel, "why_not_cell", None)
        if why_not_cell is None or why_not_cell(cell, unroll) is None:
            return False
    return True


def select(call: RecurrentCall) -> tuple[Kernel, Selection]:
    """The kernel to run `call`, and the record of the choice.

    Raises:
        ValueError: `use_cudnn=True` and no fused kernel accepts the call.
    """
    if is_empty(call):  # whatever `use_cudnn` asks: no loop runs
        return EMPTY, Selection(EMPTY.name)
    kernels, passed_over = candidates(call.use_cudnn)
    for kernel in kernels:
        reason = _why_not_resets(kernel, call) or kernel.why_not(call)
        if reason is None:
            return kernel, Selection(kernel.name, tuple(passed_over), call.exporting)
        passed_over.append((kernel.name, reason))
    reasons = "; ".join(f"{n}: {r}" for n, r in passed_over if n) or (
        f"no fused kernel is registered for {type(call.cell).__name__} "
        f"on the {call.backend} backend"
    )
    raise ValueError(
        "use_cudnn=True was specified, but cuDNN is not supported for this layer "
        "configuration with this backend. Pass use_cudnn='auto' to fallback to a "
        f"non-cuDNN implementation. No fused kernel can run this call: {reasons}."
    )


def _why_not_resets(kernel: Kernel, call: RecurrentCall) -> str | None:
    # A kernel written before resets existed would run the call as if none
    # were asked for: only those that declare them see such a call.
    if call.reset is not None and not getattr(kernel, "resets", False):
        return "a per-sample reset, which this kernel does not run (`resets`)"
    return None


def select_bidirectional(
    forward: RecurrentCall, backward: RecurrentCall
) -> tuple[Kernel | None, Selection]:
    """A kernel to run both directions of a `Bidirectional` in one call.

    Kernels offer it with `why_not_bidirectional(forward, backward)` and
    `run_bidirectional(forward, backward)` (returning one `run` result per
    direction).

    Returns:
        `(kernel, Selection)`; when none accepts, `(None, Selection(None,
        passed_over))` with the reason each such kernel declined, and each
        direction then selects its own kernel.
    """
    if is_empty(forward):
        return None, Selection(None)
    if forward.reset is not None:
        reason = "a per-sample reset: each direction runs its own segments"
        return None, Selection(None, (("bidirectional", reason),), forward.exporting)
    both_ways = {k.name for k in registered_kernels() if hasattr(k, "run_bidirectional")}
    use_cudnn: UseCudnn = False if False in (forward.use_cudnn, backward.use_cudnn) else "auto"
    kernels, filtered = candidates(use_cudnn)
    passed_over = [(f"{n}-bidirectional", r) for n, r in filtered if n in both_ways]
    for kernel in kernels:
        if kernel.name not in both_ways:
            continue
        name = f"{kernel.name}-bidirectional"
        reason = kernel.why_not_bidirectional(forward, backward)  # type: ignore[attr-defined]
        if reason is None:
            return kernel, Selection(name, tuple(passed_over), forward.exporting)
        passed_over.append((name, reason))
    return None, Selection(None, tuple(passed_over), forward.exporting)
