"""A minimal keras-rnnx plugin package: one cell, written in keras.ops.

keras_rnnx finds it through the `keras_rnnx.cells` entry point declared in
this package's pyproject.toml, so a saved model that uses the cell loads
without importing this package first.
"""

import keras
from keras import ops

import keras_rnnx


@keras_rnnx.register_cell(package="rnnx_demo_plugin")
class MinimalRNNCell(keras.layers.Layer):
    """h_t = tanh(x_t W + h_{t-1} U); the output is h_t."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        # kernel (features, units), recurrent_kernel (units, units)
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units), name="recurrent_kernel", initializer="orthogonal"
        )

    def call(self, inputs, states):
        h = ops.tanh(ops.matmul(inputs, self.kernel) + ops.matmul(states[0], self.recurrent_kernel))
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units}
