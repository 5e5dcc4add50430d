"""Layers of linear-recurrence cells: MinGRU, MinLSTM, LRU and RGLRU."""

from __future__ import annotations

import keras

from keras_rnnx.cells.lru import LRUCell
from keras_rnnx.cells.min_rnn import MinGRUCell, MinLSTMCell
from keras_rnnx.cells.rg_lru import RGLRUCell
from keras_rnnx.layers.fixed_cell_rnn import FixedCellRNN

_DOC = """`RNN({cell}(units, ...))`: {what}.

    Trains with the parallel scan over the whole sequence (the
    `parallel-scan` kernel, on every backend; `keras_rnnx.explain` says so)
    and runs step by step like any cell (streaming, `stateful`). The
    equations are on `{cell}`.

    Args:
        units: positive int, {units}.
        **kwargs: every `{cell}` option ({options}), every `RNN` option
            (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, `zero_output_for_mask`, `use_cudnn`), and
            `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called on `(batch, time, features)`: the output `(batch, {out})` (or
        `(batch, time, {out})` with `return_sequences`), then the state when
        `return_state`.

    Raises:
        ValueError: as `{cell}` and `RNN`.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.{layer}(8, return_sequences=True)
        >>> tuple(layer(np.zeros((2, 1000, 4), "float32")).shape)
        (2, 1000, {width})
    """

_PROJECTED = "`log_space`, `use_bias`, initializers, regularizers, constraints"


@keras.saving.register_keras_serializable(package="keras_rnnx")
class MinGRU(FixedCellRNN):
    __doc__ = _DOC.format(
        cell="MinGRUCell",
        what="the minGRU of Feng et al. (2024)",
        units="the size of the state and the output",
        options=_PROJECTED,
        out="units",
        layer="MinGRU",
        width=8,
    )
    cell_class = MinGRUCell
    cell_name = "min_gru_cell"


@keras.saving.register_keras_serializable(package="keras_rnnx")
class MinLSTM(FixedCellRNN):
    __doc__ = _DOC.format(
        cell="MinLSTMCell",
        what="the minLSTM of Feng et al. (2024)",
        units="the size of the state and the output",
        options=_PROJECTED,
        out="units",
        layer="MinLSTM",
        width=8,
    )
    cell_class = MinLSTMCell
    cell_name = "min_lstm_cell"


@keras.saving.register_keras_serializable(package="keras_rnnx")
class LRU(FixedCellRNN):
    __doc__ = _DOC.format(
        cell="LRUCell",
        what="the Linear Recurrent Unit of Orvieto et al. (2023)",
        units="the number of complex state entries (the state is `2 units` wide)",
        options="`r_min`, `r_max`, `max_phase`",
        out="features",
        layer="LRU",
        width=4,
    )
    cell_class = LRUCell
    cell_name = "lru_cell"


@keras.saving.register_keras_serializable(package="keras_rnnx")
class RGLRU(FixedCellRNN):
    __doc__ = _DOC.format(
        cell="RGLRUCell",
        what="the Real-Gated Linear Recurrent Unit of Griffin and Hawk, De et al. (2024)",
        units="the width of the state and the output",
        options="`heads`, `min_radius`, `max_radius`, `kernel_initializer`",
        out="units",
        layer="RGLRU",
        width=8,
    )
    cell_class = RGLRUCell
    cell_name = "rg_lru_cell"
