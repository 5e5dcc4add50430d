"""Kernels: whole-sequence implementations of a recurrent layer's loop."""

import keras

from keras_rnnx.kernels import reference  # noqa: F401  (registers the reference kernel)
from keras_rnnx.kernels.empty import EMPTY, empty_result, is_empty
from keras_rnnx.kernels.registry import (
    Kernel,
    RecurrentCall,
    Selection,
    register_kernel,
    registered_kernels,
    select,
    select_bidirectional,
)

# Each backend's kernels import that backend, so only the current one loads.
if keras.backend.backend() == "torch":
    from keras_rnnx.kernels import torch as _torch  # noqa: F401
elif keras.backend.backend() == "jax":
    from keras_rnnx.kernels import jax as _jax  # noqa: F401
elif keras.backend.backend() == "tensorflow":
    from keras_rnnx.kernels import tensorflow as _tensorflow  # noqa: F401

__all__ = [
    "EMPTY",
    "Kernel",
    "RecurrentCall",
    "Selection",
    "empty_result",
    "is_empty",
    "register_kernel",
    "registered_kernels",
    "select",
    "select_bidirectional",
]
