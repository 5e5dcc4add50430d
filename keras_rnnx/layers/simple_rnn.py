"""The SimpleRNN layer."""

from __future__ import annotations

from typing import Any

import keras

from keras_rnnx.cells.base import named_arguments
from keras_rnnx.cells.simple_rnn import SimpleRNNCell
from keras_rnnx.layers.fixed_cell_rnn import FixedCellRNN
from keras_rnnx.types import Activation, Constraint, Initializer, Regularizer, UseCudnn


@keras.saving.register_keras_serializable(package="keras_rnnx")
class SimpleRNN(FixedCellRNN):
    """Fully connected RNN layer; a drop-in for `keras.layers.SimpleRNN`.

    `RNN(SimpleRNNCell(units, ...))` with Keras's weights
    (`simple_rnn_cell/kernel`, `recurrent_kernel`, `bias`), arguments and config.

    Args:
        units: positive int, the size of the output and the state.
        activation, use_bias: as on `SimpleRNNCell`.
        kernel_initializer, recurrent_initializer, bias_initializer: as on `SimpleRNNCell`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: as on `SimpleRNNCell`.
        activity_regularizer: regularizer of the layer's output.
        kernel_constraint, recurrent_constraint, bias_constraint: as on `SimpleRNNCell`.
        dropout, recurrent_dropout: as on `SimpleRNNCell`.
        return_sequences, return_state, go_backwards, stateful, unroll: as on `RNN`.
        seed: as on `SimpleRNNCell`.
        zero_output_for_mask, use_cudnn: as on `RNN`; keyword-only (Keras's SimpleRNN has no
            `use_cudnn`, and takes `zero_output_for_mask` in `**kwargs`).
        recurrent_kernel_dropout: keras-rnnx's own, keyword-only; as on `SimpleRNNCell`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called on `(batch, time, features)`: the output, then the final state
        when `return_state`.

    Raises:
        ValueError: as `SimpleRNNCell` and `RNN`.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> rnn = keras_rnnx.SimpleRNN(4)
        >>> tuple(rnn(np.zeros((32, 10, 8), "float32")).shape)
        (32, 4)
    """

    cell_class = SimpleRNNCell
    cell_name = "simple_rnn_cell"

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
        activity_regularizer: Regularizer = None,
        kernel_constraint: Constraint = None,
        recurrent_constraint: Constraint = None,
        bias_constraint: Constraint = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        seed: int | None = None,
        *,
        zero_output_for_mask: bool = False,
        recurrent_kernel_dropout: float = 0.0,
        use_cudnn: UseCudnn = "auto",
        **kwargs: Any,
    ):
        super().__init__(**named_arguments(locals()))
