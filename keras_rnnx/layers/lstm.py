"""The LSTM layer."""

from __future__ import annotations

import keras

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
        **kwargs: every `LSTMCell` option (`activation`, `recurrent_activation`,
            `use_bias`, `unit_forget_bias`, initializers, regularizers,
            constraints, `dropout`, `recurrent_dropout`,
            `recurrent_kernel_dropout`, `seed`), every `RNN` option
            (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, `zero_output_for_mask`, `use_cudnn`), and
            `keras.layers.Layer` arguments (`name`, `dtype`,
            `activity_regularizer`, ...).

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
