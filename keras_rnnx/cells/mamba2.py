"""Mamba-2's selective state space (Dao & Gu, 2024, "Transformers are SSMs:
Generalized Models and Efficient Algorithms Through Structured State Space
Duality")."""

from __future__ import annotations

from typing import Any

from keras import ops

from keras_rnnx.cells.matrix import (
    MatrixGates,
    MatrixRecurrentCell,
    _positive_int,
    build_decay,
    dt_range,
    merge_heads,
    rms_norm,
    split_heads,
)
from keras_rnnx.cells.registry import register_cell
from keras_rnnx.types import Structure, Tensor


@register_cell
class Mamba2Cell(MatrixRecurrentCell):
    """One step of Mamba-2's SSD, per head (`P = head_dim`, `N = state_dim`;
    `B`, `C` shared by the heads, one group):

        Δ_t = softplus(x_t w_Δ + b_Δ),  A = -exp(A_log)           (one per head)
        h_t = exp(Δ_t A) h_{t-1} + B_t (Δ_t u_t)ᵀ               (N x P)
        y_t = h_tᵀ C_t + D u_t
        out_t = RMSNorm(y_t ⊙ swish(z_t))                         (with `gate`)

    with `u_t = x_t W_u`, `B_t = x_t W_B`, `C_t = x_t W_C`, `z_t = x_t W_z`.
    As a matrix state: `q = C`, `k = B`, `v = Δ u`, a decay per head. The
    initialisation is the paper's: `A` uniform in `[1, 16]`, `Δ` log-uniform
    in `[0.001, 0.1]` through `b_Δ` (softplus's inverse), `D = 1`. The
    Mamba-2 block's short causal convolution (on `u`, `B`, `C`) and output
    projection go around the layer (a recipe in the docs, "Cells beyond
    Keras").

    Weights: `kernel (features, heads P + 2 N + heads)`, `[W_u | W_B | W_C |
    w_Δ]`; `dt_bias (heads,)`, `A_log (heads,)`, `D (heads,)`; with `gate`,
    `gate_kernel (features, heads P)` and `norm_scale (heads P,)`.

    Args:
        heads: positive int, the number of heads.
        head_dim: positive int, `P`, each head's width.
        state_dim: positive int, `N` (default 64).
        gate: whether to gate and normalise the output, as Mamba-2's block.
        dt_min, dt_max: the initial range of `Δ`, `0 < dt_min < dt_max`.
        kernel_initializer: the initializer of the projections.
        chunk_size: the chunkwise kernel's steps per chunk, or `None`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called as `cell(inputs, [h])`: `(y_t, [h_t])`, `y_t` `(batch, heads
        head_dim)`, `h` `(batch, heads, state_dim, head_dim)`.

    Raises:
        ValueError: a size not a positive int; `dt_min`, `dt_max` out of range.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.RNN(keras_rnnx.Mamba2Cell(2, 8, state_dim=16))
        >>> tuple(layer(np.zeros((2, 100, 4), "float32")).shape)
        (2, 16)
    """

    options = ("heads", "head_dim", "state_dim", "gate", "dt_min", "dt_max", "kernel_initializer")

    def __init__(
        self,
        heads: int,
        head_dim: int,
        *,
        state_dim: int = 64,
        gate: bool = True,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ):
        super().__init__(heads, _positive_int("state_dim", state_dim), head_dim, **kwargs)
        self.dt_min, self.dt_max = dt_range(dt_min, dt_max)
        self.gate = bool(gate)
        self._set_option("kernel_initializer", kernel_initializer)

    @property
    def head_dim(self) -> int:
        return self.value_dim

    @property
    def state_dim(self) -> int:
        return self.key_dim

    def build(self, input_shape: Structure) -> None:
        features, heads = input_shape[-1], self.heads
        width = heads * self.head_dim
        self.kernel = self.add_weight(
            shape=(features, width + 2 * self.state_dim + heads),
            name="kernel",
            initializer=self.kernel_initializer,
        )
        build_decay(self, a_min=1.0)
        self.D = self.add_weight(shape=(heads,), name="D", initializer="ones")
        if self.gate:
            self.gate_kernel = self.add_weight(
                shape=(features, width), name="gate_kernel", initializer=self.kernel_initializer
            )
            self.norm_scale = self.add_weight(shape=(width,), name="norm_scale", initializer="ones")

    def _projections(self, inputs):
        width = self.heads * self.head_dim
        n = self.state_dim
        z = ops.matmul(inputs, self.kernel)
        u, b, c, dt = ops.split(z, [width, width + n, width + 2 * n], axis=-1)
        return split_heads(u, self.heads), b, c, dt

    def gates(self, inputs: Structure) -> MatrixGates:
        u, b, c, dt = self._projections(inputs)
        dt = ops.softplus(dt + self.dt_bias)  # (..., heads)
        log_decay = dt * -ops.exp(self.A_log)
        shape = (*ops.shape(b)[:-1], self.heads, self.state_dim)
        b, c = (ops.broadcast_to(ops.expand_dims(t, -2), shape) for t in (b, c))
        return MatrixGates(c, b, u * dt[..., None], log_decay[..., None])

    def readout(self, o: Tensor, inputs: Structure) -> Tensor:
        u = self._projections(inputs)[0]
        y = o + u * self.D[:, None]
        y = merge_heads(y)
        if self.gate:
            y = rms_norm(y * ops.silu(ops.matmul(inputs, self.gate_kernel)), self.norm_scale)
        return y
