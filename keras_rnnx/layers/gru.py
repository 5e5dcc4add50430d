"""The GRU layer."""

from __future__ import annotations

import keras

from keras_rnnx.cells.base import named_arguments
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
        activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, kernel_regularizer,
            recurrent_regularizer, bias_regularizer, kernel_constraint,
            recurrent_constraint, bias_constraint, dropout, recurrent_dropout,
            seed, reset_after: the cell's options, as on `GRUCell`.
        activity_regularizer: regularizer of the layer's output.
        return_sequences, return_state, go_backwards, stateful, unroll,
            use_cudnn: as on `RNN`.
        zero_output_for_mask: as on `RNN` (keyword-only, as in Keras's `**kwargs`).
        recurrent_kernel_dropout: keras-rnnx's own, keyword-only: as on `GRUCell`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

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

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
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
        reset_after=True,
        use_cudnn="auto",
        *,
        zero_output_for_mask=False,
        recurrent_kernel_dropout=0.0,
        **kwargs,
    ):
        super().__init__(**named_arguments(locals()))
