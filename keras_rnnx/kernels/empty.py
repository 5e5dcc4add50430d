"""Sequences with no rows or no steps: nothing to loop over.

Keras fails on them (an index error for zero steps; on TensorFlow, "Biases must
be 1D" for zero rows); here they give what the loop would: the last output is
zeros, as for a row whose steps are all masked, the sequence is empty, and the
states are the initial ones.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_rnnx.kernels.reference import zero_outputs
from keras_rnnx.kernels.registry import RecurrentCall


def is_empty(call: RecurrentCall) -> bool:
    """Whether `call`'s sequences are known to have no rows or no steps."""
    return 0 in tuple(keras.tree.flatten(call.inputs)[0].shape[:2])


def empty_result(call: RecurrentCall):
    """What a kernel returns for `call`, which `is_empty`."""
    batch, steps = tuple(keras.tree.flatten(call.inputs)[0].shape[:2])
    last = zero_outputs(call, batch)
    outputs = keras.tree.map_structure(
        lambda o: ops.zeros((batch, steps, *o.shape[1:]), dtype=o.dtype), last
    )
    return last, outputs, call.states


class EmptyKernel:
    """Runs sequences with no rows or no steps, as the module docstring says.

    Not registered: selection runs it for every empty call before asking
    the registered kernels, which then need not handle empty sequences.
    """

    name = "empty"
    # Never ranked or filtered by `use_cudnn`: selection runs it first.
    priority, fused = 0, False

    def why_not(self, call: RecurrentCall) -> str | None:
        return None if is_empty(call) else "the sequences have rows and steps"

    def run(self, call: RecurrentCall) -> tuple[Any, Any, Any]:
        return empty_result(call)


EMPTY = EmptyKernel()  # selection runs it for every empty call
