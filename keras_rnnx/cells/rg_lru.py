"""The Real-Gated Linear Recurrent Unit of Griffin and Hawk (De et al., 2024,
"Griffin: Mixing Gated Linear Recurrences with Local Attention for Efficient
Language Models"; RecurrentGemma)."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from keras_rnnx.cells.linear import LinearRecurrentCell
from keras_rnnx.cells.matrix import heads_dividing
from keras_rnnx.cells.registry import register_cell
from keras_rnnx.types import Structure, Tensor

# `c` of the paper's `a_t = a^(c r_t)`.
GATE_POWER = 8.0
# 1 - a_t² is floored here before its square root (RecurrentGemma bounds the
# root's gradient at 1000 instead: the same floor, 1 / (4 * 1000²)).
ROOT_FLOOR = 2.5e-7


@register_cell
class RGLRUCell(LinearRecurrentCell):
    """One RG-LRU step, on the input projected to the state's width:

        u_t = x_t W + b                              (Griffin's recurrent branch)
        r_t = σ(u_t W_a + b_a),  i_t = σ(u_t W_i + b_i)   (block-diagonal, per head)
        log a_t = -8 r_t softplus(Λ)
        h_t = a_t ⊙ h_{t-1} + sqrt(1 - a_t²) ⊙ (i_t ⊙ u_t)

    as RecurrentGemma's `RGLRU` (its `a_param` is `Λ` here; the paper's
    `a_t = σ(Λ')^(8 r_t)` with `Λ' = -Λ`). `a = exp(-softplus(Λ))` starts
    uniform by area on the ring `[0.9, 0.999]`, the gates' blocks normal with
    variance `1 / (units / heads)`, as theirs. The output is the state; Griffin's block
    around it (a GeLU branch multiplying it, a short convolution before it,
    the output projection) is a recipe in the docs ("Cells beyond Keras").
    RecurrentGemma leaves the input unscaled at a segment's first step; this
    cell scales every step, as the paper's equations.

    Weights: `kernel (features, units)`, `bias (units,)`; `input_gate_kernel`
    and `a_gate_kernel (heads, units / heads, units / heads)`, with
    `input_gate_bias` and `a_gate_bias (heads, units / heads)`; `a_param
    (units,)`.

    Args:
        units: positive int, the width of the state and the output.
        heads: positive int dividing `units`, the gates' diagonal blocks
            (default 1).
        min_radius, max_radius: the initial range of `a`, `0 < min_radius <
            max_radius < 1` (default 0.9 and 0.999).
        kernel_initializer: the initializer of the input projection
            (`"lecun_normal"`, as theirs).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called as `cell(inputs, [h])`: `(h_t, [h_t])`.

    Raises:
        ValueError: `units` or `heads` not a positive int, `heads` not
            dividing `units`, the radii out of range.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.RNN(keras_rnnx.RGLRUCell(8, heads=2), return_sequences=True)
        >>> tuple(layer(np.zeros((2, 50, 4), "float32")).shape)
        (2, 50, 8)
    """

    options = ("units", "heads", "min_radius", "max_radius", "kernel_initializer")

    def __init__(
        self,
        units: int,
        *,
        heads: int = 1,
        min_radius: float = 0.9,
        max_radius: float = 0.999,
        kernel_initializer: Any = "lecun_normal",
        **kwargs: Any,
    ):
        super().__init__(units, **kwargs)
        heads = heads_dividing(units, heads)
        radii = (min_radius, max_radius)
        if not all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in radii) or not (
            0 < min_radius < max_radius < 1
        ):
            raise ValueError(
                "Expected 0 < `min_radius` < `max_radius` < 1. Received: "
                f"min_radius={min_radius!r}, max_radius={max_radius!r}"
            )
        self.heads = heads
        self.min_radius, self.max_radius = float(min_radius), float(max_radius)
        self._set_option("kernel_initializer", kernel_initializer)

    def build(self, input_shape: Structure) -> None:
        units, heads = self.units, self.heads
        width = units // heads
        self.kernel = self.add_weight(
            shape=(input_shape[-1], units), name="kernel", initializer=self.kernel_initializer
        )
        self.bias = self.add_weight(shape=(units,), name="bias", initializer="zeros")
        block = keras.initializers.RandomNormal(stddev=1 / math.sqrt(width))
        for gate in ("input_gate", "a_gate"):
            kernel = self.add_weight(
                shape=(heads, width, width), name=f"{gate}_kernel", initializer=block
            )
            bias = self.add_weight(shape=(heads, width), name=f"{gate}_bias", initializer="zeros")
            setattr(self, f"{gate}_kernel", kernel)
            setattr(self, f"{gate}_bias", bias)
        low, high = self.min_radius**2, self.max_radius**2

        def a_param_init(shape, dtype=None):
            # log of a radius uniform by area on the ring, then softplus⁻¹(-log r).
            area = keras.random.uniform(shape, dtype=dtype) * (high - low) + low
            log_radius = 0.5 * ops.log(area)
            return ops.log(ops.expm1(-log_radius))

        self.a_param = self.add_weight(shape=(units,), name="a_param", initializer=a_param_init)

    def _gate(self, u: Tensor, kernel: Tensor, bias: Tensor) -> Tensor:
        # The blocks as one block-diagonal matrix: a plain matmul, whose
        # gradient is one too (TensorFlow's of a batched einsum over a whole
        # sequence cost more than the step loop).
        heads = self.heads
        eye = ops.eye(heads, dtype=kernel.dtype)
        dense = ops.reshape(kernel[:, :, None, :] * eye[:, None, :, None], (self.units,) * 2)
        return ops.sigmoid(ops.matmul(u, dense) + ops.reshape(bias, (-1,)))

    def coefficients(self, inputs: Structure) -> tuple[Tensor, Tensor]:
        u = ops.matmul(inputs, self.kernel) + self.bias
        r = self._gate(u, self.a_gate_kernel, self.a_gate_bias)
        i = self._gate(u, self.input_gate_kernel, self.input_gate_bias)
        log_a = -GATE_POWER * r * ops.softplus(self.a_param)
        scale = ops.sqrt(ops.maximum(1 - ops.exp(2 * log_a), ROOT_FLOOR))
        return ops.exp(log_a), scale * i * u
