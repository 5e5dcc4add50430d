"""`keras_rnnx.patch()`: code that builds with `keras.layers` gets the twins,
reversibly; nothing in keras-rnnx reads Keras's behaviour through a name a
patch replaces."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from keras_rnnx.layers import keras_semantics
from keras_rnnx.twins import TWINS
from tests.helpers.backend_utils import KERAS_VERSION


def _keras_model():
    """A model built only through `keras.layers`' names, as someone else's code builds it."""
    layers = keras.layers
    inputs = keras.Input((6, 3))
    x = layers.Bidirectional(layers.GRU(4, return_sequences=True))(inputs)
    x = layers.RNN(layers.StackedRNNCells([layers.LSTMCell(3), layers.SimpleRNNCell(2)]))(x)
    return keras.Model(inputs, layers.Dense(1)(x))


def _twins_of(model):
    return [type(layer) for layer in _recurrent_layers(model)]


def _recurrent_layers(model):
    found = []
    for layer in model.layers:
        if hasattr(layer, "forward_layer"):
            found += [layer, layer.forward_layer, layer.backward_layer]
        elif hasattr(layer, "cell"):
            found += [layer, layer.cell, *getattr(layer.cell, "cells", [])]
    return found


def _fit_save_reload(model, tmp_path):
    x = np.random.RandomState(0).randn(8, 6, 3).astype("float32")
    y = np.random.RandomState(1).randn(8, 1).astype("float32")
    model.compile("adam", "mse")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    return reloaded


def test_a_patch_by_hand_of_every_twin_builds_trains_saves_and_reloads(tmp_path):
    # The usual way to accelerate code one does not own; it used to recurse
    # forever, as keras-rnnx asked Keras's RNN its semantics through the name.
    keras_semantics.keras_class.cache_clear()
    keras_semantics.rnn_propagates_masks.cache_clear()
    originals = {name: getattr(keras.layers, name) for name in TWINS}
    try:
        for name, twin in TWINS.items():
            setattr(keras.layers, name, twin)
        assert keras_semantics.rnn_propagates_masks() is (KERAS_VERSION < (3, 16))
        assert keras_semantics.keras_class("LSTM") is originals["LSTM"]
        model = _keras_model()
        assert all(cls.__module__.startswith("keras_rnnx.") for cls in _twins_of(model))
        reloaded = _fit_save_reload(model, tmp_path)
        assert _twins_of(reloaded) == _twins_of(model)
    finally:
        for name, cls in originals.items():
            setattr(keras.layers, name, cls)


def test_patch_builds_twins_that_pass_isinstance_checks_until_undone(tmp_path):
    handle = keras_rnnx.patch()
    try:
        assert {name for _, name in handle.replaced} == set(TWINS)
        model = _keras_model()
        for layer in _recurrent_layers(model):
            name = type(layer).__name__
            assert type(layer) is TWINS[name]
            assert isinstance(layer, getattr(keras.layers, name))
        assert isinstance(model.layers[2], keras.layers.RNN)
        _fit_save_reload(model, tmp_path)
    finally:
        handle.undo()
    assert all(getattr(keras.layers, name) is keras_semantics.keras_class(name) for name in TWINS)
    assert all(cls.__module__.startswith("keras.src") for cls in _twins_of(_keras_model()))
    handle.undo()  # a second undo does nothing
    assert keras.layers.LSTM is keras_semantics.keras_class("LSTM")


def test_patch_as_a_context_manager_and_nested():
    with keras_rnnx.patch() as outer:
        with keras_rnnx.patch() as inner:
            assert inner.replaced == []  # the names were keras-rnnx's already
        assert keras.layers.GRU is keras_rnnx.GRU  # the inner patch left the outer's
        assert "GRU" in repr(outer)
    assert keras.layers.GRU is keras_semantics.keras_class("GRU")


def test_patch_reaches_tf_keras_when_it_is_loaded():
    import sys

    tf_layers = sys.modules.get("keras._tf_keras.keras.layers")
    if tf_layers is None:
        pytest.skip("TensorFlow's view of Keras (tf.keras) is not loaded on this backend")
    with keras_rnnx.patch():
        assert tf_layers.LSTM is keras_rnnx.LSTM
    assert tf_layers.LSTM is keras_semantics.keras_class("LSTM")


def test_classes_captured_before_the_patch_stay_keras():
    captured = keras.layers.LSTM
    with keras_rnnx.patch():
        assert type(captured(2)) is keras_semantics.keras_class("LSTM")
