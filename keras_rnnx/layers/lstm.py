"""The LSTM layer."""

from __future__ import annotations

from typing import Any

import keras

from keras_rnnx.cells.base import named_arguments
from keras_rnnx.cells.lstm import LSTMCell
from keras_rnnx.layers.fixed_cell_rnn import FixedCellRNN
from keras_rnnx.types import Activation, Constraint, Initializer, Regularizer, UseCudnn


@keras.saving.register_keras_serializable(package="keras_rnnx")
class LSTM(FixedCellRNN):
    """Long Short-Term Memory layer; a drop-in for `keras.layers.LSTM`.

    `RNN(LSTMCell(units, ...))` with Keras's weights (`lstm_cell/kernel`,
    `recurrent_kernel`, `bias`), arguments and config, run by the fastest
    kernel the backend offers (see `keras_rnnx.explain`). The gate equations
    are on `LSTMCell`.

    Args:
        units: positive int, the size of the output and of each state.
        activation, recurrent_activation, use_bias: as on `LSTMCell`.
        kernel_initializer, recurrent_initializer, bias_initializer: as on `LSTMCell`.
        unit_forget_bias: as on `LSTMCell`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: as on `LSTMCell`.
        activity_regularizer: regularizer of the layer's output.
        kernel_constraint, recurrent_constraint, bias_constraint: as on `LSTMCell`.
        dropout, recurrent_dropout, seed: as on `LSTMCell`.
        return_sequences, return_state, go_backwards, stateful: as on `RNN`.
        unroll, use_cudnn: as on `RNN`.
        zero_output_for_mask: as on `RNN` (keyword-only: Keras takes it in `**kwargs`).
        recurrent_kernel_dropout, proj_size: keras-rnnx's own, keyword-only; as on `LSTMCell`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called on `(batch, time, features)`: the output `(batch, units)` (or
        `(batch, time, units)` with `return_sequences`), then `h` and `c` when
        `return_state`.

    Raises:
        ValueError: as `LSTMCell` and `RNN`.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> lstm = keras_rnnx.LSTM(4, return_sequences=True, return_state=True)
        >>> sequence, h, c = lstm(np.zeros((32, 10, 8), "float32"))
        >>> [tuple(t.shape) for t in (sequence, h, c)]
        [(32, 10, 4), (32, 4), (32, 4)]
    """

    cell_class = LSTMCell
    cell_name = "lstm_cell"

    def __init__(
        self,
        units: int,
        activation: Activation = "tanh",
        recurrent_activation: Activation = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Initializer = "glorot_uniform",
        recurrent_initializer: Initializer = "orthogonal",
        bias_initializer: Initializer = "zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer: Regularizer = None,
        recurrent_regularizer: Regularizer = None,
        bias_regularizer: Regularizer = None,
        activity_regularizer: Regularizer = None,
        kernel_constraint: Constraint = None,
        recurrent_constraint: Constraint = None,
        bias_constraint: Constraint = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        use_cudnn: UseCudnn = "auto",
        *,
        zero_output_for_mask: bool = False,
        recurrent_kernel_dropout: float = 0.0,
        proj_size: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(**named_arguments(locals()))
