"""Kernels: whole-sequence implementations of a recurrent layer's loop."""

from keras_rnnx.kernels import backends, chunkwise, reference, scan  # noqa: F401  (register them)
from keras_rnnx.kernels.registry import (
    Kernel,
    RecurrentCall,
    register_kernel,
    registered_kernels,
)
from keras_rnnx.kernels.selection import Selection, select, select_bidirectional
from keras_rnnx.kernels.specs import FusedSpec, fused_spec, register_fused_spec

# Each backend's kernels import that backend, so only the current one loads.
backends.load()

__all__ = [
    "FusedSpec",
    "Kernel",
    "RecurrentCall",
    "Selection",
    "fused_spec",
    "register_fused_spec",
    "register_kernel",
    "registered_kernels",
    "select",
    "select_bidirectional",
]
