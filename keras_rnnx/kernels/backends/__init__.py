"""Each backend's kernels and traits, one module per backend, imported only
on that backend (`load`): the only modules that import torch, JAX or
TensorFlow when they are imported."""

from __future__ import annotations

import importlib

import keras

MODULES = {
    "tensorflow": "keras_rnnx.kernels.backends.tensorflow",
    "torch": "keras_rnnx.kernels.backends.torch",
    "jax": "keras_rnnx.kernels.backends.jax",
}


def load() -> None:
    """Import the current backend's module, which registers its kernels and
    traits (nothing on a backend keras-rnnx has no module for)."""
    module = MODULES.get(keras.backend.backend())
    if module is not None:
        importlib.import_module(module)
