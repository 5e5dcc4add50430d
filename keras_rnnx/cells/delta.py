"""Cells of the delta rule: DeltaNet (Schlag et al. 2021; Yang et al. 2024)
and Gated DeltaNet (Yang et al. 2025, "Gated Delta Networks: Improving Mamba2
with Delta Rule"; the linear attention of Qwen3-Next and Qwen3.5).

Per head, the state `S (key_dim x value_dim)` is corrected toward each step's
value instead of only added to: with a decay `α_t = exp(g_t)` (Gated DeltaNet;
1 for DeltaNet) and a write strength `β_t`,

    S_t = α_t S_{t-1} + β_t k_t (v_t - α_t S_{t-1}ᵀ k_t)ᵀ
        = α_t (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ
    o_t = S_tᵀ q_t

The gates depend on the step's input alone, so a whole sequence runs by chunks
(`keras_rnnx.kernels.delta_rule`), and one step is the equations above, so
these cells also run in any loop, stream and carry state like other cells.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from keras import ops

from keras_rnnx.cells.matrix import (
    MatrixRecurrentCell,
    _read,
    build_decay,
    build_gated_norm,
    build_query_key_value,
    dt_range,
    gated_norm,
    query_key_value,
)
from keras_rnnx.cells.registry import register_cell
from keras_rnnx.types import Structure, Tensor

# The L2 norm's epsilon of fla's and keras-hub's delta rules.
L2_EPSILON = 1e-6


def l2_normalize(x: Tensor) -> Tensor:
    """`x / sqrt(|x|² + 1e-6)` over the last axis, as fla's `l2norm`."""
    return x * ops.rsqrt(ops.sum(ops.square(x), axis=-1, keepdims=True) + L2_EPSILON)


class DeltaGates(NamedTuple):
    """One step's (or a sequence's) gates of a delta-rule cell, as
    `DeltaRuleCell.gates` returns them: each with the input's leading axes,
    then `(heads, ...)`.

    Args:
        query: `(..., heads, key_dim)`, `q_t` (with any scale applied).
        key: `(..., heads, key_dim)`, `k_t`.
        value: `(..., heads, value_dim)`, `v_t`.
        beta: `(..., heads, 1)`, the write strength `β_t`.
        log_decay: `(..., heads, 1)`, `g_t = log α_t` (at most 0), or `None`
            for no decay (DeltaNet).

    Returns:
        A named tuple.

    Raises:
        TypeError: a required field is missing (as any named tuple).

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> q = k = v = np.ones((2, 4, 8), "float32")
        >>> gates = keras_rnnx.DeltaGates(q, k, v, np.full((2, 4, 1), 0.5, "float32"))
        >>> gates.log_decay is None
        True
    """

    query: Tensor
    key: Tensor
    value: Tensor
    beta: Tensor
    log_decay: Tensor | None = None


