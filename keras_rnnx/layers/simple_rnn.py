"""The SimpleRNN layer."""

from __future__ import annotations

import keras

from keras_rnnx.cells.simple_rnn import SimpleRNNCell
from keras_rnnx.layers.builtin_rnn import BuiltinRNN


@keras.saving.register_keras_serializable(package="keras_rnnx")
class SimpleRNN(BuiltinRNN):
    """Fully connected RNN layer; a drop-in for `keras.layers.SimpleRNN`.

    `RNN(SimpleRNNCell(units, ...))` with Keras's weights
    (`simple_rnn_cell/kernel`, `recurrent_kernel`, `bias`), arguments and config.

    Args:
        units: positive int, the size of the output and the state.
        **kwargs: every `SimpleRNNCell` option (`activation`, `use_bias`,
            initializers, regularizers, constraints, `dropout`,
            `recurrent_dropout`, `recurrent_kernel_dropout`, `seed`), every
            `RNN` option, and
            `keras.layers.Layer` arguments.

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
