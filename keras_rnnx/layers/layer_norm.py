"""The layer-normalised LSTM and GRU layers."""

from __future__ import annotations

import keras

from keras_rnnx.cells.layer_norm import LayerNormGRUCell, LayerNormLSTMCell
from keras_rnnx.layers.fixed_cell_rnn import FixedCellRNN

_DOC = """`RNN({cell}(units, ...))`, a layer-normalised {kind}.

    The equations are on `{cell}`. It runs the step loop (no fused kernel
    normalises inside the recurrence).

    Args:
        units: positive int, the size of the output and of each state.
        **kwargs: every `{cell}` option (`norm_gamma_initializer`,
            `norm_beta_initializer`, `norm_epsilon`, and `{base}Cell`'s),
            every `RNN` option (`return_sequences`, `return_state`,
            `go_backwards`, `stateful`, `unroll`, `zero_output_for_mask`,
            `use_cudnn`), and `keras.layers.Layer` arguments.

    Returns:
        Called on `(batch, time, features)`: the output `(batch, units)` (or
        `(batch, time, units)` with `return_sequences`), then the states when
        `return_state`.

    Raises:
        ValueError: as `{cell}` and `RNN`.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.{layer}(4, return_sequences=True)
        >>> tuple(layer(np.zeros((2, 3, 5), "float32")).shape)
        (2, 3, 4)
    """


@keras.saving.register_keras_serializable(package="keras_rnnx")
class LayerNormLSTM(FixedCellRNN):
    __doc__ = _DOC.format(
        cell="LayerNormLSTMCell",
        kind="LSTM (TensorFlow Addons')",
        base="LSTM",
        layer="LayerNormLSTM",
    )
    cell_class = LayerNormLSTMCell
    cell_name = "layer_norm_lstm_cell"
    fixed_options = ("proj_size",)


@keras.saving.register_keras_serializable(package="keras_rnnx")
class LayerNormGRU(FixedCellRNN):
    __doc__ = _DOC.format(cell="LayerNormGRUCell", kind="GRU", base="GRU", layer="LayerNormGRU")
    cell_class = LayerNormGRUCell
    cell_name = "layer_norm_gru_cell"
