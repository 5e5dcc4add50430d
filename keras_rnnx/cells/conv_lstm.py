"""The convolutional LSTM cell (Shi et al., 2015)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_rnnx.cells.base import BuiltinCell, named_arguments
from keras_rnnx.cells.dropout import apply_mask
from keras_rnnx.cells.lstm import forget_bias_initializer
from keras_rnnx.cells.registry import register_cell
from keras_rnnx.types import Activation, Constraint, Initializer, IntOrTuple, Regularizer, Structure

PADDINGS = ("valid", "same")
DATA_FORMATS = ("channels_last", "channels_first")
CONV_OPTIONS = (
    "rank",
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "data_format",
    "dilation_rate",
)


def _int_tuple(value, rank, name, minimum=1):
    """`value` (an int or `rank` ints) as a tuple of `rank` ints >= `minimum`."""
    values = (value,) * rank if isinstance(value, int) else value
    try:
        values = tuple(values)
    except TypeError:
        values = ()
    if len(values) != rank or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in values
    ):
        raise ValueError(
            f"Expected `{name}` to be an int >= {minimum} or a tuple of {rank} of them. "
            f"Received: {name}={value!r}"
        )
    return values


def conv_output_dims(
    dims: tuple[int | None, ...],
    kernel_size: tuple[int, ...],
    strides: tuple[int, ...],
    dilation_rate: tuple[int, ...],
    padding: str,
) -> tuple[int | None, ...]:
    """The spatial dims of a convolution's output (`None` stays unknown)."""
    out: list[int | None] = []
    for size, k, s, d in zip(dims, kernel_size, strides, dilation_rate):
        if size is None:
            out.append(None)
        elif padding == "same":
            out.append(-(-size // s))
        else:
            out.append(-(-(size - d * (k - 1)) // s))
    return tuple(out)


@register_cell
class ConvLSTMCell(BuiltinCell):
    """One convolutional LSTM step; the cell of `keras.layers.ConvLSTM1D/2D/3D`.

    The LSTM equations (gates i, f, c, o, as `LSTMCell`) with convolutions in
    place of the matrix products, on images of `rank` spatial dimensions:

        z = conv(x_t, W; strides, padding, dilation) + b + conv(h_{t-1}, U; "same")
        i, f, o = σ(z_i), σ(z_f), σ(z_o);  c_t = f * c_{t-1} + i * act(z_c)
        h_t = o * act(c_t)

    `W = kernel (*kernel_size, channels, 4 filters)`, `U = recurrent_kernel
    (*kernel_size, filters, 4 filters)`, `b = bias (4 filters,)`, as Keras
    names and shapes them; the states `[h, c]` are images of `filters`
    channels, of the input convolution's output size. Each step runs one
    convolution of the input and one of `h` for all four gates (Keras runs
    four of each).

    Args:
        rank: 1, 2 or 3, the number of spatial dimensions.
        filters: positive int, the channels of the output and the states.
        kernel_size: an int or `rank` ints, the convolution window.
        strides: an int or `rank` ints, the input convolution's strides
            (default 1); not above 1 together with `dilation_rate`.
        padding: `"valid"` (default) or `"same"`, the input convolution's padding.
        data_format: `"channels_last"` (inputs `(batch, *spatial, channels)`)
            or `"channels_first"` (`(batch, channels, *spatial)`); default
            `keras.config.image_data_format()`.
        dilation_rate: an int or `rank` ints, the input convolution's dilation.
        activation: activation of the candidate and the output (default `"tanh"`).
        recurrent_activation: activation of the gates (default `"sigmoid"`).
        use_bias: whether to add `bias`.
        unit_forget_bias: initialise the forget-gate bias to 1 (default `True`).
        kernel_initializer, recurrent_initializer, bias_initializer: initializers.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints.
        dropout: fraction of the inputs to drop, in [0, 1] (a mask per gate,
            as Keras).
        recurrent_dropout: fraction of `h_{t-1}` to drop, in [0, 1].
        recurrent_kernel_dropout: DropConnect on `recurrent_kernel`, as
            `LSTMCell`'s; keras-rnnx's own, saved only when set.
        seed: int seed for the dropout masks.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called as `cell(inputs, [h, c], training=False)` on one step
        `(batch, *spatial, channels)`: `(h_t, [h_t, c_t])`.

    Raises:
        ValueError: `rank` not 1, 2 or 3; `filters` not a positive int; a
            `kernel_size`, `strides` or `dilation_rate` not `rank` positive
            ints; strides and dilation both above 1; an unknown `padding` or
            `data_format`; a dropout rate outside [0, 1]; when built, inputs
            of another rank or with unknown spatial or channel dimensions.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> cell = keras_rnnx.ConvLSTMCell(2, filters=4, kernel_size=3, padding="same")
        >>> layer = keras_rnnx.RNN(cell, return_state=True)
        >>> out, h, c = layer(np.zeros((2, 5, 8, 8, 3), "float32"))
        >>> [tuple(t.shape) for t in (out, c)]
        [(2, 8, 8, 4), (2, 8, 8, 4)]
    """

    gates = 4
    seed_generator_first = True  # as Keras's ConvLSTMCell
    options: tuple[str, ...] = (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "data_format",
        "dilation_rate",
        "activation",
        "recurrent_activation",
        "use_bias",
        "kernel_initializer",
        "recurrent_initializer",
        "bias_initializer",
        "unit_forget_bias",
        "kernel_regularizer",
        "recurrent_regularizer",
        "bias_regularizer",
        "kernel_constraint",
        "recurrent_constraint",
        "bias_constraint",
        "dropout",
        "recurrent_dropout",
        "seed",
    )
    # Keras's cell does not save its rank (it cannot be loaded on its own);
    # this one does.
    extra_options = ("rank",)

    def __init__(
        self,
        rank: int,
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
        kernel_constraint: Constraint = None,
        recurrent_constraint: Constraint = None,
        bias_constraint: Constraint = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        *,
        recurrent_kernel_dropout: float = 0.0,
        **kwargs: Any,
    ):
        # The convolution's options are set here; the LSTM's by `BuiltinCell`.
        arguments = {k: v for k, v in named_arguments(locals()).items() if k not in CONV_OPTIONS}
        if rank not in (1, 2, 3) or isinstance(rank, bool):
            raise ValueError(
                f"Rank {rank} convolutions are not currently implemented. "
                f"Received: rank={rank!r}. Expected `rank` to be 1, 2 or 3."
            )
        if isinstance(filters, bool) or not isinstance(filters, int) or filters <= 0:
            raise ValueError(
                f"Expected `filters` to be a positive integer. Received: filters={filters!r}"
            )
        self.rank = rank
        self.kernel_size = _int_tuple(kernel_size, rank, "kernel_size")
        self.strides = _int_tuple(strides, rank, "strides")
        self.dilation_rate = _int_tuple(dilation_rate, rank, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "Specifying `strides > 1` is not compatible with `dilation_rate > 1`. "
                "Please provide `strides=1` or `dilation_rate=1`. "
                f"Received: strides={strides!r} and dilation_rate={dilation_rate!r}"
            )
        self.padding = padding.lower() if isinstance(padding, str) else padding
        if self.padding not in PADDINGS:
            raise ValueError(
                f"Expected `padding` to be one of {PADDINGS}. Received: padding={padding!r}"
            )
        data_format = data_format or keras.config.image_data_format()
        self.data_format = data_format.lower() if isinstance(data_format, str) else data_format
        if self.data_format not in DATA_FORMATS:
            raise ValueError(
                f"Expected `data_format` to be one of {DATA_FORMATS}. "
                f"Received: data_format={data_format!r}"
            )
        super().__init__(filters, **arguments)
        # As Keras's ConvLSTMCell: each gate draws its own masks.
        self.dropout_mask_count = self.gates
        self.spatial_dims = (None,) * rank

    @property
    def filters(self) -> int:
        return self.units

    def _image(self, spatial, channels):
        if self.data_format == "channels_last":
            return (*spatial, channels)
        return (channels, *spatial)

    @property
    def state_size(self) -> Any:
        """`[h, c]`'s shapes, images of `filters` channels (their spatial
        dimensions `None` until the cell is built)."""
        dims = conv_output_dims(
            self.spatial_dims, self.kernel_size, self.strides, self.dilation_rate, self.padding
        )
        shape = self._image(dims, self.filters)
        return [shape, shape]

    @property
    def output_size(self) -> Any:
        return self.state_size[0]

    def build(self, input_shape: Structure) -> None:
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"Cell {self.name!r} of rank {self.rank} expects steps of rank "
                f"{self.rank + 2}, (batch, {', '.join(['...'] * (self.rank + 1))}). "
                f"Received: input shape {input_shape}"
            )
        if self.data_format == "channels_last":
            channels, spatial = input_shape[-1], input_shape[1:-1]
        else:
            channels, spatial = input_shape[1], input_shape[2:]
        if None in spatial:
            raise ValueError(
                "ConvLSTM layers only support static input shapes for the spatial "
                f"dimension. Received invalid input shape: input_shape={input_shape}"
            )
        if channels is None:
            raise ValueError(
                "The channel dimension of the inputs (last axis) should be defined. "
                f"Found None. Full input shape received: input_shape={input_shape}"
            )
        self.spatial_dims = tuple(spatial)
        self.kernel = self._add_weight("kernel", (*self.kernel_size, channels, 4 * self.filters))
        self.recurrent_kernel = self._add_weight(
            "recurrent_kernel", (*self.kernel_size, self.filters, 4 * self.filters)
        )
        self.bias = (
            self._add_weight("bias", (4 * self.filters,), forget_bias_initializer(self))
            if self.use_bias
            else None
        )

    def _conv(self, x, kernel, **options):
        if self.data_format == "channels_first" and keras.backend.backend() == "tensorflow":
            # TensorFlow's CPU convolutions take channels last only, unless
            # oneDNN runs them (it does not on AMD CPUs, where Keras's own
            # ConvLSTM fails): run them channels last, between transposes.
            last = (0, *range(2, self.rank + 2), 1)
            first = (0, self.rank + 1, *range(1, self.rank + 1))
            z = ops.conv(ops.transpose(x, last), kernel, data_format="channels_last", **options)
            return ops.transpose(z, first)
        return ops.conv(x, kernel, data_format=self.data_format, **options)

    def _input_conv(self, x, kernel, bias):
        z = self._conv(
            x,
            kernel,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
        )
        if bias is None:
            return z
        channels = bias.shape[0]
        return z + ops.reshape(bias, self._image((1,) * self.rank, channels))

    def _recurrent_conv(self, h, kernel):
        return self._conv(h, kernel, padding="same")

    def call(
        self,
        inputs: Structure,
        states: Structure,
        training: bool | None = False,
        dropout_masks: Any = None,
    ) -> Structure:
        h_tm1, c_tm1 = states[0], states[1]
        dp, rdp, recurrent_kernel = self.masks(inputs, h_tm1, training, dropout_masks)
        axis = 1 if self.data_format == "channels_first" else -1
        if all(m is None for m in dp + rdp):
            # One convolution each for the four gates.
            z = self._input_conv(inputs, self.kernel, self.bias)
            z = z + self._recurrent_conv(h_tm1, recurrent_kernel)
            z_i, z_f, z_c, z_o = ops.split(z, 4, axis=axis)
        else:  # a dropout mask per gate: a convolution per gate, as Keras
            kernels = ops.split(self.kernel, 4, axis=-1)
            recurrent = ops.split(recurrent_kernel, 4, axis=-1)
            biases = ops.split(self.bias, 4) if self.bias is not None else [None] * 4
            z_i, z_f, z_c, z_o = (
                self._input_conv(apply_mask(inputs, m), k, b)
                + self._recurrent_conv(apply_mask(h_tm1, r), u)
                for m, k, b, r, u in zip(dp, kernels, biases, rdp, recurrent)
            )
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c_tm1 + i * self.activation(z_c)
        o = self.recurrent_activation(z_o)
        h = o * self.activation(c)
        return h, [h, c]

    def compute_output_shape(
        self, inputs_shape: Structure, states_shape: Structure = None
    ) -> Structure:
        shape = (inputs_shape[0], *self.state_size[0])
        return shape, [shape, shape]
