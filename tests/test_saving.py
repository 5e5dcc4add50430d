"""Saving: configs, `.keras` files, weights from keras.layers, across backends."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import to_numpy
from tests.helpers.oracle import sequences
from tests.helpers.saved_models import BACKENDS, DATA, build_model, model_inputs

LAYERS = {
    "LSTM": lambda: keras_rnnx.LSTM(
        3, return_sequences=True, dropout=0.1, unit_forget_bias=False, use_cudnn=False
    ),
    "GRU": lambda: keras_rnnx.GRU(3, reset_after=False, go_backwards=True, seed=3),
    "SimpleRNN": lambda: keras_rnnx.SimpleRNN(3, activation="relu", return_state=True),
    "RNN": lambda: keras_rnnx.RNN(
        [keras_rnnx.GRUCell(2), keras_rnnx.LSTMCell(3)], zero_output_for_mask=True
    ),
    "Bidirectional": lambda: keras_rnnx.Bidirectional(
        keras_rnnx.LSTM(3, return_sequences=True), merge_mode="sum"
    ),
    "ConvLSTM2D": lambda: keras_rnnx.ConvLSTM2D(2, (3, 2), strides=2, data_format="channels_first"),
    "LayerNormLSTM": lambda: keras_rnnx.LayerNormLSTM(3, norm_epsilon=1e-5),
    "LayerNormGRU": lambda: keras_rnnx.LayerNormGRU(3, norm_beta_initializer="ones"),
    "MinGRU": lambda: keras_rnnx.MinGRU(3, log_space=True),
    "MinLSTM": lambda: keras_rnnx.MinLSTM(3, use_bias=False),
    "LRU": lambda: keras_rnnx.LRU(3, r_min=0.5, max_phase=3.0),
    "RGLRU": lambda: keras_rnnx.RGLRU(4, heads=2, max_radius=0.99),
    "sLSTM": lambda: keras_rnnx.sLSTM(4, heads=2, forget_gate="exp", go_backwards=True),
    "GLA": lambda: keras_rnnx.GLA(2, 4, 3, gate_rank=8, chunk_size=32),
    "mLSTM": lambda: keras_rnnx.mLSTM(2, 4, forget_gate="exp", normalize=False),
    "Mamba2": lambda: keras_rnnx.Mamba2(2, 4, state_dim=8, gate=False, dt_max=0.2),
    "DeltaNet": lambda: keras_rnnx.DeltaNet(2, 4, 3, output_gate=True, chunk_size=16),
    "GatedDeltaNet": lambda: keras_rnnx.GatedDeltaNet(2, 4, normalize=False, dt_min=0.01),
}


@pytest.mark.parametrize("name", LAYERS)
def test_config_round_trip(name):
    layer = LAYERS[name]()
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    serialized = keras.saving.serialize_keras_object(layer)
    again = keras.saving.deserialize_keras_object(serialized)
    assert type(again) is type(layer) and again.get_config() == layer.get_config()


def test_keras_file_round_trip(tmp_path):
    model = build_model()
    x = model_inputs()
    expected = model.predict(x, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    # Configs travel as JSON, where tuples become lists.
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(
        model.get_config(), sort_keys=True
    )
    for a, b in zip(loaded.weights, model.weights):
        assert a.path == b.path
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


@pytest.mark.parametrize("saved_under", BACKENDS)
def test_models_saved_under_every_backend_load_here(saved_under):
    loaded = keras.saving.load_model(os.path.join(DATA, f"model_{saved_under}.keras"))
    recorded = np.load(os.path.join(DATA, f"model_{saved_under}.npz"))
    # Recorded by another backend's kernels (JAX's CPU infers GLA by the loop,
    # the others by chunks): float32's rounding, relative to the outputs.
    got = loaded.predict(recorded["x"], verbose=0)
    np.testing.assert_allclose(got, recorded["y"], rtol=1e-5, atol=1e-5)


def _twin_models(rnnx, layers):
    def model(lib):
        inputs = keras.Input((6, 5))
        x = lib.LSTM(4, return_sequences=True, name="lstm")(inputs)
        x = lib.Bidirectional(lib.GRU(3, return_sequences=True), name="bi")(x)
        x = lib.SimpleRNN(2, name="simple")(x)
        return keras.Model(inputs, x)

    return model(rnnx), model(layers)


@pytest.mark.parametrize("direction", ("keras_to_rnnx", "rnnx_to_keras"))
def test_weights_files_move_between_keras_and_keras_rnnx(tmp_path, direction):
    ours, theirs = _twin_models(keras_rnnx, keras.layers)
    source, target = (theirs, ours) if direction == "keras_to_rnnx" else (ours, theirs)
    path = tmp_path / "model.weights.h5"
    source.save_weights(path)
    target.load_weights(path)
    x = sequences(shape=(3, 6, 5))
    np.testing.assert_allclose(
        target.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-5
    )


def test_states_are_not_weights():
    layer = keras_rnnx.LSTM(3, stateful=True)
    layer(sequences())
    assert len(layer.weights) == 3 and len(layer.states) == 2
    assert layer.non_trainable_weights == []
