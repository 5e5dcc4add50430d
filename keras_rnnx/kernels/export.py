"""Which exporter, if any, is tracing a recurrent call.

Kernels then use only ops that exporter converts: no sort (ONNX's torch
exporter has none that is stable), no `TensorArray` for OpenVINO (its
TensorFlow frontend converts no `TensorList`) or LiteRT (which runs one only
through Flex), no host read of mask values. Keras's `model.export` traces from
its `keras.src.export` modules on every backend, the format's own module
outermost, so the outermost such frame on the stack names the format; a torch
trace (`torch.jit.trace`, `torch.export`) by anything else records the ops
once for any input too, and counts as an export.
"""

from __future__ import annotations

import sys
from types import FrameType

import keras

_EXPORTERS = "keras.src.export."
# Keras's export modules by the format they export.
_FORMATS = {
    "onnx": "onnx",
    "openvino": "openvino",
    "litert": "litert",
    "saved_model": "tf_saved_model",
    "torch": "torch",
}


def exporting() -> str | None:
    """The format the current call is traced for: a `model.export` format
    (`"torch"` for any `torch.export`), `"trace"` for another
    `torch.jit.trace`, or `None` when it is not exported."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if tf.executing_eagerly():
            return None
    if backend == "torch":
        import torch

        if torch.compiler.is_dynamo_compiling():  # Dynamo cannot trace a stack walk
            return "torch" if torch.compiler.is_exporting() else None
        if torch.compiler.is_exporting():  # non-strict: Python runs as it is
            return _keras_export_on_stack() or "torch"
        if torch.jit.is_tracing():
            return _keras_export_on_stack() or "trace"
    # Eager calls too: OpenVINO's torch converter runs the model once more.
    return _keras_export_on_stack()


def _keras_export_on_stack() -> str | None:
    fmt = None
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith(_EXPORTERS):
            fmt = _FORMATS.get(module[len(_EXPORTERS) :], "export")
        frame = frame.f_back
    return fmt
