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
  `jax.jit`, a torch trace or `torch.compile`), whether Dynamo
  (`torch.compile`) is compiling, and whether TorchScript's tracer records it.

`read(tensor)` gathers them into a frozen `CallContext`, which the layer puts
in its `RecurrentCall`: kernels and their vendor functions read these facts
from the call, never from the backend. The layer hands its final states to
the stream through `record_final_states`, the one function that writes what
a stream collects.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
import warnings
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
        jit_tracing: TorchScript's tracer (`torch.jit.trace`, and the exporters
            built on it) records the call, for inference.
        stream: the streaming twin's states, when one streams the layer
            (read through `streamed_states`, written through
            `record_final_states`).

    Returns:
        A frozen dataclass instance.

    Raises:
        Nothing.
    """

    exporting: str | None = None
    traced: bool = False
    compiling: bool = False
    jit_tracing: bool = False
    stream: Stream | None = dataclasses.field(default=None, compare=False, repr=False)

    def streamed_states(self, layer: Any, initial_state: Any) -> Any:
        """`initial_state`, or the states a stream feeds `layer`.

        Raises:
            ValueError: a streamed layer is given `initial_state` too, or is
                called twice in one chunk.
        """
        if self.stream is None or id(layer) not in self.stream.states:
            return initial_state
        return self.stream.states_of(layer, initial_state)

    def initial_state(self, layer: Any, initial_state: Any) -> Any:
        """Deprecated name of `streamed_states` (until 0.3)."""
        _deprecated("CallContext.initial_state", "CallContext.streamed_states")
        return self.streamed_states(layer, initial_state)

    def record_final_states(self, layer: Any, final_states: Any) -> None:
        """Deprecated (until 0.3): `keras_rnnx.context.record_final_states`."""
        _deprecated("CallContext.record_final_states", "context.record_final_states")
        record_final_states(self, layer, final_states)


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"`{old}` is deprecated: use `{new}`.", DeprecationWarning, stacklevel=3)


def record_final_states(call_context: CallContext, layer: Any, final_states: Any) -> None:
    """Hand `layer`'s final states to the stream that fed it its states in
    `call_context`, if one did: the one writer of what a stream collects."""
    stream = call_context.stream
    if stream is not None and id(layer) in stream.states:
        stream.final_states[id(layer)] = keras.tree.flatten(final_states)


def read(tensor: Any = None) -> CallContext:
    """The context of a call on `tensor` (one of its inputs), read now.

    Returns:
        A `CallContext`.
    """
    explicit = getattr(_LOCAL, "export", None)
    # An explicit scope names the export: no stack walk then.
    keras_export = _keras_export_on_stack if explicit is None else lambda: explicit
    facts = _TRACE_READERS.get(keras.backend.backend(), _eager)(tensor, keras_export)
    if explicit is not None:
        facts = dataclasses.replace(facts, exporting=explicit)
    return dataclasses.replace(facts, stream=getattr(_LOCAL, "stream", None))


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


# What a backend says of a trace, asked here only (an architecture test
# holds it): one reader per backend, each importing its backend when asked,
# and calling `keras_export()` (Keras's export on the stack) only when traced.


def _eager(tensor, keras_export) -> CallContext:
    return CallContext()


def _tensorflow_trace(tensor, keras_export) -> CallContext:
    import tensorflow as tf

    traced = not tf.executing_eagerly()
    return CallContext(keras_export() if traced else None, traced)


def _jax_trace(tensor, keras_export) -> CallContext:
    import jax

    traced = isinstance(tensor, jax.core.Tracer)
    return CallContext(keras_export() if traced else None, traced)


def _torch_trace(tensor, keras_export) -> CallContext:
    import torch

    compiling = torch.compiler.is_compiling()
    exporting = torch.compiler.is_exporting()
    jit_tracing = torch.jit.is_tracing()
    export: str | None = None
    if torch.onnx.is_in_onnx_export():
        # Packed sequences become the `sequence_lens` of ONNX's own RNN ops.
        export = "onnx"
    elif compiling:  # Dynamo cannot trace a stack walk
        export = "torch" if exporting else None
    elif exporting:  # non-strict: Python runs as it is
        export = keras_export() or "torch"
    elif jit_tracing:
        export = keras_export() or "trace"
    return CallContext(export, compiling or exporting or jit_tracing, compiling, jit_tracing)


_TRACE_READERS = {
    "tensorflow": _tensorflow_trace,
    "torch": _torch_trace,
    "jax": _jax_trace,
}


def _keras_export_on_stack() -> str | None:
    fmt = None
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith(_KERAS_EXPORT):
            fmt = _KERAS_FORMATS.get(module[len(_KERAS_EXPORT) :], "export")
        frame = frame.f_back
    return fmt
