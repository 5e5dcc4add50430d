"""The GRU layer."""

from __future__ import annotations

from typing import Any

import keras

from keras_rnnx.cells.base import named_arguments
from keras_rnnx.cells.gru import GRUCell
from keras_rnnx.layers.fixed_cell_rnn import FixedCellRNN
from keras_rnnx.types import Activation, Constraint, Initializer, Regularizer, UseCudnn


@keras.saving.register_keras_serializable(package="keras_rnnx")
class GRU(FixedCellRNN):
    """Gated Recurrent Unit layer; a drop-in for `keras.layers.GRU`.

    `RNN(GRUCell(units, ...))` with Keras's weights (`gru_cell/kernel`,
    `recurrent_kernel`, `bias`), arguments and config. The gate equations,
    and the two bias layouts of `reset_after`, are on `GRUCell`.

    Args:
        units: positive int, the size of the output and the state.
        activation, recurrent_activation, use_bias: as on `GRUCell`.
        kernel_initializer, recurrent_initializer, bias_initializer: as on `GRUCell`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: as on `GRUCell`.
        activity_regularizer: regularizer of the layer's output.
        kernel_constraint, recurrent_constraint, bias_constraint: as on `GRUCell`.
        dropout, recurrent_dropout, seed: as on `GRUCell`.
        return_sequences, return_state, go_backwards, stateful: as on `RNN`.
        unroll: as on `RNN`.
        reset_after: as on `GRUCell`.
        use_cudnn: as on `RNN`.
        zero_output_for_mask: as on `RNN` (keyword-only: Keras takes it in `**kwargs`).
        recurrent_kernel_dropout: keras-rnnx's own, keyword-only; as on `GRUCell`.
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
        units: int,
        activation: Activation = "tanh",
        recurrent_activation: Activation = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Initializer = "glorot_uniform",
        recurrent_initializer: Initializer = "orthogonal",
        bias_initializer: Initializer = "zeros",
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
        reset_after: bool = True,
        use_cudnn: UseCudnn = "auto",
        *,
        zero_output_for_mask: bool = False,
        recurrent_kernel_dropout: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(**named_arguments(locals()))
