"""The convolutional LSTM layers, ConvLSTM1D, ConvLSTM2D and ConvLSTM3D."""

from __future__ import annotations

import keras

from keras_rnnx.cells.conv_lstm import ConvLSTMCell
from keras_rnnx.layers.builtin_rnn import BuiltinRNN


class ConvLSTM(BuiltinRNN):
    """`RNN(ConvLSTMCell(rank, ...))` with Keras's arguments, weights and config."""

    cell_class = ConvLSTMCell
    cell_name = "conv_lstm_cell"
    fixed_options = ("rank",)
    rank: int

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.input_rank = cls.rank + 3

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        **kwargs,
    ):
        if "rank" in kwargs:
            raise ValueError(
                f"{type(self).__name__} has rank {self.rank}; it takes no `rank` argument. "
                f"Received: rank={kwargs['rank']!r}"
            )
        super().__init__(
            filters,
            kernel_size=kernel_size,
            strides=strides,
            padding=padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            **kwargs,
        )

    def make_cell(self, filters, **kwargs):
        return ConvLSTMCell(self.rank, filters, **kwargs)

    def get_config(self):
        config = super().get_config()
        if config["use_cudnn"] == "auto":
            del config["use_cudnn"]  # Keras's ConvLSTM has none: its config, unless set
        return config


_DOC = """{rank}D convolutional LSTM; a drop-in for `keras.layers.ConvLSTM{rank}D`.

    An LSTM whose input and recurrent transformations are convolutions (the
    equations are on `ConvLSTMCell`), over sequences of {what}: inputs
    `(batch, time, {shape}, channels)` (`channels_last`) or
    `(batch, time, channels, {shape})` (`channels_first`). Keras's arguments,
    weights (`conv_lstm_cell/kernel`, `recurrent_kernel`, `bias`) and config.

    Args:
        filters: positive int, the channels of the output and the states.
        kernel_size: an int or {rank} ints, the convolution window.
        **kwargs: every `ConvLSTMCell` option but `rank` (`strides`,
            `padding`, `data_format`, `dilation_rate`, `activation`,
            `recurrent_activation`, `use_bias`, `unit_forget_bias`,
            initializers, regularizers, constraints, `dropout`,
            `recurrent_dropout`, `seed`), every `RNN` option
            (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, `zero_output_for_mask`, `use_cudnn`), and
            `keras.layers.Layer` arguments (`name`, `dtype`,
            `activity_regularizer`, ...).

    Returns:
        Called on a sequence: the last output `(batch, {out}, filters)` (or
        every step's, `(batch, time, {out}, filters)`, with
        `return_sequences`), then `h` and `c` when `return_state`
        (`channels_last`; filters come first with `channels_first`).

    Raises:
        ValueError: as `ConvLSTMCell` and `RNN`; inputs not of rank {input_rank}.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.ConvLSTM{rank}D(4, 3, padding="same", return_sequences=True)
        >>> tuple(layer(np.zeros((2, 5, {example}, 3), "float32")).shape)
        (2, 5, {example}, 4)
    """


def _doc(rank, what, shape):
    return _DOC.format(
        rank=rank,
        what=what,
        shape=shape,
        out="new_" + shape.replace(", ", ", new_"),
        input_rank=rank + 3,
        example=", ".join(["8"] * rank),
    )


@keras.saving.register_keras_serializable(package="keras_rnnx")
class ConvLSTM1D(ConvLSTM):
    __doc__ = _doc(1, "1D signals", "steps")
    rank = 1


@keras.saving.register_keras_serializable(package="keras_rnnx")
class ConvLSTM2D(ConvLSTM):
    __doc__ = _doc(2, "images", "rows, cols")
    rank = 2


@keras.saving.register_keras_serializable(package="keras_rnnx")
class ConvLSTM3D(ConvLSTM):
    __doc__ = _doc(3, "volumes", "conv_dim1, conv_dim2, conv_dim3")
    rank = 3
