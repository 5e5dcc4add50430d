"""Cells whose state follows a linear recurrence, `h_t = a_t * h_{t-1} + b_t`.

`a_t` and `b_t` depend on the step's input alone, so a whole sequence is a
prefix product of the pairs `(a_t, b_t)` under an associative operator, which
a parallel scan computes in `O(log T)` sequential rounds
(`keras_rnnx.kernels.scan`); one step is the same equations on one input, so
these cells also run in any loop, stream and carry state like other cells.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_rnnx.cells.base import Options, ZeroStates
from keras_rnnx.types import Config, Structure, Tensor


class LinearRecurrentCell(keras.layers.Layer, Options, ZeroStates):
    """A cell whose state follows `h_t = a_t * h_{t-1} + b_t` (elementwise).

    Subclasses define `coefficients(inputs)`, which gives `(a, b)` for
    inputs of any leading shape, one step `(batch, features)` or a sequence
    `(batch, time, features)`, and may define `readout(h, inputs)`, the
    output from the state and the input (default: `h`). The cell's `call`,
    which every loop runs, and the parallel-scan kernel, which runs a whole
    sequence at once, are both built from them, so they agree.

    The product `a * h` is elementwise on real numbers by default; a cell of
    complex numbers (stored as `[real, imaginary]` halves of the last axis)
    overrides `multiply` and `one`. With `log_space = True`, `coefficients`
    returns `(log a, log b)` (`b > 0`) and the scan accumulates in log space,
    which keeps long products of small `a` from underflowing: minGRU's and
    minLSTM's log-space form.

    Args:
        units: positive int, the size of the state.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called as `cell(inputs, [h])`: `(output, [h_t])`.

    Raises:
        ValueError: `units` not a positive int.

    Examples:
        A leaky integrator, `h_t = 0.9 h_{t-1} + x_t W`:

        >>> import keras, numpy as np, keras_rnnx
        >>> class Leaky(keras_rnnx.LinearRecurrentCell):
        ...     def build(self, input_shape):
        ...         self.kernel = self.add_weight(shape=(input_shape[-1], self.units))
        ...     def coefficients(self, inputs):
        ...         b = keras.ops.matmul(inputs, self.kernel)
        ...         return keras.ops.full_like(b, 0.9), b
        >>> layer = keras_rnnx.RNN(Leaky(4), return_sequences=True)
        >>> tuple(layer(np.ones((2, 8, 3), "float32")).shape)
        (2, 8, 4)
        >>> # The scan, or on JAX's CPU the step loop, which is faster there:
        >>> keras_rnnx.explain(layer).kernel_name in ("parallel-scan", "reference")
        True
    """

    log_space = False
    options: tuple[str, ...] = ("units",)

    def __init__(self, units: int, **kwargs: Any):
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise ValueError(
                f"Expected `units` to be a positive integer. Received: units={units!r}"
            )
        super().__init__(**kwargs)
        self.units = units

    @property
    def state_size(self) -> Any:
        return self.units

    @property
    def output_size(self) -> Any:
        return self.units

    def coefficients(self, inputs: Structure) -> tuple[Tensor, Tensor]:
        """`(a, b)` (or `(log a, log b)` in log space) for `inputs`.

        Args:
            inputs: `(..., features)`: one step, or a sequence `(batch, time,
                features)`.

        Returns:
            Two tensors `(..., state)`, broadcast to the same shape.
        """
        raise NotImplementedError

    def readout(self, h: Tensor, inputs: Structure) -> Tensor:
        """The output from the state `h` and the step's `inputs` (any leading shape)."""
        return h

    def multiply(self, a: Tensor, h: Tensor) -> Tensor:
        """`a * h` for a coefficient `a` and a state (or coefficient) `h`."""
        return a * h

    def one(self, a: Tensor) -> Tensor:
        """The coefficient that leaves a state as it is, shaped as `a`."""
        return ops.ones_like(a)

    def call(self, inputs: Structure, states: Structure) -> Structure:
        h_tm1 = states[0] if isinstance(states, (list, tuple)) else states
        a, b = self.coefficients(inputs)
        if self.log_space:
            a, b = ops.exp(a), ops.exp(b)
        h = self.multiply(a, h_tm1) + b
        return self.readout(h, inputs), [h]

    def get_config(self) -> Config:
        return {**super().get_config(), **self.options_config()}
