"""The convolutional LSTM layers, ConvLSTM1D, ConvLSTM2D and ConvLSTM3D."""

from __future__ import annotations

from typing import Any

import keras

from keras_rnnx.cells.base import named_arguments
from keras_rnnx.cells.conv_lstm import ConvLSTMCell
from keras_rnnx.layers.fixed_cell_rnn import FixedCellRNN
from keras_rnnx.types import (
    Activation,
    Cell,
    Config,
    Constraint,
    Initializer,
    IntOrTuple,
    Regularizer,
    UseCudnn,
)


class ConvLSTM(FixedCellRNN):
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
        filters: int,
        kernel_size: IntOrTuple,
        strides: IntOrTuple = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: IntOrTuple = 1,
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
        *,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        recurrent_kernel_dropout: float = 0.0,
        use_cudnn: UseCudnn = "auto",
        **kwargs: Any,
    ):
        if "rank" in kwargs:
            raise ValueError(
                f"{type(self).__name__} has rank {self.rank}; it takes no `rank` argument. "
                f"Received: rank={kwargs['rank']!r}"
            )
        arguments = named_arguments(locals())
        super().__init__(arguments.pop("filters"), **arguments)

    def make_cell(self, units: int, **kwargs: Any) -> Cell:
        return ConvLSTMCell(self.rank, units, **kwargs)

    def get_config(self) -> Config:
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
        strides, padding, data_format, dilation_rate, activation,
            recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, unit_forget_bias,
            kernel_regularizer, recurrent_regularizer, bias_regularizer,
            kernel_constraint, recurrent_constraint, bias_constraint, dropout,
            recurrent_dropout, seed: the cell's options, as on `ConvLSTMCell`.
        activity_regularizer: regularizer of the layer's output.
        return_sequences, return_state, go_backwards, stateful: as on `RNN`.
        unroll, zero_output_for_mask, use_cudnn: as on `RNN`; keyword-only
            (Keras's ConvLSTM takes the first two in `**kwargs`, and has no
            `use_cudnn`).
        recurrent_kernel_dropout: keras-rnnx's own, keyword-only: as on
            `ConvLSTMCell`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

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
