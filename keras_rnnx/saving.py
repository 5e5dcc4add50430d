"""Deserializing the layers and cells a recurrent layer is made of."""

from __future__ import annotations

import keras

from keras_rnnx.registry import discover_plugins


def deserialize_part(config, custom_objects=None):
    """Deserialize a cell or sublayer from its saved config, unbuilt.

    Plugins are discovered first, so their cells resolve. The part is left
    unbuilt: its owner builds it within its own name scope, which keeps weight
    paths (`lstm/lstm_cell/kernel`) the same after loading as before saving.
    """
    discover_plugins()
    config = {k: v for k, v in config.items() if k != "build_config"}
    return keras.saving.deserialize_keras_object(config, custom_objects=custom_objects)
