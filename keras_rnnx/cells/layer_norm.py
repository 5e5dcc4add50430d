"""Layer-normalised LSTM and GRU cells (Ba et al., 2016), as TensorFlow
Addons had them: `LayerNormLSTMCell` keeps TFA's equations, weights and
options; `LayerNormGRUCell` applies the same rule to Keras's GRU."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_rnnx.cells.dropout import apply_mask
from keras_rnnx.cells.gru import GRUCell
from keras_rnnx.cells.lstm import LSTMCell
from keras_rnnx.cells.registry import register_cell
from keras_rnnx.types import Initializer, Structure


class NormOptions:
    """The layer-norm options of TFA's cells, and their norm layers; first
    in a cell's bases, before the cell it normalises."""

    norm_options = ("norm_gamma_initializer", "norm_beta_initializer", "norm_epsilon")
    _set_option: Any  # the normalised cell's (`Options`)

    def __init__(
        self,
        units: int,
        *,
        norm_gamma_initializer: Initializer = "ones",
        norm_beta_initializer: Initializer = "zeros",
        norm_epsilon: float = 1e-3,
        **kwargs: Any,
    ):
        epsilon = norm_epsilon
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or epsilon <= 0:
            raise ValueError(
                "Expected `norm_epsilon` to be a positive float. "
                f"Received: norm_epsilon={epsilon!r}"
            )
        super().__init__(units, **kwargs)  # type: ignore[call-arg]  # the cell after this mixin
        self._set_option("norm_gamma_initializer", norm_gamma_initializer)
        self._set_option("norm_beta_initializer", norm_beta_initializer)
        self.norm_epsilon = float(epsilon)

    def _norm(self, name, width):
        """A built `keras.layers.LayerNormalization` over the last axis, as TFA's."""
        norm = keras.layers.LayerNormalization(
            epsilon=self.norm_epsilon,
            gamma_initializer=self.norm_gamma_initializer,
            beta_initializer=self.norm_beta_initializer,
            dtype=self.dtype_policy,
            name=name,
        )
        norm.build((None, width))
        return norm


_NORM_ARGS = """norm_gamma_initializer: initializer of the norms' scales (default `"ones"`).
        norm_beta_initializer: initializer of the norms' offsets (default `"zeros"`).
        norm_epsilon: the norms' epsilon, a positive float (default 1e-3)."""


@register_cell
class LayerNormLSTMCell(NormOptions, LSTMCell):
    __doc__ = f"""One layer-normalised LSTM step; TensorFlow Addons' `LayerNormLSTMCell`.

    Layer norm on the gate pre-activations, input and recurrent parts
    apart, and on the cell state, as TFA:

        z = LN_k(x_t W) + LN_r(h_{{t-1}} U) + b      # each LN over all 4 units gates
        i, f, o = σ(z_i), σ(z_f), σ(z_o)
        c_t = LN_c(f * c_{{t-1}} + i * act(z_c))       # the normalised state is carried
        h_t = o * act(c_t)

    `LN(v) = γ (v - mean(v)) / sqrt(var(v) + ε) + β` over the last axis
    (`keras.layers.LayerNormalization`). Weights: `LSTMCell`'s, then
    `kernel_norm`, `recurrent_norm` and `state_norm`, each with `gamma` and
    `beta`, as TFA names them, so TFA checkpoints load in order. Dropout
    applies one input and one recurrent mask to all gates, as TFA's.

    Args:
        units: positive int, the size of `h` and `c`.
        {_NORM_ARGS}
        **kwargs: every `LSTMCell` option but `proj_size` (`activation`,
            `recurrent_activation`, `use_bias`, `unit_forget_bias`,
            initializers, regularizers, constraints, `dropout`,
            `recurrent_dropout`, `seed`) and `keras.layers.Layer` arguments.

    Returns:
        Called as `cell(inputs, [h, c], training=False)`: `(h_t, [h_t, c_t])`.

    Raises:
        ValueError: as `LSTMCell`; `norm_epsilon` not positive; a `proj_size`.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.RNN(keras_rnnx.LayerNormLSTMCell(4), return_state=True)
        >>> [tuple(t.shape) for t in layer(np.zeros((2, 3, 5), "float32"))]
        [(2, 4), (2, 4), (2, 4)]
    """

    extra_options: tuple[str, ...] = LSTMCell.extra_options + NormOptions.norm_options

    def __init__(self, units: int, **kwargs: Any):
        if kwargs.get("proj_size") is not None:
            raise ValueError(
                "A layer-normalised LSTM has no projection. "
                f"Received: proj_size={kwargs['proj_size']!r}"
            )
        super().__init__(units, **kwargs)

    def build(self, input_shape: Structure) -> None:
        super().build(input_shape)
        self.kernel_norm = self._norm("kernel_norm", 4 * self.units)
        self.recurrent_norm = self._norm("recurrent_norm", 4 * self.units)
        self.state_norm = self._norm("state_norm", self.units)

    def call(
        self,
        inputs: Structure,
        states: Structure,
        training: bool | None = False,
        dropout_masks: Any = None,
    ) -> Structure:
        h_tm1, c_tm1 = states[0], states[1]
        dp, rdp, recurrent_kernel = self.masks(inputs, h_tm1, training, dropout_masks)
        z = self.kernel_norm(ops.matmul(apply_mask(inputs, dp[0]), self.kernel))
        recurrent = ops.matmul(apply_mask(h_tm1, rdp[0]), recurrent_kernel)
        z = z + self.recurrent_norm(recurrent)
        if self.bias is not None:
            z = z + self.bias
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = self.state_norm(f * c_tm1 + i * self.activation(z_c))
        o = self.recurrent_activation(z_o)
        h = o * self.activation(c)
        return h, [h, c]


