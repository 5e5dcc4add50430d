"""Kernels: whole-sequence implementations of a recurrent layer's loop."""

import keras

from keras_rnnx.kernels import reference, scan  # noqa: F401  (register the reference and scan kernels)
from keras_rnnx.kernels.registry import (
    Kernel,
    RecurrentCall,
    register_kernel,
    registered_kernels,
)
from keras_rnnx.kernels.selection import Selection, select, select_bidirectional
from keras_rnnx.kernels.specs import FusedSpec, fused_spec, register_fused_spec

# Each backend's kernels import that backend, so only the current one loads.
if keras.backend.backend() == "torch":
    from keras_rnnx.kernels import torch as _torch  # noqa: F401
elif keras.backend.backend() == "jax":
    from keras_rnnx.kernels import jax as _jax  # noqa: F401
elif keras.backend.backend() == "tensorflow":
    from keras_rnnx.kernels import tensorflow as _tensorflow  # noqa: F401

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
