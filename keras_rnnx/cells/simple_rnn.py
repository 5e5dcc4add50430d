"""The fully connected recurrent cell."""

from __future__ import annotations

from typing import Any

from keras import ops

from keras_rnnx.cells.base import BuiltinCell, named_arguments
from keras_rnnx.cells.dropout import apply_mask
from keras_rnnx.cells.registry import register_cell
from keras_rnnx.types import Activation, Constraint, Initializer, Regularizer, Structure


@register_cell
class SimpleRNNCell(BuiltinCell):
    """One step of a fully connected RNN; a drop-in for `keras.layers.SimpleRNNCell`.

    h_t = activation(x_t W + b + h_{t-1} U)

    with `W = kernel (features, units)`, `U = recurrent_kernel (units, units)`,
    `b = bias (units,)`. Dropout masks (fixed per sequence) multiply `x_t` and
    `h_{t-1}` in training.

    Args:
        units: positive int, the size of the state and the output.
        activation: activation name or callable (default `"tanh"`; `None` is linear).
        use_bias: whether to add `bias`.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints.
        dropout: fraction of the inputs to drop, in [0, 1].
        recurrent_dropout: fraction of the recurrent state to drop, in [0, 1].
        recurrent_kernel_dropout: fraction of `recurrent_kernel`'s entries to
            drop in training, one mask per batch for every row and step
            (DropConnect, AWD-LSTM's weight drop): recurrent regularisation
            that keeps the fused kernels, where `recurrent_dropout` runs the
            step loop. keras-rnnx's own; saved only when set.
        seed: int seed for the dropout masks.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called as `cell(inputs, states, training=False)`: `(h_t, [h_t])`.

    Raises:
        ValueError: `units` not a positive int, an unknown option name, or a
            dropout rate outside [0, 1].

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.RNN(keras_rnnx.SimpleRNNCell(4))
        >>> tuple(layer(np.zeros((2, 3, 5), "float32")).shape)
        (2, 4)
    """

    seed_generator_first = True  # Keras's SimpleRNNCell makes it before its initializers

    def __init__(
        self,
        units: int,
        activation: Activation = "tanh",
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
        seed: int | None = None,
        *,
        recurrent_kernel_dropout: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(**named_arguments(locals()))
        self.state_size = units

    def call(
        self,
        inputs: Structure,
        states: Structure,
        training: bool | None = False,
        dropout_masks: Any = None,
    ) -> Structure:
        h_tm1 = states[0] if isinstance(states, (list, tuple)) else states
        (dp,), (rdp,), recurrent_kernel = self.masks(inputs, h_tm1, training, dropout_masks)
        h = ops.matmul(apply_mask(inputs, dp), self.kernel)
        if self.bias is not None:
            h = ops.add(h, self.bias)
        h = h + ops.matmul(apply_mask(h_tm1, rdp), recurrent_kernel)
        if self.activation is not None:
            h = self.activation(h)
        return h, [h] if isinstance(states, (list, tuple)) else h
