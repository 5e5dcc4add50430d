"""`explain`: which kernel ran a layer, and why faster ones did not."""

from __future__ import annotations

import textwrap

import keras

from keras_rnnx.kernels.selection import Selection


class Directions(dict):
    """A `Bidirectional` layer's `Selection` per direction, under `"forward"`
    and `"backward"`; `str()` gives one report with both."""

    def __str__(self) -> str:
        return "\n".join(f"{name}:\n{textwrap.indent(str(s), '  ')}" for name, s in self.items())


def explain(layer: keras.layers.Layer) -> Selection | Directions:
    """Report the kernel chosen for `layer` at its last trace.

    Args:
        layer: a `keras_rnnx.RNN` (or `LSTM`, `GRU`, `SimpleRNN`), or a
            `keras_rnnx.Bidirectional`.

    Returns:
        A `Selection` (`.kernel`, the name of the kernel that ran, and
        `.passed_over`, `(kernel, reason)` for each faster kernel declined;
        `str()` gives a readable report). For `Bidirectional`, a dict with the
        `"forward"` and `"backward"` selections, whose `str()` reports both.

    Raises:
        ValueError: `layer` has not been called yet, or is not a keras_rnnx
            recurrent layer.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> lstm = keras_rnnx.LSTM(4, use_cudnn=False)
        >>> _ = lstm(np.zeros((2, 3, 5), "float32"))
        >>> print(keras_rnnx.explain(lstm))
        kernel: reference
          not ...: use_cudnn=False asks for the reference loop...
        >>> both = keras_rnnx.Bidirectional(keras_rnnx.GRU(4, use_cudnn=False))
        >>> _ = both(np.zeros((2, 3, 5), "float32"))
        >>> print(keras_rnnx.explain(both))
        forward:
          kernel: reference
            not ...: use_cudnn=False asks for the reference loop...
        backward:
          kernel: reference
        ...
    """
    if hasattr(layer, "forward_layer") and hasattr(layer, "backward_layer"):
        return Directions(
            forward=explain(layer.forward_layer), backward=explain(layer.backward_layer)
        )
    if not hasattr(layer, "selection") or not hasattr(layer, "select_kernel"):
        raise ValueError(
            "Expected a keras_rnnx recurrent layer (RNN, LSTM, GRU, SimpleRNN, "
            f"Bidirectional). Received: layer={layer!r}"
        )
    if layer.selection is None:
        raise ValueError(
            f"Layer {layer.name!r} has not run yet: call it (or a model using it) first."
        )
    return layer.selection
