"""Gated linear attention (Yang et al., 2024, "Gated Linear Attention
Transformers with Hardware-Efficient Training")."""

from __future__ import annotations

import math
from typing import Any

from keras import ops

from keras_rnnx.cells.matrix import (
    MatrixGates,
    MatrixRecurrentCell,
    _positive_int,
    build_gated_norm,
    build_query_key_value,
    gated_norm,
    query_key_value,
    split_heads,
)
from keras_rnnx.cells.registry import register_cell
from keras_rnnx.types import Structure, Tensor


@register_cell
class GLACell(MatrixRecurrentCell):
    """One step of gated linear attention, per head:

        q_t = x_t W_q / √d_k,  k_t = x_t W_k,  v_t = x_t W_v
        α_t = σ(x_t W_α1 W_α2 + b_α)^(1/τ)                 (one per key dimension)
        S_t = diag(α_t) S_{t-1} + k_tᵀ v_t,   o_t = q_t S_t
        y_t = RMSNorm(o_t) ⊙ swish(x_t W_r + b_r)           (heads side by side)

    The decay's low-rank projection (`gate_rank`) and its temperature `τ`
    (`gate_normalizer`, 16) are the paper's: `log α_t = log σ(·) / τ` keeps
    the decay near 1. The output projection of the paper's layer is a
    `Dense` after this one (its width is the model's).

    Weights: `kernel (features, heads (2 key_dim + value_dim))`, `[W_q | W_k
    | W_v]`; `gate_kernel (features, gate_rank)` and `gate_projection
    (gate_rank, heads key_dim)`, `W_α1`, `W_α2`, with `gate_bias`; with
    `output_gate`, `output_gate_kernel (features, heads value_dim)` and
    `output_gate_bias`; with `normalize`, `norm_scale (value_dim,)`.

    Args:
        heads: positive int, the number of heads.
        key_dim: positive int, the size of queries and keys per head.
        value_dim: positive int, the size of values per head (default
            `key_dim`).
        gate_rank: positive int, the rank of the decay's projection (16).
        gate_normalizer: positive float, `τ` (16).
        output_gate: whether to gate the output with `swish(x W_r + b_r)`.
        normalize: whether to RMS-normalise each head's output.
        kernel_initializer: the initializer of the projections
            (`"glorot_uniform"`).
        chunk_size: the chunkwise kernel's steps per chunk, or `None`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called as `cell(inputs, [S])`: `(y_t, [S_t])`, `y_t` `(batch, heads
        value_dim)`.

    Raises:
        ValueError: a size not a positive int, `gate_normalizer` not positive.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.RNN(keras_rnnx.GLACell(2, 8), return_sequences=True)
        >>> tuple(layer(np.zeros((2, 100, 4), "float32")).shape)
        (2, 100, 16)
    """

    decay_per_key = True
    options = (
        "heads",
        "key_dim",
        "value_dim",
        "gate_rank",
        "gate_normalizer",
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
        gate_rank: int = 16,
        gate_normalizer: float = 16.0,
        output_gate: bool = True,
        normalize: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ):
        super().__init__(heads, key_dim, value_dim, **kwargs)
        self.gate_rank = _positive_int("gate_rank", gate_rank)
        if isinstance(gate_normalizer, bool) or not (
            isinstance(gate_normalizer, (int, float)) and gate_normalizer > 0
        ):
            raise ValueError(
                "Expected `gate_normalizer` to be a positive number. "
                f"Received: gate_normalizer={gate_normalizer!r}"
            )
        self.gate_normalizer = float(gate_normalizer)
        self.output_gate, self.normalize = bool(output_gate), bool(normalize)
        self._set_option("kernel_initializer", kernel_initializer)

    def build(self, input_shape: Structure) -> None:
        features, heads = input_shape[-1], self.heads
        build_query_key_value(self, features)
        self.gate_kernel = self.add_weight(
            shape=(features, self.gate_rank),
            name="gate_kernel",
            initializer=self.kernel_initializer,
        )
        self.gate_projection = self.add_weight(
            shape=(self.gate_rank, heads * self.key_dim),
            name="gate_projection",
            initializer=self.kernel_initializer,
        )
        self.gate_bias = self.add_weight(
            shape=(heads * self.key_dim,), name="gate_bias", initializer="zeros"
        )
        build_gated_norm(self, features)

    def gates(self, inputs: Structure) -> MatrixGates:
        q, k, v = query_key_value(self, ops.matmul(inputs, self.kernel))
        gate = ops.matmul(ops.matmul(inputs, self.gate_kernel), self.gate_projection)
        log_decay = ops.log_sigmoid(gate + self.gate_bias) / self.gate_normalizer
        q = q * (1 / math.sqrt(self.key_dim))
        return MatrixGates(q, k, v, split_heads(log_decay, self.heads))

    def readout(self, o: Tensor, inputs: Structure) -> Tensor:
        return gated_norm(self, o, inputs, ops.silu)