class DeltaRuleCell(MatrixRecurrentCell):
    """A cell whose `(key_dim, value_dim)` state per head follows the (gated)
    delta rule (the module's equations).

    Subclasses define `gates(inputs)`, which gives the step's `DeltaGates` for
    inputs of any leading shape, and may define `readout(o, inputs)` (default:
    the heads side by side). The cell's `call` and the chunkwise kernel are
    both built from them, so they agree.

    State: `S (batch, heads, key_dim, value_dim)`.

    Args:
        heads: positive int, the number of heads.
        key_dim: positive int, the size of queries and keys per head.
        value_dim: positive int, the size of values per head (default
            `key_dim`).
        chunk_size: positive int, the steps per chunk of the chunkwise
            kernel, or `None` to choose by shape (64).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called as `cell(inputs, [S])`: `(output, [S_t])`.

    Raises:
        ValueError: `heads`, `key_dim`, `value_dim` or `chunk_size` not a
            positive int.

    Examples:
        A delta rule of fixed strength on normalised keys:

        >>> import keras, numpy as np, keras_rnnx
        >>> class Fixed(keras_rnnx.DeltaRuleCell):
        ...     def build(self, input_shape):
        ...         self.kernel = self.add_weight(shape=(input_shape[-1], 3 * self.heads * 4))
        ...     def gates(self, inputs):
        ...         z = keras.ops.matmul(inputs, self.kernel)
        ...         q, k, v = keras.ops.split(z, 3, axis=-1)
        ...         shape = (*keras.ops.shape(z)[:-1], self.heads, 4)
        ...         q, k, v = (keras.ops.reshape(t, shape) for t in (q, k, v))
        ...         k = keras.ops.normalize(k, axis=-1)
        ...         return keras_rnnx.DeltaGates(q, k, v, keras.ops.full_like(q[..., :1], 0.5))
        >>> layer = keras_rnnx.RNN(Fixed(heads=2, key_dim=4), return_sequences=True)
        >>> tuple(layer(np.ones((2, 100, 3), "float32")).shape)
        (2, 100, 8)
    """

    def gates(self, inputs: Structure) -> DeltaGates:  # type: ignore[override]
        """The gates for `inputs` (`(..., features)`), as `DeltaGates`."""
        raise NotImplementedError

    def call(self, inputs: Structure, states: Structure) -> Structure:
        q, k, v, beta, log_decay = self.gates(inputs)
        state = states[0]
        if log_decay is not None:
            state = ops.exp(ops.expand_dims(log_decay, -1)) * state
        recalled = _read(k, state)  # Sᵀ k
        state = state + ops.expand_dims(k, -1) * ops.expand_dims(beta * (v - recalled), -2)
        return self.readout(_read(q, state), inputs), [state]


@register_cell
class DeltaNetCell(DeltaRuleCell):
    """One DeltaNet step, per head (Yang et al. 2024's layer, fla's
    `DeltaNet` without its short convolution):

        q_t = l2(silu(x_t W_q)) / √d_k,  k_t = l2(silu(x_t W_k)),  v_t = silu(x_t W_v)
        β_t = σ(x_t w_β + b_β)                                   (one per head)
        S_t = (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ,   o_t = S_tᵀ q_t
        y_t = RMSNorm(o_t)  (⊙ silu(x_t W_g + b_g) with `output_gate`)

    with `l2(x) = x / sqrt(|x|² + 1e-6)`. Normalised keys and `β_t` in (0, 1)
    keep every step a contraction. The block's short causal convolutions
    (on `q`, `k`, `v`) and its output projection go around the layer (a
    recipe in the docs, "Cells beyond Keras").

    Weights: `kernel (features, heads (2 key_dim + value_dim))`, `[W_q | W_k
    | W_v]`; `beta_kernel (features, heads)`, `beta_bias (heads,)`; with
    `output_gate`, `output_gate_kernel (features, heads value_dim)` and
    `output_gate_bias`; with `normalize`, `norm_scale (value_dim,)`.

    Args:
        heads: positive int, the number of heads.
        key_dim: positive int, the size of queries and keys per head.
        value_dim: positive int, the size of values per head (default
            `key_dim`).
        output_gate: whether to gate the output with `silu(x W_g + b_g)`
            (default `False`, as fla's `DeltaNet`).
        normalize: whether to RMS-normalise each head's output.
        kernel_initializer: the initializer of the projections.
        chunk_size: the chunkwise kernel's steps per chunk, or `None`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called as `cell(inputs, [S])`: `(y_t, [S_t])`, `y_t` `(batch, heads
        value_dim)`.

    Raises:
        ValueError: a size not a positive int.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.RNN(keras_rnnx.DeltaNetCell(2, 8), return_state=True)
        >>> y, s = layer(np.zeros((2, 100, 4), "float32"))
        >>> tuple(y.shape), tuple(s.shape)
        ((2, 16), (2, 2, 8, 8))
    """

    options: tuple[str, ...] = (
        "heads",
        "key_dim",
        "value_dim",
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
        output_gate: bool = False,
        normalize: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ):
        super().__init__(heads, key_dim, value_dim, **kwargs)
        self.output_gate, self.normalize = bool(output_gate), bool(normalize)
        self._set_option("kernel_initializer", kernel_initializer)

    def build(self, input_shape: Structure) -> None:
        features, heads = input_shape[-1], self.heads
        build_query_key_value(self, features)
        self.beta_kernel = self.add_weight(
            shape=(features, heads), name="beta_kernel", initializer=self.kernel_initializer
        )
        self.beta_bias = self.add_weight(shape=(heads,), name="beta_bias", initializer="zeros")
        build_gated_norm(self, features)

    def gates(self, inputs: Structure) -> DeltaGates:  # type: ignore[override]
        q, k, v = query_key_value(self, ops.silu(ops.matmul(inputs, self.kernel)))
        q = l2_normalize(q) * (1 / math.sqrt(self.key_dim))
        beta = ops.sigmoid(ops.matmul(inputs, self.beta_kernel) + self.beta_bias)
        return DeltaGates(q, l2_normalize(k), v, ops.expand_dims(beta, -1))

    def readout(self, o: Tensor, inputs: Structure) -> Tensor:
        return gated_norm(self, o, inputs, ops.silu)


