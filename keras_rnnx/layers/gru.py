"""The GRU layer."""

from __future__ import annotations

import keras

from keras_rnnx.cells.gru import GRUCell
from keras_rnnx.layers.builtin_rnn import BuiltinRNN


@keras.saving.register_keras_serializable(package="keras_rnnx")
class GRU(BuiltinRNN):
    """Gated Recurrent Unit layer; a drop-in for `keras.layers.GRU`.

    `RNN(GRUCell(units, ...))` with Keras's weights (`gru_cell/kernel`,
    `recurrent_kernel`, `bias`), arguments and config. The gate equations,
    and the two bias layouts of `reset_after`, are on `GRUCell`.

    Args:
        units: positive int, the size of the output and the state.
        **kwargs: every `GRUCell` option (`activation`, `recurrent_activation`,
            `use_bias`, `reset_after`, initializers, regularizers, constraints,
            `dropout`, `recurrent_dropout`, `recurrent_kernel_dropout`, `seed`),
            every `RNN` option (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, `zero_output_for_mask`, `use_cudnn`), and
            `keras.layers.Layer` arguments.

    Returns:
        Called on `(batch, time, features)`: the output, then the final state
        when `return_state`.

    Raises:
        ValueError: as `GRUCell` and `RNN`.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> gru = keras_rnnx.GRU(4, return_state=True)
        >>> output, h = gru(np.zeros((32, 10, 8), "float32"))
        >>> [tuple(t.shape) for t in (output, h)]
        [(32, 4), (32, 4)]
    """

    cell_class = GRUCell
    cell_name = "gru_cell"