@register_cell
class LayerNormGRUCell(NormOptions, GRUCell):
    __doc__ = f"""One layer-normalised GRU step: TFA's LSTM rule on Keras's GRU.

    Layer norm on the input and the recurrent projections, apart, before
    their biases (Keras's `reset_after=True` GRU, cuDNN's form):

        x_z, x_r, x_h = LN_k(x_t W) + b           # LN over all 3 units gates
        u_z, u_r, u_h = LN_r(h_{{t-1}} U) + b'
        z = σ(x_z + u_z),  r = σ(x_r + u_r),  ĥ = act(x_h + r * u_h)
        h_t = z * h_{{t-1}} + (1 - z) * ĥ

    Weights: `GRUCell`'s (`bias (2, 3 units)`), then `kernel_norm` and
    `recurrent_norm`, each with `gamma` and `beta`. Dropout applies one
    input and one recurrent mask to all gates.

    Args:
        units: positive int, the size of the state and the output.
        {_NORM_ARGS}
        **kwargs: every `GRUCell` option but `reset_after` (`activation`,
            `recurrent_activation`, `use_bias`, initializers, regularizers,
            constraints, `dropout`, `recurrent_dropout`, `seed`) and
            `keras.layers.Layer` arguments.

    Returns:
        Called as `cell(inputs, [h], training=False)`: `(h_t, [h_t])`.

    Raises:
        ValueError: as `GRUCell`; `norm_epsilon` not positive;
            `reset_after=False`.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.RNN(keras_rnnx.LayerNormGRUCell(4), return_sequences=True)
        >>> tuple(layer(np.zeros((2, 3, 5), "float32")).shape)
        (2, 3, 4)
    """

    extra_options: tuple[str, ...] = GRUCell.extra_options + NormOptions.norm_options

    def __init__(self, units: int, *, reset_after: bool = True, **kwargs: Any):
        if reset_after is not True:
            raise ValueError(
                "A layer-normalised GRU normalises the recurrent projection before the "
                f"reset gate: it needs `reset_after=True`. Received: reset_after={reset_after!r}"
            )
        super().__init__(units, reset_after=True, **kwargs)

    def build(self, input_shape: Structure) -> None:
        super().build(input_shape)
        self.kernel_norm = self._norm("kernel_norm", 3 * self.units)
        self.recurrent_norm = self._norm("recurrent_norm", 3 * self.units)

    def call(
        self,
        inputs: Structure,
        states: Structure,
        training: bool | None = False,
        dropout_masks: Any = None,
    ) -> Structure:
        nested = isinstance(states, (list, tuple))
        h_tm1 = states[0] if nested else states
        dp, rdp, recurrent_kernel = self.masks(inputs, h_tm1, training, dropout_masks)
        x = self.kernel_norm(ops.matmul(apply_mask(inputs, dp[0]), self.kernel))
        u = ops.matmul(apply_mask(h_tm1, rdp[0]), recurrent_kernel)
        u = self.recurrent_norm(u)
        if self.bias is not None:
            x, u = x + self.bias[0], u + self.bias[1]
        x_z, x_r, x_h = ops.split(x, 3, axis=-1)
        u_z, u_r, u_h = ops.split(u, 3, axis=-1)
        z = self.recurrent_activation(x_z + u_z)
        r = self.recurrent_activation(x_r + u_r)
        hh = self.activation(x_h + r * u_h)
        h = z * h_tm1 + (1 - z) * hh
        return h, [h] if nested else h
