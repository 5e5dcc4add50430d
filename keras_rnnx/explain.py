"""`explain`: which kernel ran a layer, and why faster ones did not."""

from __future__ import annotations

import textwrap

import keras

from keras_rnnx.kernels.selection import Selection
from keras_rnnx.layers.keras_semantics import is_keras_own, keras_class


class Directions(dict):
    """A `Bidirectional` layer's `Selection` per direction, under `"forward"`
    and `"backward"`; `str()` gives one report with both."""

    def __str__(self) -> str:
        return "\n".join(f"{name}:\n{textwrap.indent(str(s), '  ')}" for name, s in self.items())


class ModelReport(list):
    """`(layer path, class, kernel, why faster kernels did not run)` for each
    recurrent layer of a model, depth first; `str()` gives them as a table."""

    COLUMNS = ("layer", "class", "kernel", "why not faster")

    def __str__(self) -> str:
        rows = [self.COLUMNS, *self]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3]
            for row in rows
        ).rstrip()


def explain(layer: keras.layers.Layer) -> Selection | Directions | ModelReport:
    """Report the kernel chosen for `layer` at its last trace, or for every
    recurrent layer of a model.

    Args:
        layer: a `keras_rnnx.RNN` (or `LSTM`, `GRU`, `SimpleRNN`), a
            `keras_rnnx.Bidirectional`, or a `keras.Model`.

    Returns:
        A `Selection` (`.kernel_name`, the name of the kernel that ran, and
        `.passed_over`, `(kernel, reason)` for each faster kernel declined;
        `str()` gives a readable report). For `Bidirectional`, a dict with the
        `"forward"` and `"backward"` selections, whose `str()` reports both.
        For a model, a list of `(layer path, class, kernel, why faster kernels
        did not run)`, one per recurrent layer (nested models, `Bidirectional`
        directions and wrapped layers included), whose `str()` is a table;
        Keras's own recurrent layers are listed with what would run them on
        keras-rnnx's kernels, layers not yet run as such.

    Raises:
        ValueError: `layer` is a layer that has not been called yet, or is
            not a keras_rnnx recurrent layer.

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
        >>> import keras
        >>> model = keras.Sequential([
        ...     keras.Input((3, 5)),
        ...     keras_rnnx.GRU(4, use_cudnn=False, return_sequences=True, name="gru"),
        ...     keras.layers.LSTM(4, name="lstm"),
        ... ], name="model")
        >>> _ = model(np.zeros((2, 3, 5), "float32"))
        >>> report = keras_rnnx.explain(model)  # print(report): a table
        >>> for path, kind, kernel, why_not in report:
        ...     print(path, kind, kernel)
        model/gru keras_rnnx.GRU reference
        model/lstm keras.layers.LSTM Keras's own
    """
    if isinstance(layer, keras.Model):
        return ModelReport(_rows(layer, layer.name))
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


def _rows(layer, path: str) -> list[tuple[str, str, str, str]]:
    if isinstance(layer, keras.Model):
        return [row for sub in layer.layers for row in _rows(sub, f"{path}/{sub.name}")]
    if hasattr(layer, "forward_layer") and hasattr(layer, "backward_layer"):
        return [
            row
            for sub in (layer.forward_layer, layer.backward_layer)
            for row in _rows(sub, f"{path}/{sub.name}")
        ]
    wrapped = getattr(layer, "layer", None)
    if isinstance(wrapped, keras.layers.Layer):  # TimeDistributed and other wrappers
        return _rows(wrapped, f"{path}/{wrapped.name}")
    kind = type(layer)
    if isinstance(layer, keras_class("RNN")) and is_keras_own(kind):
        advice = "keras_rnnx.convert(model) runs keras-rnnx's"
        return [(path, f"keras.layers.{kind.__name__}", "Keras's own", advice)]
    if not hasattr(layer, "select_kernel"):
        return []
    home = "keras_rnnx" if kind.__module__.startswith("keras_rnnx.") else kind.__module__
    name = f"{home}.{kind.__name__}"
    selection = layer.selection
    if selection is None:
        return [(path, name, "not run yet", "")]
    declined: dict[str, list[str]] = {}  # one line per reason, for its kernels
    for kernel, reason in selection.passed_over:
        declined.setdefault(reason, []).append(kernel)
    why = "; ".join(f"not {', '.join(ks)}: {reason}" for reason, ks in declined.items())
    return [(path, name, str(selection.kernel_name), why)]