@register_cell
class GatedDeltaNetCell(DeltaNetCell):
    """One Gated DeltaNet step, per head (Yang et al. 2025; fla's
    `GatedDeltaNet` and Qwen3.5's linear attention without their short
    convolution):

        q_t, k_t, v_t, β_t as `DeltaNetCell`
        g_t = -exp(A_log) softplus(x_t w_a + b_dt)               (one per head)
        S_t = exp(g_t) (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ,   o_t = S_tᵀ q_t
        y_t = RMSNorm(o_t) ⊙ silu(x_t W_g + b_g)

    The decay is Mamba-2's: `A = exp(A_log)` starts uniform in (0, 16) and
    `softplus(b_dt)` log-uniform in `[dt_min, dt_max]`, as fla's layer. The
    block's short causal convolutions and output projection go around the
    layer (a recipe in the docs, "Cells beyond Keras").

    Weights: as `DeltaNetCell`, plus `decay_kernel (features, heads)`, `w_a`,
    `dt_bias (heads,)` and `A_log (heads,)`.

    Args:
        heads: positive int, the number of heads.
        key_dim: positive int, the size of queries and keys per head.
        value_dim: positive int, the size of values per head (default
            `key_dim`).
        output_gate: whether to gate the output with `silu(x W_g + b_g)`
            (default `True`, as the paper's layer).
        normalize: whether to RMS-normalise each head's output.
        dt_min, dt_max: the initial range of `softplus(b_dt)`, `0 < dt_min <
            dt_max`.
        kernel_initializer: the initializer of the projections.
        chunk_size: the chunkwise kernel's steps per chunk, or `None`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called as `cell(inputs, [S])`: `(y_t, [S_t])`.

    Raises:
        ValueError: a size not a positive int; `dt_min`, `dt_max` out of
            range.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.RNN(keras_rnnx.GatedDeltaNetCell(2, 8), return_sequences=True)
        >>> tuple(layer(np.zeros((2, 100, 4), "float32")).shape)
        (2, 100, 16)
    """

    options = (*DeltaNetCell.options, "dt_min", "dt_max")

    def __init__(
        self,
        heads: int,
        key_dim: int,
        value_dim: int | None = None,
        *,
        output_gate: bool = True,
        normalize: bool = True,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ):
        super().__init__(
            heads,
            key_dim,
            value_dim,
            output_gate=output_gate,
            normalize=normalize,
            kernel_initializer=kernel_initializer,
            **kwargs,
        )
        self.dt_min, self.dt_max = dt_range(dt_min, dt_max)

    def build(self, input_shape: Structure) -> None:
        super().build(input_shape)
        features, heads = input_shape[-1], self.heads
        self.decay_kernel = self.add_weight(
            shape=(features, heads), name="decay_kernel", initializer=self.kernel_initializer
        )
        build_decay(self, a_min=1e-4)  # fla's A: uniform in (0, 16)

    def gates(self, inputs: Structure) -> DeltaGates:  # type: ignore[override]
        q, k, v, beta, _ = super().gates(inputs)
        dt = ops.softplus(ops.matmul(inputs, self.decay_kernel) + self.dt_bias)
        log_decay = -ops.exp(self.A_log) * dt
        return DeltaGates(q, k, v, beta, ops.expand_dims(log_decay, -1))
