"""The sLSTM layer of xLSTM."""

from __future__ import annotations

import keras

from keras_rnnx.cells.slstm import sLSTMCell
from keras_rnnx.layers.fixed_cell_rnn import FixedCellRNN


@keras.saving.register_keras_serializable(package="keras_rnnx")
class sLSTM(FixedCellRNN):  # noqa: N801  (the paper's name)
    """`RNN(sLSTMCell(units, ...))`: the sLSTM of xLSTM, Beck et al. (2024).

    Its recurrence is not linear (the gates read `h_{t-1}`), so it has no
    parallel form: it runs the step loop, compiled where the backend
    compiles one (`keras_rnnx.explain` says which). The equations are on
    `sLSTMCell`.

    Args:
        units: positive int, the size of the state and the output.
        **kwargs: every `sLSTMCell` option (`heads`, `forget_gate`,
            `kernel_initializer`, `recurrent_initializer`), every `RNN` option
            (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, `zero_output_for_mask`, `use_cudnn`), and
            `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called on `(batch, time, features)`: the output `(batch, units)` (or
        `(batch, time, units)` with `return_sequences`), then the states `h,
        c, n, m` (each `(batch, units)`) when `return_state`.

    Raises:
        ValueError: as `sLSTMCell` and `RNN`.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.sLSTM(8, heads=2, return_sequences=True)
        >>> tuple(layer(np.zeros((2, 100, 4), "float32")).shape)
        (2, 100, 8)
    """

    cell_class = sLSTMCell
    cell_name = "slstm_cell"
