"""Deserializing the layers and cells a recurrent layer is made of."""

from __future__ import annotations

import keras

from keras_rnnx.cells import registry
from keras_rnnx.types import Config


def deserialize_part(config: Config, owner: str, custom_objects: dict | None = None):
    """Deserialize a cell or sublayer of the layer named `owner` from its config.

    Plugins are discovered first, so their cells resolve. A part that was
    built when saved is built again, as Keras does, so the config round trips
    whole; it is built in its owner's name scope, so its weight paths
    (`lstm/lstm_cell/kernel`) are those it had when its owner built it.
    """
    registry.discover()
    with keras.name_scope(owner):
        return keras.saving.deserialize_keras_object(config, custom_objects=custom_objects)
