"""Switching `keras.layers.X` to `keras_rnnx.X` leaves a program as it was:
same seed same weights and dropout masks, states in the cells' own structure,
configs that round trip with built parts; and where Keras fails on edge
inputs (no steps, no rows), results that make sense."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import to_numpy
from tests.helpers.custom_cells import MinimalCell
from tests.helpers.oracle import FEATURES, sequences, states_for

LAYERS = ("LSTM", "GRU", "SimpleRNN")


def _seeded(make):
    keras.utils.set_random_seed(0)
    return make()


def _numpy(structure):
    return [to_numpy(t) for t in keras.tree.flatten(structure)]


@pytest.mark.parametrize(
    "options",
    ({}, {"dropout": 0.3}, {"dropout": 0.3, "recurrent_dropout": 0.2}),
    ids=("no_dropout", "dropout", "recurrent_dropout"),
)
@pytest.mark.parametrize(
    "make",
    (
        *(lambda mod, name=name, **kw: getattr(mod, name)(4, **kw) for name in LAYERS),
        lambda mod, **kw: mod.RNN(mod.LSTMCell(4, **kw)),
        lambda mod, **kw: mod.RNN([mod.GRUCell(4, **kw), mod.SimpleRNNCell(3, **kw)]),
        lambda mod, **kw: mod.Bidirectional(mod.GRU(4, return_sequences=True, **kw)),
    ),
    ids=(*LAYERS, "RNN_LSTMCell", "stacked", "Bidirectional"),
)
def test_same_seed_same_weights_and_dropout_masks_as_keras(make, options):
    x = sequences()
    ours = _seeded(lambda: make(keras_rnnx, **options))
    out_ours = ours(x, training=True)
    theirs = _seeded(lambda: make(keras.layers, **options))
    out_theirs = theirs(x, training=True)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(to_numpy(out_ours), to_numpy(out_theirs), atol=1e-5)


def test_stacked_custom_cells_return_states_in_their_own_structure():
    x = sequences()

    def states(mod):
        layer = mod.RNN([MinimalCell(4), mod.LSTMCell(3)], return_state=True)
        return layer(x)[1:]

    ours, theirs = states(keras_rnnx), states(keras.layers)
    shapes = keras.tree.map_structure(lambda t: tuple(t.shape), ours)
    assert shapes == keras.tree.map_structure(lambda t: tuple(t.shape), theirs)
    assert not isinstance(ours[0], (list, tuple))  # the cell's bare tensor
    assert isinstance(ours[1], list) and len(ours[1]) == 2


def _built_parts():
    """Layers whose nested cell or sublayer was built before the layer was made."""
    x = sequences()
    cell = MinimalCell(3)
    keras_rnnx.RNN(cell)(x)
    stacked = keras_rnnx.StackedRNNCells([MinimalCell(3), keras_rnnx.LSTMCell(2)])
    keras_rnnx.RNN(stacked)(x)
    backward = keras_rnnx.GRU(3, go_backwards=True)
    backward(x)
    dropout_cell = keras_rnnx.LSTMCell(3, dropout=0.2)
    keras_rnnx.RNN(dropout_cell)(x)
    return {
        "RNN_custom_cell": keras_rnnx.RNN(cell),
        "StackedRNNCells": keras_rnnx.RNN(stacked),
        "Bidirectional_backward_layer": keras_rnnx.Bidirectional(
            keras_rnnx.GRU(3), backward_layer=backward
        ),
        "RNN_dropout_cell": keras_rnnx.RNN(dropout_cell),
    }


@pytest.mark.parametrize("case", list(_built_parts()))
def test_config_round_trips_with_built_parts(case):
    layer = _built_parts()[case]
    config = layer.get_config()
    revived = type(layer).from_config(config)
    assert revived.get_config() == config
    x = sequences()
    layer(x), revived(x)
    shapes = [tuple(w.shape) for w in layer.weights]
    assert [tuple(w.shape) for w in revived.weights] == shapes


@pytest.mark.parametrize("layer_name", LAYERS)
@pytest.mark.parametrize("shape", ((3, 0, FEATURES), (0, 5, FEATURES)), ids=("no_steps", "no_rows"))
def test_empty_sequences_give_empty_results(layer_name, shape):
    layer = getattr(keras_rnnx, layer_name)(4, return_sequences=True, return_state=True)
    layer(sequences())
    x = np.zeros(shape, "float32")
    initial = states_for(layer, batch=shape[0])
    sequence, *states = layer(x, initial_state=initial)
    assert tuple(sequence.shape) == (*shape[:2], 4)
    for state, expected in zip(states, initial):
        np.testing.assert_array_equal(to_numpy(state), expected)
    last = keras_rnnx.RNN(layer.cell, use_cudnn=True)(x)
    np.testing.assert_array_equal(to_numpy(last), np.zeros((shape[0], 4), "float32"))
    assert keras_rnnx.explain(layer).kernel_name == "empty"


@pytest.mark.parametrize("shape", ((3, 0, FEATURES), (0, 5, FEATURES)), ids=("no_steps", "no_rows"))
def test_empty_sequences_in_bidirectional_and_stacked_layers(shape):
    x = np.zeros(shape, "float32")
    bidirectional = keras_rnnx.Bidirectional(keras_rnnx.LSTM(2, return_sequences=True))
    assert tuple(bidirectional(x).shape) == (*shape[:2], 4)
    stacked = keras_rnnx.RNN([MinimalCell(2), keras_rnnx.GRUCell(3)], return_state=True)
    output, *states = stacked(x, training=True)
    assert tuple(output.shape) == (shape[0], 3)
    assert [tuple(s.shape) for s in keras.tree.flatten(states)] == [(shape[0], 2), (shape[0], 3)]
