"""minGRU and minLSTM (Feng et al., 2024, "Were RNNs All We Needed?").

Their gates depend on the input alone, so the state is a linear recurrence
(`keras_rnnx.LinearRecurrentCell`) and a sequence trains with a parallel scan.
"""

from __future__ import annotations

from typing import Any

from keras import ops

from keras_rnnx.cells.linear import LinearRecurrentCell
from keras_rnnx.cells.registry import register_cell
from keras_rnnx.types import Constraint, Initializer, Regularizer, Structure, Tensor


def g(x: Tensor):
    """The paper's positive candidate activation: `x + 0.5` for `x >= 0`, else `σ(x)`."""
    return ops.where(x >= 0, ops.relu(x) + 0.5, ops.sigmoid(x))


def log_g(x: Tensor):
    """`log(g(x))`, computed stably."""
    return ops.where(x >= 0, ops.log(ops.relu(x) + 0.5), ops.log_sigmoid(x))


class ProjectedCell(LinearRecurrentCell):
    """A linear-recurrence cell whose coefficients come from one projection of
    the input, `x W + b`, with `blocks` blocks of `units`."""

    blocks: int
    options = (
        "units",
        "use_bias",
        "kernel_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "bias_regularizer",
        "kernel_constraint",
        "bias_constraint",
        "log_space",
    )

    def __init__(
        self,
        units: int,
        *,
        log_space: bool = False,
        use_bias: bool = True,
        kernel_initializer: Initializer = "glorot_uniform",
        bias_initializer: Initializer = "zeros",
        kernel_regularizer: Regularizer = None,
        bias_regularizer: Regularizer = None,
        kernel_constraint: Constraint = None,
        bias_constraint: Constraint = None,
        **kwargs: Any,
    ):
        super().__init__(units, **kwargs)
        if not isinstance(log_space, bool):
            raise ValueError(
                f"Expected `log_space` to be a bool. Received: log_space={log_space!r}"
            )
        self.log_space = log_space
        self.use_bias = use_bias
        for name, value in (
            ("kernel_initializer", kernel_initializer),
            ("bias_initializer", bias_initializer),
            ("kernel_regularizer", kernel_regularizer),
            ("bias_regularizer", bias_regularizer),
            ("kernel_constraint", kernel_constraint),
            ("bias_constraint", bias_constraint),
        ):
            self._set_option(name, value)

    def build(self, input_shape: Structure) -> None:
        width = self.blocks * self.units
        self.kernel = self.add_weight(
            shape=(input_shape[-1], width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(width,),
                name="bias",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )

    def projections(self, inputs: Structure) -> list[Tensor]:
        z = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            z = z + self.bias
        return ops.split(z, self.blocks, axis=-1)


_ARGS = """Args:
        units: positive int, the size of the state and the output.
        log_space: compute in log space, as the paper's long-sequence form
            (the candidate then goes through `g`, which keeps it positive);
            default `False`, the paper's plain form.
        use_bias: whether to add `bias`.
        kernel_initializer, bias_initializer: initializers.
        kernel_regularizer, bias_regularizer: regularizers.
        kernel_constraint, bias_constraint: constraints.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called as `cell(inputs, [h])`: `(h_t, [h_t])`.

    Raises:
        ValueError: `units` not a positive int, `log_space` not a bool, an
            unknown option name."""


@register_cell
class MinGRUCell(ProjectedCell):
    __doc__ = f"""One minGRU step: a GRU whose gate and candidate see only the input.

        z_t = σ(x_t W_z + b_z),  h̃_t = x_t W_h + b_h        (log_space: g(x_t W_h + b_h))
        h_t = (1 - z_t) * h_{{t-1}} + z_t * h̃_t

    `kernel (features, 2 units)` holds `[W_z | W_h]`, `bias (2 units,)`.
    With `log_space`, `log(1 - z) = -softplus(k)`, `log z = -softplus(-k)`
    and `log g(h̃)` feed the log-space scan, as in the paper's appendix.

    {_ARGS}

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.RNN(keras_rnnx.MinGRUCell(8), return_sequences=True)
        >>> tuple(layer(np.zeros((2, 100, 3), "float32")).shape)
        (2, 100, 8)
    """

    blocks = 2

    def coefficients(self, inputs: Structure) -> tuple[Tensor, Tensor]:
        k, candidate = self.projections(inputs)
        if self.log_space:
            return ops.log_sigmoid(-k), ops.log_sigmoid(k) + log_g(candidate)
        return ops.sigmoid(-k), ops.sigmoid(k) * candidate


@register_cell
class MinLSTMCell(ProjectedCell):
    __doc__ = f"""One minLSTM step: an LSTM whose gates see only the input, normalised.

        f_t = σ(x_t W_f + b_f),  i_t = σ(x_t W_i + b_i),  h̃_t = x_t W_h + b_h
        f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)
        h_t = f'_t * h_{{t-1}} + i'_t * h̃_t                  (log_space: g(h̃_t))

    `kernel (features, 3 units)` holds `[W_f | W_i | W_h]`, `bias (3 units,)`.
    The normalisation makes the state's scale independent of the sequence
    length (the paper's "length independence"); with `log_space`, `log f'`
    and `log i'` come from `softplus` of the gates' log-ratio.

    {_ARGS}

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.RNN(keras_rnnx.MinLSTMCell(8, log_space=True))
        >>> tuple(layer(np.zeros((2, 100, 3), "float32")).shape)
        (2, 8)
    """

    blocks = 3

    def coefficients(self, inputs: Structure) -> tuple[Tensor, Tensor]:
        k_f, k_i, candidate = self.projections(inputs)
        # log(i / f), from log σ(k) = -softplus(-k).
        ratio = ops.log_sigmoid(k_i) - ops.log_sigmoid(k_f)
        if self.log_space:
            return ops.log_sigmoid(-ratio), ops.log_sigmoid(ratio) + log_g(candidate)
        return ops.sigmoid(-ratio), ops.sigmoid(ratio) * candidate
