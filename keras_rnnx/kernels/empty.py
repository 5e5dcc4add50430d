"""Sequences with no rows or no steps: nothing to loop over.

Keras fails on them (an index error for zero steps; on TensorFlow, "Biases must
be 1D" for zero rows); here they give what the loop would: the last output is
zeros, as for a row whose steps are all masked, the sequence is empty, and the
states are the initial ones.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_rnnx.cells.base import output_shapes, zeros_for
from keras_rnnx.kernels.registry import RecurrentCall


def is_empty(call: RecurrentCall) -> bool:
    """Whether `call`'s sequences are known to have no rows or no steps."""
    return 0 in tuple(keras.tree.flatten(call.inputs)[0].shape[:2])


class EmptyKernel:
    name = "empty"
    priority = 0
    fused = True  # nothing to fuse: `use_cudnn=True` holds

    def why_not(self, call: RecurrentCall) -> str | None:
        return None if is_empty(call) else "the sequence has rows and steps"

    def run(self, call: RecurrentCall):
        batch, steps = tuple(keras.tree.flatten(call.inputs)[0].shape[:2])
        dtype = getattr(call.cell, "compute_dtype", None) or keras.backend.floatx()
        last = zeros_for(output_shapes(call.cell), batch, dtype)
        outputs = keras.tree.map_structure(
            lambda o: ops.zeros((batch, steps, *o.shape[1:]), dtype=o.dtype), last
        )
        return last, outputs, call.states


EMPTY = EmptyKernel()
