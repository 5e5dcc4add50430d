"""What the generic kernels need to know of a backend, declared by the
backend's own module (`kernels/backends/`), so that no generic module tests
which backend it runs on."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras

from keras_rnnx.registry import Registry


def _never(*what: str) -> str | None:
    return None


@dataclasses.dataclass(frozen=True)
class Traits:
    """A backend's traits.

    Args:
        associative_scan: `ops.associative_scan` is the parallel scan to run
            (JAX's `lax.associative_scan`, log-depth, which XLA compiles
            well); elsewhere the scan runs chunks of steps in `keras.ops`.
        compiled_scan: `ops.scan` compiles to one loop whose gradient is one
            loop too (JAX's `lax.scan`); elsewhere a short sequential loop
            runs in Python (torch's scan makes its buffers on the default
            device, TensorFlow's loses ranks in a traced train step).
        loop_beats_scan: `() -> reason or None`: why the step loop is faster
            than the parallel scan on the current device.
        loop_beats_chunks: `(what) -> reason or None`: why the step loop
            infers `what` (a cell's chunks, described: "a decay per key
            dimension", "the delta rule") faster than the chunkwise kernel on
            the current device.
        traces_unroll: a trace for an export records the loop's `ops.scan` as
            one indexed read per traced step (torch's tracers), which the
            artifact would repeat for any length: the reference loop unrolls
            there instead, so that another length is an error.
        compile: `(function) -> function`: the same function of tensors,
            compiled as one program where running it op by op costs more
            (JAX's `jit`: outside a trace, JAX compiles each op on its own,
            seconds for a kernel of a few hundred ops); the identity
            elsewhere.

    Returns:
        A frozen dataclass instance.

    Raises:
        Nothing.
    """

    associative_scan: bool = False
    compiled_scan: bool = False
    loop_beats_scan: Callable[[], str | None] = _never
    loop_beats_chunks: Callable[[str], str | None] = _never
    traces_unroll: bool = False
    compile: Callable[[Callable], Callable] = lambda function: function


# By backend name.
TRAITS: Registry[Traits] = Registry()


def register_traits(backend: str, traits: Traits) -> Traits:
    """Declare `backend`'s traits (its module does, when imported)."""
    return TRAITS.register(traits, key=backend)


def traits() -> Traits:
    """The current backend's traits (the defaults where none are declared)."""
    return TRAITS.as_dict().get(keras.backend.backend(), Traits())
