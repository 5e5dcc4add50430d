"""The long short-term memory cell (Hochreiter & Schmidhuber, 1997)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_rnnx.cells.base import BuiltinCell, named_arguments
from keras_rnnx.cells.dropout import apply_mask
from keras_rnnx.cells.registry import register_cell
from keras_rnnx.types import Activation, Cell, Constraint, Initializer, Regularizer, Structure


@register_cell
class LSTMCell(BuiltinCell):
    """One LSTM step; a drop-in for `keras.layers.LSTMCell`.

    Gates in Keras's (and cuDNN's) order i, f, c, o:

        z = x_t W + h_{t-1} U + b            # (batch, 4 units)
        i = σ(z_i), f = σ(z_f), o = σ(z_o)    # σ = recurrent_activation
        c_t = f * c_{t-1} + i * act(z_c)      # act = activation
        h_t = o * act(c_t)

    `W = kernel (features, 4 units)`, `U = recurrent_kernel (units, 4 units)`,
    `b = bias (4 units,)`. States are `[h, c]`.

    With `proj_size` (an LSTM with a recurrent projection, LSTMP, as
    `torch.nn.LSTM(proj_size=...)` and cuDNN's `num_proj`), the output is
    projected, `h_t = (o * act(c_t)) P` with `P = projection_kernel (units,
    proj_size)`, and fed back: `U` is `(proj_size, 4 units)`, the states are
    `[h (proj_size), c (units)]`.

    Args:
        units: positive int, the size of `h` and `c`.
        activation: activation of the candidate and the output (default `"tanh"`).
        recurrent_activation: activation of the gates (default `"sigmoid"`).
        use_bias: whether to add `bias`.
        unit_forget_bias: initialise the forget-gate bias to 1 (default `True`).
        kernel_initializer, recurrent_initializer, bias_initializer: initializers.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints.
        dropout: fraction of the inputs to drop, in [0, 1].
        recurrent_dropout: fraction of `h_{t-1}` to drop, in [0, 1] (then each
            gate draws its own masks, as Keras does).
        recurrent_kernel_dropout: fraction of `recurrent_kernel`'s entries to
            drop in training, one mask per batch for every row and step
            (DropConnect, AWD-LSTM's weight drop): recurrent regularisation
            that keeps the fused kernels, where `recurrent_dropout` runs the
            step loop. keras-rnnx's own; saved only when set.
        proj_size: `None` (Keras's LSTM), or a positive int below `units`:
            the size of the projected output `h`. `projection_kernel` takes
            the kernel's initializer, regularizer and constraint.
            keras-rnnx's own; saved only when set.
        seed: int seed for the dropout masks.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called as `cell(inputs, [h, c], training=False)`: `(h_t, [h_t, c_t])`.

    Raises:
        ValueError: `units` not a positive int, an unknown option name, a
            dropout rate outside [0, 1], or `proj_size` not a positive int
            below `units`.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.RNN(keras_rnnx.LSTMCell(4), return_state=True)
        >>> out, h, c = layer(np.zeros((2, 3, 5), "float32"))
        >>> [tuple(t.shape) for t in (out, c)]
        [(2, 4), (2, 4)]
        >>> projected = keras_rnnx.LSTM(8, proj_size=3, return_state=True)
        >>> [tuple(t.shape) for t in projected(np.zeros((2, 3, 5), "float32"))]
        [(2, 3), (2, 3), (2, 8)]
    """

    gates = 4
    extra_options: tuple[str, ...] = ("recurrent_activation", "unit_forget_bias")
    own_options = {**BuiltinCell.own_options, "proj_size": None}

    def __init__(
        self,
        units: int,
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
        kernel_constraint: Constraint = None,
        recurrent_constraint: Constraint = None,
        bias_constraint: Constraint = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        *,
        recurrent_kernel_dropout: float = 0.0,
        proj_size: int | None = None,
        **kwargs: Any,
    ):
        arguments = named_arguments(locals())
        if proj_size is not None and (
            isinstance(proj_size, bool)
            or not isinstance(proj_size, int)
            or not 0 < proj_size < units
        ):
            # torch and cuDNN take a projection only to fewer units.
            raise ValueError(
                "Expected `proj_size` to be None or a positive integer below "
                f"`units` ({units!r}). Received: proj_size={proj_size!r}"
            )
        super().__init__(**arguments)
        self.state_size = [self.output_size, units]

    @property
    def output_size(self) -> Any:
        return self.proj_size or self.units

    def build(self, input_shape: Structure) -> None:
        super().build(input_shape)
        # Made last, so that a cell without one makes Keras's weights in
        # Keras's order.
        self.projection_kernel = None
        if self.proj_size:
            self.projection_kernel = self.add_weight(
                shape=(self.units, self.proj_size),
                name="projection_kernel",
                initializer=self.kernel_initializer,
                regularizer=self.kernel_regularizer,
                constraint=self.kernel_constraint,
            )

    def bias_initializer_fn(self) -> Initializer:
        return forget_bias_initializer(self)

    def call(
        self,
        inputs: Structure,
        states: Structure,
        training: bool | None = False,
        dropout_masks: Any = None,
    ) -> Structure:
        h_tm1, c_tm1 = states[0], states[1]
        dp, rdp, recurrent_kernel = self.masks(inputs, h_tm1, training, dropout_masks)
        if self.dropout_mask_count is None or not training:
            z = ops.matmul(apply_mask(inputs, dp[0]), self.kernel)
            z = ops.add(z, ops.matmul(h_tm1, recurrent_kernel))
            if self.bias is not None:
                z = ops.add(z, self.bias)
            z_i, z_f, z_c, z_o = ops.split(z, 4, axis=1)
        else:  # one dropout mask per gate
            kernels = ops.split(self.kernel, 4, axis=1)
            recurrent = ops.split(recurrent_kernel, 4, axis=1)
            biases = ops.split(self.bias, 4, axis=0) if self.bias is not None else [0] * 4
            z_i, z_f, z_c, z_o = (
                ops.matmul(apply_mask(inputs, m), k) + b + ops.matmul(apply_mask(h_tm1, r), u)
                for m, k, b, r, u in zip(dp, kernels, biases, rdp, recurrent)
            )
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c_tm1 + i * self.activation(z_c)
        o = self.recurrent_activation(z_o)
        h = o * self.activation(c)
        if self.projection_kernel is not None:
            # Cast: Keras's `matmul` on torch gives float32 for float64 inputs.
            h = ops.cast(ops.matmul(h, self.projection_kernel), h.dtype)
        return h, [h, c]


def forget_bias_initializer(cell: Cell):
    """The bias initializer of an LSTM-like cell (gates i, f, c, o of `cell.units`
    each): `cell.bias_initializer`, with ones for the forget gate when
    `cell.unit_forget_bias`, as Keras's LSTM and ConvLSTM cells."""
    if not cell.unit_forget_bias:
        return cell.bias_initializer
    units, init = cell.units, cell.bias_initializer

    def initializer(_, *args, **kwargs):
        ones = keras.initializers.get("ones")
        return ops.concatenate(
            [
                init((units,), *args, **kwargs),
                ones((units,), *args, **kwargs),
                init((2 * units,), *args, **kwargs),
            ]
        )

    return initializer
