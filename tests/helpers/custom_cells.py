"""A user's cell, as the guide writes one: `keras.ops` only, an int
`state_size`, and its new state returned as a bare tensor (`return h, h`)."""

from __future__ import annotations

import keras
from keras import ops

import keras_rnnx


@keras_rnnx.register_cell(package="rnnx_tests")
class MinimalCell(keras.layers.Layer):
    """h_t = tanh(x_t W + h_{t-1} U)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units), name="recurrent_kernel"
        )

    def call(self, inputs, states):
        h = ops.tanh(ops.matmul(inputs, self.kernel) + ops.matmul(states[0], self.recurrent_kernel))
        return h, h

    def get_config(self):
        return {**super().get_config(), "units": self.units}
