"""What the installed Keras decides about recurrent layers, where its
versions differ: keras-rnnx's layers do as the Keras they run with."""

from __future__ import annotations

import functools

import keras


@functools.cache
def rnn_propagates_masks() -> bool:
    """Whether the installed Keras's recurrent layers pass their input mask on
    to the layers after them (`supports_masking`).

    True through Keras 3.15; False from Keras 3.16, whose `RNN` and
    `Bidirectional` consume the mask but no longer propagate it (Keras pull
    request 23235). Read off Keras's own `RNN`, so a nightly build answers
    for itself.
    """
    return keras.layers.RNN(_ProbeCell()).supports_masking


class _ProbeCell:
    """The least a Keras `RNN` takes: it makes no weights and draws no seeds,
    so asking leaves a seeded program's weights as they were."""

    state_size = 1

    def call(self, inputs, states):
        return inputs, states
