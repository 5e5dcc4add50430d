"""The Linear Recurrent Unit (Orvieto et al., 2023, "Resurrecting Recurrent
Neural Networks for Long Sequences")."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from keras_rnnx.cells.linear import LinearRecurrentCell
from keras_rnnx.cells.registry import register_cell
from keras_rnnx.types import Structure, Tensor


def _halves(x):
    return ops.split(x, 2, axis=-1)


@register_cell
class LRUCell(LinearRecurrentCell):
    """One LRU step: a diagonal complex linear recurrence and a real readout.

        λ = exp(-exp(ν) + i exp(θ)),   γ = exp(γ_log)
        x_t = λ ⊙ x_{t-1} + γ ⊙ (B u_t)          (complex, `units` of them)
        y_t = Re(C x_t) + D ⊙ u_t                (real, as many as the input's features)

    The paper's stable exponential parametrisation keeps `|λ| < 1` for any
    `ν`; `γ_log` starts at `log sqrt(1 - |λ|²)`, its normalisation, and
    trains. `|λ|` starts uniform on the ring `[r_min, r_max]` and the phase
    on `[0, max_phase]`. The state holds `x` as `[real parts, imaginary
    parts]`, `(batch, 2 units)`; the output has the input's width, as in the
    paper (follow it with a `Dense` or an MLP to change it).

    Weights: `nu_log`, `theta_log`, `gamma_log (units,)`; `kernel (features,
    2 units)`, `B` as `[Re B | Im B]` (transposed); `output_kernel (2 units,
    features)`, `C` as `[Re Cᵀ; -Im Cᵀ]` (so `y = x @ output_kernel`); `skip
    (features,)`, `D`.

    Args:
        units: positive int, the number of complex state entries.
        r_min, r_max: the initial `|λ|` range, `0 <= r_min < r_max <= 1`
            (default 0 and 1, the paper's defaults).
        max_phase: the initial phase range, in `(0, 2π]` (default 2π).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called as `cell(inputs, [x])`: `(y_t, [x_t])`.

    Raises:
        ValueError: `units` not a positive int; `r_min`, `r_max` or
            `max_phase` out of range.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.RNN(keras_rnnx.LRUCell(16), return_state=True)
        >>> y, x = layer(np.zeros((2, 50, 4), "float32"))
        >>> tuple(y.shape), tuple(x.shape)
        ((2, 4), (2, 32))
    """

    options = ("units", "r_min", "r_max", "max_phase")

    def __init__(
        self,
        units: int,
        *,
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = 2 * math.pi,
        **kwargs: Any,
    ):
        super().__init__(units, **kwargs)
        numbers = (r_min, r_max, max_phase)
        if not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers
        ) or not (0 <= r_min < r_max <= 1 and 0 < max_phase <= 2 * math.pi):
            raise ValueError(
                "Expected 0 <= `r_min` < `r_max` <= 1 and 0 < `max_phase` <= 2π. Received: "
                f"r_min={r_min!r}, r_max={r_max!r}, max_phase={max_phase!r}"
            )
        self.r_min, self.r_max, self.max_phase = float(r_min), float(r_max), float(max_phase)
        self.features = None

    @property
    def state_size(self) -> Any:
        return 2 * self.units

    @property
    def output_size(self) -> Any:
        return self.features if self.features is not None else (None,)

    def build(self, input_shape: Structure) -> None:
        self.features = features = input_shape[-1]
        units = self.units
        r_min, r_max, max_phase = self.r_min, self.r_max, self.max_phase

        def nu_init(shape, dtype=None):
            u = keras.random.uniform(shape, dtype=dtype)
            return ops.log(-0.5 * ops.log(u * (r_max**2 - r_min**2) + r_min**2))

        def theta_init(shape, dtype=None):
            # Away from 0: the log of a phase drawn as exactly 0 is -inf.
            return ops.log(max_phase * keras.random.uniform(shape, 1e-6, 1.0, dtype=dtype))

        self.nu_log = self.add_weight(shape=(units,), name="nu_log", initializer=nu_init)
        self.theta_log = self.add_weight(shape=(units,), name="theta_log", initializer=theta_init)
        nu = self.nu_log

        def gamma_init(shape, dtype=None):
            magnitude = ops.exp(-ops.exp(ops.convert_to_tensor(nu, dtype=dtype)))
            return ops.log(ops.sqrt(1 - magnitude**2))

        self.gamma_log = self.add_weight(shape=(units,), name="gamma_log", initializer=gamma_init)
        # B's entries: normal with variance 1/(2 features) per part, as the paper.
        self.kernel = self.add_weight(
            shape=(features, 2 * units),
            name="kernel",
            initializer=keras.initializers.RandomNormal(stddev=1 / math.sqrt(2 * features)),
        )
        self.output_kernel = self.add_weight(
            shape=(2 * units, features),
            name="output_kernel",
            initializer=keras.initializers.RandomNormal(stddev=1 / math.sqrt(units)),
        )
        self.skip = self.add_weight(
            shape=(features,), name="skip", initializer=keras.initializers.RandomNormal()
        )

    def coefficients(self, inputs: Structure) -> tuple[Tensor, Tensor]:
        magnitude = ops.exp(-ops.exp(self.nu_log))
        phase = ops.exp(self.theta_log)
        a = ops.concatenate([magnitude * ops.cos(phase), magnitude * ops.sin(phase)])
        gamma = ops.exp(self.gamma_log)
        b = ops.matmul(inputs, self.kernel) * ops.concatenate([gamma, gamma])
        return ops.broadcast_to(ops.cast(a, b.dtype), ops.shape(b)), b

    def multiply(self, a: Tensor, h: Tensor) -> Tensor:
        a_re, a_im = _halves(a)
        h_re, h_im = _halves(h)
        return ops.concatenate([a_re * h_re - a_im * h_im, a_re * h_im + a_im * h_re], axis=-1)

    def one(self, a: Tensor) -> Tensor:
        ones = ops.ones_like(_halves(a)[0])
        return ops.concatenate([ones, ops.zeros_like(ones)], axis=-1)

    def readout(self, h: Tensor, inputs: Structure) -> Tensor:
        return ops.matmul(h, self.output_kernel) + self.skip * inputs
