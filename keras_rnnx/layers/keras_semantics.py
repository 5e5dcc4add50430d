"""What the installed Keras decides about recurrent layers, where its
versions differ: keras-rnnx's layers do as the Keras they run with.

Keras's own classes are found here once, by what they are, never through the
names `keras.layers.X` alone: `keras_rnnx.patch()` (or a user's own
`setattr`) may have put keras-rnnx's twins under those names.
"""

from __future__ import annotations

import functools
from typing import Any

import keras


def is_keras_own(cls) -> bool:
    """Whether `cls` is a class Keras itself defines (not a subclass elsewhere)."""
    return isinstance(cls, type) and cls.__module__.split(".")[0] == "keras"


@functools.cache
def keras_class(name: str) -> Any:
    """Keras's own `keras.layers.<name>`, whatever that name holds now.

    Args:
        name: a public name in `keras.layers` (`"RNN"`, `"LSTM"`, ...).

    Returns:
        The class Keras defines under that name.

    Raises:
        LookupError: the installed Keras has no such layer.
    """
    public = getattr(keras.layers, name, None)
    if is_keras_own(public):
        return public
    # Replaced (patched): Keras's class is still a subclass of `Layer`, by name.
    for cls in _subclasses(keras.layers.Layer):
        if cls.__name__ == name and is_keras_own(cls):
            return cls
    raise LookupError(f"The installed Keras has no layer keras.layers.{name}.")


def _subclasses(cls):
    seen, todo = set(), [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
                yield sub


@functools.cache
def rnn_propagates_masks() -> bool:
    """Whether the installed Keras's recurrent layers pass their input mask on
    to the layers after them (`supports_masking`).

    True through Keras 3.15; False from Keras 3.16, whose `RNN` and
    `Bidirectional` consume the mask but no longer propagate it (Keras pull
    request 23235). Read off Keras's own `RNN`, once, so a nightly build
    answers for itself.
    """
    return keras_class("RNN")(_ProbeCell()).supports_masking


class _ProbeCell:
    """The least a Keras `RNN` takes: it makes no weights and draws no seeds,
    so asking leaves a seeded program's weights as they were."""

    state_size = 1

    def call(self, inputs, states):
        return inputs, states
