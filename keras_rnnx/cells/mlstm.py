"""The mLSTM of xLSTM (Beck et al., 2024, "xLSTM: Extended Long Short-Term
Memory"): a matrix memory with exponential gating."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from keras import ops

from keras_rnnx.cells.matrix import (
    MatrixGates,
    MatrixRecurrentCell,
    build_gated_norm,
    build_query_key_value,
    gated_norm,
    query_key_value,
)
from keras_rnnx.cells.registry import register_cell
from keras_rnnx.types import Structure, Tensor

FORGET_GATES = ("sigmoid", "exp")


def log_forget(preactivation: Tensor, forget_gate: str) -> Tensor:
    """`log f_t`: `log σ(f̃_t)` for a sigmoid gate, `f̃_t` for an exponential one."""
    return ops.log_sigmoid(preactivation) if forget_gate == "sigmoid" else preactivation


@register_cell
class mLSTMCell(MatrixRecurrentCell):  # noqa: N801  (the paper's name)
    """One mLSTM step, per head (xLSTM, eq. 19-27, with the stabiliser):

        q_t = x_t W_q / √d_k,  k_t = x_t W_k,  v_t = x_t W_v
        i_t = x_t w_i + b_i,   log f_t = log σ(x_t w_f + b_f)   (or x_t w_f + b_f)
        m_t = max(log f_t + m_{t-1}, i_t)
        C_t = exp(log f_t + m_{t-1} - m_t) C_{t-1} + exp(i_t - m_t) k_t v_tᵀ
        n_t = exp(log f_t + m_{t-1} - m_t) n_{t-1} + exp(i_t - m_t) k_t
        h̃_t = C_tᵀ q_t / (max(|n_tᵀ q_t|, exp(-m_t)) + 1e-6)
        h_t = σ(x_t W_o + b_o) ⊙ RMSNorm(h̃_t)                 (heads side by side)

    The input gate is exponential; the forget gate sigmoid (default) or
    exponential (`forget_gate="exp"`). `q` carries the `1/√d_k` scale, as in
    `mlstm_kernels`, so the states are theirs. The gates' weights start at
    zero and the forget gate's bias at `linspace(3, 6)` over the heads, as in
    xLSTM's code (forget little at first). The xLSTM block around the cell
    (up-projection, causal convolution for `q` and `k`, skip, down-projection)
    is a recipe in the docs ("Cells beyond Keras").

    Weights: `kernel (features, heads (2 key_dim + value_dim))`, `[W_q | W_k
    | W_v]`; `gate_kernel (features, 2 heads)`, `[w_i | w_f]`, and
    `gate_bias`; with `output_gate`, `output_gate_kernel (features, heads
    value_dim)` and `output_gate_bias`; with `normalize`, `norm_scale
    (value_dim,)`.

    Args:
        heads: positive int, the number of heads.
        key_dim: positive int, the size of queries and keys per head.
        value_dim: positive int, the size of values per head (default
            `key_dim`).
        forget_gate: `"sigmoid"` or `"exp"`.
        output_gate: whether to gate the output with `σ(x W_o + b_o)`.
        normalize: whether to RMS-normalise each head's `h̃_t`.
        kernel_initializer: the initializer of the projections.
        chunk_size: the chunkwise kernel's steps per chunk, or `None`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called as `cell(inputs, [C, n, m])`: `(h_t, [C_t, n_t, m_t])`.

    Raises:
        ValueError: a size not a positive int; `forget_gate` not `"sigmoid"`
            or `"exp"`.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.RNN(keras_rnnx.mLSTMCell(2, 8), return_state=True)
        >>> h, c, n, m = layer(np.zeros((2, 100, 4), "float32"))
        >>> tuple(h.shape), tuple(c.shape), tuple(n.shape), tuple(m.shape)
        ((2, 16), (2, 2, 8, 8), (2, 2, 8), (2, 2))
    """

    normalized = True
    options = (
        "heads",
        "key_dim",
        "value_dim",
        "forget_gate",
        "output_gate",
        "normalize",
        "kernel_initializer",
    )

    def __init__(
        self,
        heads: int,
        key_dim: int,
        value_dim: int | None = None,
        *,
        forget_gate: str = "sigmoid",
        output_gate: bool = True,
        normalize: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ):
        super().__init__(heads, key_dim, value_dim, **kwargs)
        if forget_gate not in FORGET_GATES:
            raise ValueError(
                f"Expected `forget_gate` to be one of {FORGET_GATES}. "
                f"Received: forget_gate={forget_gate!r}"
            )
        self.forget_gate = forget_gate
        self.output_gate, self.normalize = bool(output_gate), bool(normalize)
        self._set_option("kernel_initializer", kernel_initializer)

    def build(self, input_shape: Structure) -> None:
        features, heads = input_shape[-1], self.heads
        build_query_key_value(self, features)
        self.gate_kernel = self.add_weight(
            shape=(features, 2 * heads), name="gate_kernel", initializer="zeros"
        )
        forget_bias = np.linspace(3.0, 6.0, heads) if heads > 1 else np.array([3.0])
        bias = np.concatenate([np.zeros(heads), forget_bias]).astype("float32")
        self.gate_bias = self.add_weight(
            shape=(2 * heads,),
            name="gate_bias",
            initializer=lambda shape, dtype=None: ops.cast(bias, dtype),
        )
        build_gated_norm(self, features)

    def gates(self, inputs: Structure) -> MatrixGates:
        q, k, v = query_key_value(self, ops.matmul(inputs, self.kernel))
        i, f = ops.split(ops.matmul(inputs, self.gate_kernel) + self.gate_bias, 2, axis=-1)
        log_decay = log_forget(f, self.forget_gate)
        return MatrixGates(
            q * (1 / math.sqrt(self.key_dim)),
            k,
            v,
            ops.expand_dims(log_decay, -1),
            ops.expand_dims(i, -1),
        )

    def readout(self, o: Tensor, inputs: Structure) -> Tensor:
        return gated_norm(self, o, inputs, ops.sigmoid)
