"""The gated recurrent unit cell (Cho et al., 2014)."""

from __future__ import annotations

from typing import Any

from keras import ops

from keras_rnnx.cells.base import BuiltinCell, named_arguments
from keras_rnnx.cells.dropout import apply_mask
from keras_rnnx.cells.registry import register_cell
from keras_rnnx.types import Activation, Constraint, Initializer, Regularizer, Structure


@register_cell
class GRUCell(BuiltinCell):
    """One GRU step; a drop-in for `keras.layers.GRUCell`.

    Gates in Keras's order z (update), r (reset), h (candidate):

        z = σ(x W_z + b_z + h_{t-1} U_z + b'_z)
        r = σ(x W_r + b_r + h_{t-1} U_r + b'_r)
        reset_after=True  (cuDNN's form):  ĥ = act(x W_h + b_h + r * (h_{t-1} U_h + b'_h))
        reset_after=False (original form): ĥ = act(x W_h + b_h + (r * h_{t-1}) U_h)
        h_t = z * h_{t-1} + (1 - z) * ĥ

    `kernel (features, 3 units)`, `recurrent_kernel (units, 3 units)`; `bias` is
    `(2, 3 units)` = (input bias b, recurrent bias b') with `reset_after=True`,
    else `(3 units,)` (no recurrent bias).

    Args:
        units: positive int, the size of the state and the output.
        activation: activation of the candidate (default `"tanh"`).
        recurrent_activation: activation of the gates (default `"sigmoid"`).
        use_bias: whether to add biases.
        reset_after: apply the reset gate after the recurrent matmul (default
            `True`, the cuDNN-compatible form).
        kernel_initializer, recurrent_initializer, bias_initializer: initializers.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints.
        dropout: fraction of the inputs to drop, in [0, 1].
        recurrent_dropout: fraction of `h_{t-1}` to drop, in [0, 1].
        recurrent_kernel_dropout: fraction of `recurrent_kernel`'s entries to
            drop in training, one mask per batch for every row and step
            (DropConnect, AWD-LSTM's weight drop): recurrent regularisation
            that keeps the fused kernels, where `recurrent_dropout` runs the
            step loop. keras-rnnx's own; saved only when set.
        seed: int seed for the dropout masks.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called as `cell(inputs, states, training=False)`: `(h_t, [h_t])`
        (`h_t` alone when `states` is a single tensor).

    Raises:
        ValueError: `units` not a positive int, an unknown option name, or a
            dropout rate outside [0, 1].

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.RNN(keras_rnnx.GRUCell(4), return_sequences=True)
        >>> tuple(layer(np.zeros((2, 3, 5), "float32")).shape)
        (2, 3, 4)
    """

    gates = 3
    extra_options: tuple[str, ...] = ("recurrent_activation", "reset_after")

    def __init__(
        self,
        units: int,
        activation: Activation = "tanh",
        recurrent_activation: Activation = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Initializer = "glorot_uniform",
        recurrent_initializer: Initializer = "orthogonal",
        bias_initializer: Initializer = "zeros",
        kernel_regularizer: Regularizer = None,
        recurrent_regularizer: Regularizer = None,
        bias_regularizer: Regularizer = None,
        kernel_constraint: Constraint = None,
        recurrent_constraint: Constraint = None,
        bias_constraint: Constraint = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        reset_after: bool = True,
        seed: int | None = None,
        *,
        recurrent_kernel_dropout: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(**named_arguments(locals()))
        self.state_size = units

    def bias_shape(self) -> tuple[int, ...]:
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def call(
        self,
        inputs: Structure,
        states: Structure,
        training: bool | None = False,
        dropout_masks: Any = None,
    ) -> Structure:
        nested = isinstance(states, (list, tuple))
        h_tm1 = states[0] if nested else states
        units = self.units
        input_bias = recurrent_bias = None
        if self.bias is not None:
            if self.reset_after:
                input_bias, recurrent_bias = self.bias[0], self.bias[1]
            else:
                input_bias = self.bias
        dp, rdp, recurrent_kernel = self.masks(inputs, h_tm1, training, dropout_masks)
        if self.dropout_mask_count is None or not training:
            x = ops.matmul(apply_mask(inputs, dp[0]), self.kernel)
            if input_bias is not None:
                x = ops.add(x, input_bias)
            x_z, x_r, x_h = ops.split(x, 3, axis=-1)
            # ops.split, not slices: a slice's gradient pads to the whole
            # tensor, one per gate, which slowed training steps here.
            if self.reset_after:
                inner = ops.matmul(h_tm1, recurrent_kernel)
                if recurrent_bias is not None:
                    inner = inner + recurrent_bias
                u_z, u_r, u_h = ops.split(inner, 3, axis=-1)
            else:
                inner = ops.matmul(h_tm1, recurrent_kernel[:, : 2 * units])
                u_z, u_r = ops.split(inner, 2, axis=-1)
            z = self.recurrent_activation(x_z + u_z)
            r = self.recurrent_activation(x_r + u_r)
            if self.reset_after:
                u_h = r * u_h
            else:
                u_h = ops.matmul(r * h_tm1, recurrent_kernel[:, 2 * units :])
        else:  # one dropout mask per gate
            kernels = ops.split(self.kernel, 3, axis=1)
            recurrent = ops.split(recurrent_kernel, 3, axis=1)
            x_z, x_r, x_h = (ops.matmul(apply_mask(inputs, m), k) for m, k in zip(dp, kernels))
            if input_bias is not None:
                b_z, b_r, b_h = ops.split(input_bias, 3, axis=0)
                x_z, x_r, x_h = x_z + b_z, x_r + b_r, x_h + b_h
            h_z, h_r, h_h = (apply_mask(h_tm1, m) for m in rdp)
            u_z = ops.matmul(h_z, recurrent[0])
            u_r = ops.matmul(h_r, recurrent[1])
            if self.reset_after and recurrent_bias is not None:
                rb_z, rb_r, rb_h = ops.split(recurrent_bias, 3, axis=0)
                u_z, u_r = u_z + rb_z, u_r + rb_r
            z = self.recurrent_activation(x_z + u_z)
            r = self.recurrent_activation(x_r + u_r)
            if self.reset_after:
                u_h = ops.matmul(h_h, recurrent[2])
                if recurrent_bias is not None:
                    u_h = u_h + rb_h
                u_h = r * u_h
            else:
                u_h = ops.matmul(r * h_h, recurrent[2])
        hh = self.activation(x_h + u_h)
        h = z * h_tm1 + (1 - z) * hh
        return h, [h] if nested else h
