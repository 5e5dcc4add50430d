"""A minimal keras-rnnx plugin package: a cell and a kernel for it.

keras_rnnx finds both through the entry points declared in this package's
pyproject.toml (`keras_rnnx.cells` and `keras_rnnx.kernels`), so a saved model
that uses the cell loads, and runs on the kernel, without importing this
package first.
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


class MinimalRNNKernel:
    """Runs `MinimalRNNCell` with every step's input projection in one matmul.

    The loop then only adds `h_{t-1} U`: the trick fused RNN kernels use,
    here in `keras.ops` so it runs on every backend.
    """

    name = "minimal-rnn-hoisted"
    priority = 5  # above the loops (0-1), below the built-in fused kernels (10)
    fused = False

    def why_not(self, call):
        if not isinstance(call.cell, MinimalRNNCell):
            return f"{type(call.cell).__name__} is not a MinimalRNNCell"
        if call.mask is not None:
            return "a mask (the loop below has no masking)"
        if call.cell.compute_dtype != call.cell.variable_dtype:
            return "mixed precision"
        return None

    def run(self, call):
        cell = call.cell
        x = ops.moveaxis(keras.tree.flatten(call.inputs)[0], 1, 0)  # time-major
        if call.go_backwards:
            x = ops.flip(x, axis=0)
        projected = ops.matmul(x, cell.kernel)  # (time, batch, units): one matmul

        def step(h, xw_t):
            h = ops.tanh(xw_t + ops.matmul(h, cell.recurrent_kernel))
            return h, h

        (h0,) = keras.tree.flatten(call.states)
        h, outputs = ops.scan(step, h0, projected)
        return h, ops.moveaxis(outputs, 0, 1), keras.tree.pack_sequence_as(call.states, [h])
