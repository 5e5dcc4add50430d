"""The sLSTM of xLSTM (Beck et al., 2024, "xLSTM: Extended Long Short-Term
Memory"): a scalar memory with exponential gating, a normaliser and a
stabiliser, and a recurrence block-diagonal over heads."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from keras_rnnx.cells.base import Options, ZeroStates
from keras_rnnx.cells.matrix import _positive_int, heads_dividing
from keras_rnnx.cells.mlstm import FORGET_GATES, log_forget
from keras_rnnx.cells.registry import register_cell
from keras_rnnx.types import Config, Structure


def _forget_bias(heads: int, head_dim: int) -> np.ndarray:
    """xLSTM's `powerlaw_blockdependent` forget-gate bias of one block:
    `-(-5 + 12 (j / (head_dim - 1))^0.3)` for unit `j` of every head."""
    ratio = np.arange(head_dim) / max(head_dim - 1, 1)
    return np.tile(-(-5.0 + 12.0 * ratio**0.3), (heads, 1))


@register_cell
class sLSTMCell(keras.layers.Layer, Options, ZeroStates):  # noqa: N801  (the paper's name)
    """One sLSTM step (xLSTM, eq. 8-17, with the stabiliser of its code), per
    head of `units / heads` units, with the recurrent weights of each head
    its own block (no mixing across heads):

        [ĩ, f̃, z̃, õ]_t = x_t W + h_{t-1} R + b        (R block-diagonal)
        m_t = max(log f_t + m_{t-1}, ĩ_t)              (ĩ_t where n_{t-1} = 0)
        c_t = exp(log f_t + m_{t-1} - m_t) c_{t-1} + exp(ĩ_t - m_t) tanh(z̃_t)
        n_t = exp(log f_t + m_{t-1} - m_t) n_{t-1} + exp(ĩ_t - m_t)
        h_t = σ(õ_t) c_t / n_t

    with `log f_t = log σ(f̃_t)` (default) or `f̃_t` (`forget_gate="exp"`).
    As xLSTM's cell: the recurrent weights start at zero, the biases at zero
    but the forget gate's, `-(-5 + 12 (j / (d - 1))^0.3)` for unit `j` of a
    head of `d` (its `powerlaw_blockdependent`, one block); a row's first
    step (`n = 0`) takes `m_t = ĩ_t`, as theirs does for a whole batch. The
    sLSTM block around the cell (a causal convolution for `i` and `f`,
    headwise projections, group norm, the gated MLP) is a recipe in the docs
    ("Cells beyond Keras").

    Weights: `kernel (features, heads 4 head_dim)` and `bias (heads, 4,
    head_dim)`, both head-major with the gates `[i, f, z, o]` of each head
    (xLSTM's layout); `recurrent_kernel (heads, head_dim, 4, head_dim)`.

    Args:
        units: positive int, the size of the state and the output.
        heads: positive int dividing `units` (default 4, as xLSTM's).
        forget_gate: `"sigmoid"` or `"exp"`.
        kernel_initializer: the initializer of `kernel` (`"glorot_uniform"`).
        recurrent_initializer: the initializer of `recurrent_kernel`
            (`"zeros"`, as xLSTM's).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called as `cell(inputs, [h, c, n, m])`: `(h_t, [h_t, c_t, n_t, m_t])`.

    Raises:
        ValueError: `units` or `heads` not a positive int, `heads` not
            dividing `units`; `forget_gate` not `"sigmoid"` or `"exp"`.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.RNN(keras_rnnx.sLSTMCell(8, heads=2), return_state=True)
        >>> h, *states = layer(np.zeros((2, 50, 4), "float32"))
        >>> tuple(h.shape), len(states)
        ((2, 8), 4)
    """

    options = ("units", "heads", "forget_gate", "kernel_initializer", "recurrent_initializer")

    def __init__(
        self,
        units: int,
        *,
        heads: int = 4,
        forget_gate: str = "sigmoid",
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "zeros",
        **kwargs: Any,
    ):
        heads = heads_dividing(_positive_int("units", units), heads)
        if forget_gate not in FORGET_GATES:
            raise ValueError(
                f"Expected `forget_gate` to be one of {FORGET_GATES}. "
                f"Received: forget_gate={forget_gate!r}"
            )
        super().__init__(**kwargs)
        self.units, self.heads, self.forget_gate = units, heads, forget_gate
        self._set_option("kernel_initializer", kernel_initializer)
        self._set_option("recurrent_initializer", recurrent_initializer)

    @property
    def state_size(self) -> Any:
        return [self.units] * 4

    @property
    def output_size(self) -> Any:
        return self.units

    def build(self, input_shape: Structure) -> None:
        heads, width = self.heads, self.units // self.heads
        self.kernel = self.add_weight(
            shape=(input_shape[-1], 4 * self.units),
            name="kernel",
            initializer=self.kernel_initializer,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(heads, width, 4, width),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
        )
        bias = np.zeros((heads, 4, width), "float32")
        bias[:, 1] = _forget_bias(heads, width)
        self.bias = self.add_weight(
            shape=(heads, 4, width),
            name="bias",
            initializer=lambda shape, dtype=None: ops.cast(bias, dtype),
        )

    def call(self, inputs: Structure, states: Structure) -> Structure:
        h, c, n, m = states
        heads, width = self.heads, self.units // self.heads

        def per_head(x):
            return ops.reshape(x, (-1, heads, width))

        x = ops.reshape(ops.matmul(inputs, self.kernel), (-1, heads, 4, width))
        recurrent = ops.einsum("bhd,hdge->bhge", per_head(h), self.recurrent_kernel)
        i, f, z, o = ops.unstack(x + recurrent + self.bias, axis=2)
        c, n, m = per_head(c), per_head(n), per_head(m)
        carried = m + log_forget(f, self.forget_gate)
        m_new = ops.where(ops.equal(n, 0), i, ops.maximum(i, carried))
        forget, write = ops.exp(carried - m_new), ops.exp(i - m_new)
        c = forget * c + write * ops.tanh(z)
        n = forget * n + write
        h = ops.sigmoid(o) * c / n
        new = [ops.reshape(t, (-1, self.units)) for t in (h, c, n, m_new)]
        return new[0], new

    def get_config(self) -> Config:
        return {**super().get_config(), **self.options_config()}
