"""`patch`: code that builds with `keras.layers` gets keras-rnnx's twins."""

from __future__ import annotations

import sys
from typing import Any

import keras

from keras_rnnx.layers.keras_semantics import keras_class
from keras_rnnx.twins import TWINS


class Patch:
    """One `keras_rnnx.patch()`: on until `undo()`, or until the `with` block
    it opened ends.

    Attributes:
        replaced: `(module, name)` for each public name this patch replaced.
    """

    def __init__(self, replaced: list[tuple[Any, str]]):
        self.replaced = replaced

    def undo(self) -> None:
        """Put Keras's own classes back under the names this patch replaced.

        A name that was already keras-rnnx's when the patch began (an
        enclosing patch) is left to the patch that replaced it; undoing twice
        does nothing.
        """
        for module, name in reversed(self.replaced):
            setattr(module, name, keras_class(name))
        self.replaced = []

    def __enter__(self) -> Patch:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.undo()

    def __repr__(self) -> str:
        names = sorted({name for _, name in self.replaced})
        return f"Patch({', '.join(names) or 'nothing replaced'})"


def patch() -> Patch:
    """Make `keras.layers`' recurrent classes keras-rnnx's twins, until undone.

    Code that builds its model with `keras.layers.LSTM(...)` (a library's, a
    copied example's) then builds `keras_rnnx.LSTM` and runs keras-rnnx's
    kernels, unchanged; its `isinstance(layer, keras.layers.LSTM)` checks hold
    for the layers it builds, as the name now holds the twin. Replaced:
    `RNN`, `SimpleRNN`, `GRU`, `LSTM`, `Bidirectional`, their cells,
    `StackedRNNCells` and `ConvLSTM1D/2D/3D`, in `keras.layers` and in
    `tf.keras.layers` when TensorFlow's Keras 3 view of it is loaded.

    What it cannot reach: a class captured before the patch (`from
    keras.layers import LSTM` at a module's top, run earlier) still builds
    Keras's layer, and so does loading a `.keras` file, whose classes Keras
    looks up in its own registry (use `keras_rnnx.convert` for those).
    Layers built under the patch save as keras-rnnx's (`keras_rnnx>LSTM`).

    Returns:
        A `Patch`: `undo()` puts Keras's classes back; used as a context
        manager, the patch ends with the `with` block.

    Raises:
        Nothing: a name that holds neither Keras's class nor keras-rnnx's
            (another package's patch) is left alone.

    Examples:
        >>> import keras, keras_rnnx
        >>> with keras_rnnx.patch():
        ...     layer = keras.layers.LSTM(4)
        >>> type(layer).__module__, isinstance(layer, keras_rnnx.LSTM)
        ('keras_rnnx.layers.lstm', True)
        >>> type(keras.layers.LSTM(4)).__module__.startswith("keras.src")
        True
    """
    replaced = []
    for module in _layer_namespaces():
        for name, twin in TWINS.items():
            if getattr(module, name, None) is keras_class(name):  # else: ours, or another's
                setattr(module, name, twin)
                replaced.append((module, name))
    return Patch(replaced)


def _layer_namespaces() -> list:
    """The loaded public modules that hold Keras's layer classes: `keras.layers`,
    and TensorFlow's `tf.keras.layers` (`keras._tf_keras.keras.layers`)."""
    names = ("keras.layers", "keras._tf_keras.keras.layers")
    return [keras.layers, *(sys.modules[n] for n in names[1:] if n in sys.modules)]
