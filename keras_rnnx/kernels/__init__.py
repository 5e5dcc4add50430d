"""Kernels: whole-sequence implementations of a recurrent layer's loop."""

from keras_rnnx.kernels import reference  # noqa: F401  (registers the reference kernel)
from keras_rnnx.kernels.registry import (
    RecurrentCall,
    Selection,
    kernels,
    register_kernel,
    select,
)

__all__ = ["RecurrentCall", "Selection", "kernels", "register_kernel", "select"]
