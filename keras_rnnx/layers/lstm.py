"""The LSTM layer."""

from __future__ import annotations

import keras

from keras_rnnx.cells.base import named_arguments
from keras_rnnx.cells.lstm import LSTMCell
from keras_rnnx.layers.builtin_rnn import BuiltinRNN


@keras.saving.register_keras_serializable(package="keras_rnnx")
class LSTM(BuiltinRNN):
    """Long Short-Term Memory layer; a drop-in for `keras.layers.LSTM`.

    `RNN(LSTMCell(units, ...))` with Keras's weights (`lstm_cell/kernel`,
    `recurrent_kernel`, `bias`), arguments and config, run by the fastest
    kernel the backend offers (see `keras_rnnx.explain`). The gate equations
    are on `LSTMCell`.

    Args:
        units: positive int, the size of the output and of each state.
        activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, unit_forget_bias,
            kernel_regularizer, recurrent_regularizer, bias_regularizer,
            kernel_constraint, recurrent_constraint, bias_constraint, dropout,
            recurrent_dropout, seed: the cell's options, as on `LSTMCell`.
        activity_regularizer: regularizer of the layer's output.
        return_sequences, return_state, go_backwards, stateful, unroll,
            use_cudnn: as on `RNN`.
        zero_output_for_mask: as on `RNN` (keyword-only, as in Keras's `**kwargs`).
        recurrent_kernel_dropout, proj_size: keras-rnnx's own, keyword-only:
            as on `LSTMCell`.
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
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        use_cudnn="auto",
        *,
        zero_output_for_mask=False,
        recurrent_kernel_dropout=0.0,
        proj_size=None,
        **kwargs,
    ):
        super().__init__(**named_arguments(locals()))
