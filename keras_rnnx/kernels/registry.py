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
from typing import Any, Protocol

import keras

from keras_rnnx.plugins import load_entry_points

logger = logging.getLogger("keras_rnnx")


@dataclasses.dataclass
class RecurrentCall:
    """Everything a kernel needs to run one sequence.

    `inputs` is the input structure with `(batch, time, ...)` tensors; `states`
    the initial state structure; `mask` a `(batch, time)` bool tensor or `None`.
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
    # What kernels derive from the call once and share between `why_not` and
    # `run` (keyed by kernel), e.g. a mask's lengths read from the device.
    facts: dict = dataclasses.field(default_factory=dict)


class Kernel(Protocol):
    name: str
    priority: int
    fused: bool  # a fused kernel satisfies `use_cudnn=True`
    # Optional `xla = False`: the kernel's ops cannot be XLA-compiled, so a
    # layer that runs it sets `supports_jit = False`, as Keras's cuDNN path does.

    def why_not(self, call: RecurrentCall) -> str | None: ...

    def run(self, call: RecurrentCall) -> tuple[Any, Any, Any]:
        """Returns `(last_output, outputs (batch, time, ...), final_states)`."""
        ...


ENTRY_POINT_GROUP = "keras_rnnx.kernels"

_KERNELS: list[Kernel] = []
_discovered = False


def register_kernel(kernel: Kernel) -> Kernel:
    """Add a kernel to the selection (kept sorted by priority, highest first).

    Other packages register theirs through the entry-point group
    `keras_rnnx.kernels`, naming a kernel object or a class to instantiate;
    they load before the first selection.
    """
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

    Attributes:
        kernel: the name of the kernel that ran.
        passed_over: `(kernel name, reason)` for each faster kernel declined.
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


def kernels() -> list[Kernel]:
    """The registered kernels, highest priority first."""
    return list(_KERNELS)
