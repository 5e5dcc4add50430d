"""`explain`: which kernel ran a layer, and why faster ones did not."""

from __future__ import annotations

from keras_rnnx.kernels.selection import Selection


def explain(layer) -> Selection | dict[str, Selection]:
    """Report the kernel chosen for `layer` at its last trace.

    Args:
        layer: a `keras_rnnx.RNN` (or `LSTM`, `GRU`, `SimpleRNN`), or a
            `keras_rnnx.Bidirectional`.

    Returns:
        A `Selection` (`.kernel`, the name of the kernel that ran, and
        `.passed_over`, `(kernel, reason)` for each faster kernel declined;
        `str()` gives a readable report). For `Bidirectional`, a dict with the
        `"forward"` and `"backward"` selections.

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
    """
    if hasattr(layer, "forward_layer") and hasattr(layer, "backward_layer"):
        return {
            "forward": explain(layer.forward_layer),
            "backward": explain(layer.backward_layer),
        }
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
