"""What a recurrent call learns from its surroundings, read once per call.

Three things reach a recurrent layer's call from outside its arguments, and
this module alone reads them:

* a stream's states: a streaming twin (`keras_rnnx.streaming`) feeds the
  layers it streams their states and collects their final ones
  (`streaming_states`);
* the export a trace is recorded for: an explicit `export_scope(format)`,
  else, only while a trace is recorded (never on an eager call), Keras's
  `model.export` modules on the Python stack, the outermost naming the
  format, or a torch trace by anything else;
* the trace itself: whether a graph is being recorded (`tf.function`,
  `jax.jit`, a torch trace or `torch.compile`), and whether Dynamo
  (`torch.compile`) is compiling.

`read(tensor)` gathers them into a frozen `CallContext`; the layer copies
what kernels need into its `RecurrentCall` and hands the final states back
through `CallContext.record_final_states`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import keras

_LOCAL = threading.local()

EXPORT_FORMATS = ("onnx", "openvino", "litert", "saved_model", "torch", "trace", "export")

# Keras's export modules by the format they export: the one place that reads
# Keras's private module names.
_KERAS_EXPORT = "keras.src.export."
_KERAS_FORMATS = {
    "onnx": "onnx",
    "openvino": "openvino",
    "litert": "litert",
    "saved_model": "tf_saved_model",
    "torch": "torch",
}


class Stream:
    """States fed to streamed layers (by layer) and the final states they
    leave, for one chunk."""

    def __init__(self, states: dict[int, list]):
        self.states = states
        self.final_states: dict[int, list] = {}

    def states_of(self, layer: Any, initial_state: Any) -> Any:
        """The states `layer` starts this chunk from."""
        if initial_state is not None:
            raise ValueError(
                f"Layer {layer.name!r} is given an initial_state in the model, and a "
                "streaming twin feeds it its states: it cannot take both."
            )
        if id(layer) in self.final_states:
            raise ValueError(
                f"Layer {layer.name!r} is called twice on one chunk: a streaming twin "
                "carries one set of states per layer."
            )
        return self.states[id(layer)]


@dataclasses.dataclass(frozen=True)
class CallContext:
    """What one recurrent call learns from its surroundings.

    Args:
        exporting: the format a trace is recorded for (a `model.export`
            format, `"trace"` for another torch trace, `"export"` for an
            export Keras does not name), or `None`.
        traced: a graph is being recorded (a `tf.function`, `jax.jit`, torch
            trace or `torch.compile`), not run op by op.
        compiling: torch's Dynamo (`torch.compile`, `torch.export`) is
            tracing the call.
        stream: the streaming twin's states, when one streams the layer.

    Returns:
        A frozen dataclass instance.

    Raises:
        Nothing.
    """

    exporting: str | None = None
    traced: bool = False
    compiling: bool = False
    stream: Stream | None = dataclasses.field(default=None, compare=False, repr=False)

    def initial_state(self, layer: Any, initial_state: Any) -> Any:
        """`initial_state`, or the states a stream feeds `layer`.

        Raises:
            ValueError: a streamed layer is given `initial_state` too, or is
                called twice in one chunk.
        """
        if self.stream is None or id(layer) not in self.stream.states:
            return initial_state
        return self.stream.states_of(layer, initial_state)

    def record_final_states(self, layer: Any, final_states: Any) -> None:
        """Hand `layer`'s final states to the stream that fed it, if any."""
        if self.stream is not None and id(layer) in self.stream.states:
            self.stream.final_states[id(layer)] = keras.tree.flatten(final_states)


def read(tensor: Any = None) -> CallContext:
    """The context of a call on `tensor` (one of its inputs), read now.

    Returns:
        A `CallContext`.
    """
    traced, compiling = _trace_facts(tensor)
    exporting = getattr(_LOCAL, "export", None)
    if exporting is None and traced:
        exporting = _traced_export(compiling)
    return CallContext(exporting, traced, compiling, getattr(_LOCAL, "stream", None))


@contextlib.contextmanager
def export_scope(format: str) -> Iterator[None]:
    """Within the block, recurrent calls are traced for an export to
    `format`, whatever traces them: kernels then use only the ops that
    exporter converts.

    Keras's `model.export` is recognised without it; use it around another
    converter (a `tf.lite.TFLiteConverter` of your own `tf.function`, say).

    Args:
        format: one of `"onnx"`, `"openvino"`, `"litert"`, `"saved_model"`,
            `"torch"`, `"trace"` or `"export"` (any other).

    Returns:
        A context manager.

    Raises:
        ValueError: an unknown `format`.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.GRU(3)
        >>> with keras_rnnx.export_scope("litert"):
        ...     _ = layer(np.zeros((1, 4, 2), "float32"))
        >>> keras_rnnx.explain(layer).exporting
        'litert'
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(
            f"Expected `format` to be one of {EXPORT_FORMATS}. Received: format={format!r}"
        )
    previous = getattr(_LOCAL, "export", None)
    _LOCAL.export = format
    try:
        yield
    finally:
        _LOCAL.export = previous


@contextlib.contextmanager
def streaming_states(states: dict[int, list]) -> Iterator[Stream]:
    """Within the block, the layers keyed (by `id`) in `states` start from
    those states; the yielded `Stream` collects their final states."""
    previous = getattr(_LOCAL, "stream", None)
    stream = _LOCAL.stream = Stream(states)
    try:
        yield stream
    finally:
        _LOCAL.stream = previous


def _trace_facts(tensor) -> tuple[bool, bool]:
    """`(traced, compiling)` on the current backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return not tf.executing_eagerly(), False
    if backend == "torch":
        import torch

        compiling = torch.compiler.is_compiling()
        traced = compiling or torch.compiler.is_exporting() or torch.jit.is_tracing()
        return traced, compiling
    if backend == "jax":
        import jax

        return isinstance(tensor, jax.core.Tracer), False
    return False, False


def _traced_export(compiling: bool) -> str | None:
    """The export a trace is recorded for, or None: resolved while tracing only."""
    if keras.backend.backend() == "torch":
        import torch

        if compiling:  # Dynamo cannot trace a stack walk
            return "torch" if torch.compiler.is_exporting() else None
        if torch.compiler.is_exporting():  # non-strict: Python runs as it is
            return _keras_export_on_stack() or "torch"
        if torch.jit.is_tracing():
            return _keras_export_on_stack() or "trace"
    return _keras_export_on_stack()


def _keras_export_on_stack() -> str | None:
    fmt = None
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith(_KERAS_EXPORT):
            fmt = _KERAS_FORMATS.get(module[len(_KERAS_EXPORT) :], "export")
        frame = frame.f_back
    return fmt
