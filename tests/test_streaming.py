"""`keras_rnnx.streaming(model)`: the twin run chunk by chunk equals the
model on the whole sequence."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import to_numpy
from tests.helpers.custom_cells import MinimalCell
from tests.helpers.oracle import assert_all_close

FEATURES = 4


def _stacked():
    inputs = keras.Input((None, FEATURES))
    x = keras_rnnx.GRU(3, return_sequences=True)(inputs)
    x = keras_rnnx.LSTM(4, return_sequences=True)(x)
    x = keras_rnnx.SimpleRNN(2)(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def _cells():
    inputs = keras.Input((None, FEATURES))
    cells = [keras_rnnx.LSTMCell(3), keras_rnnx.GRUCell(2)]
    x = keras_rnnx.RNN(cells, return_sequences=True)(inputs)
    x = keras_rnnx.RNN(MinimalCell(3), return_sequences=True)(x)
    return keras.Model(inputs, x)


def _nested():
    inner = keras.Sequential([keras.Input((None, 3)), keras_rnnx.LSTM(3, return_sequences=True)])
    inputs = keras.Input((None, FEATURES))
    x = keras.layers.Dense(3)(inputs)
    return keras.Model(inputs, keras_rnnx.GRU(2)(inner(x)))


def _linear():
    inputs = keras.Input((None, FEATURES))
    x = keras_rnnx.MinGRU(3, return_sequences=True)(inputs)
    x = keras_rnnx.LRU(4, return_sequences=True)(x)
    x = keras_rnnx.RGLRU(4, heads=2, return_sequences=True)(x)
    x = keras_rnnx.sLSTM(4, heads=2, return_sequences=True)(x)
    return keras.Model(inputs, keras_rnnx.MinLSTM(2, log_space=True)(x))


def _matrix():
    inputs = keras.Input((None, FEATURES))
    x = keras_rnnx.GLA(2, 3, return_sequences=True)(inputs)
    x = keras_rnnx.mLSTM(2, 3, return_sequences=True, chunk_size=2)(x)
    x = keras_rnnx.GatedDeltaNet(2, 3, return_sequences=True, chunk_size=4)(x)
    x = keras_rnnx.DeltaNet(2, 2, return_sequences=True)(x)
    return keras.Model(inputs, keras_rnnx.Mamba2(2, 2, state_dim=3)(x))


MODELS = {
    "stacked layers": _stacked,
    "stacked and custom cells": _cells,
    "nested": _nested,
    "parallel-scan layers": _linear,
    "chunkwise layers": _matrix,
}


def _zeros(twin, batch):
    return [keras.ops.zeros((batch, *s.shape[1:]), s.dtype) for s in twin.inputs[1:]]


def _run_in_chunks(twin, x, sizes):
    states, outputs, start = _zeros(twin, x.shape[0]), [], 0
    for size in sizes:
        y, *states = twin([keras.ops.convert_to_tensor(x[:, start : start + size]), *states])
        outputs.append(to_numpy(y))
        start += size
    assert start == x.shape[1]
    return outputs, [to_numpy(s) for s in states]


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("sizes", [(1,) * 7, (3, 1, 3)], ids=["step by step", "chunks"])
def test_chunks_equal_the_whole_sequence(name, sizes):
    model = MODELS[name]()
    x = np.random.default_rng(0).normal(size=(3, 7, FEATURES)).astype("float32")
    twin = keras_rnnx.streaming(model)
    outputs, states = _run_in_chunks(twin, x, sizes)
    want = to_numpy(model(x))
    got = outputs[-1] if want.ndim == 2 else np.concatenate(outputs, axis=1)
    assert_all_close([got], [want], f"{name} in chunks of {sizes}")
    _, whole_states = _run_in_chunks(twin, x, (7,))
    assert_all_close(states, whole_states, "the final states")


def test_a_masked_stream_carries_states_over_masked_steps():
    inputs = keras.Input((None, FEATURES))
    x = keras.layers.Masking(0.0)(inputs)
    model = keras.Model(inputs, keras_rnnx.LSTM(3, return_sequences=True)(x))
    x = np.random.default_rng(1).normal(size=(2, 6, FEATURES)).astype("float32")
    x[0, 2:4] = 0.0  # a hole across the chunks' border
    twin = keras_rnnx.streaming(model)
    outputs, states = _run_in_chunks(twin, x, (3, 3))
    got, want = np.concatenate(outputs, axis=1), to_numpy(model(x))
    valid = np.any(x != 0.0, axis=-1)
    assert_all_close([got[valid]], [want[valid]], "the valid steps")
    _, whole_states = _run_in_chunks(twin, x, (6,))
    assert_all_close(states, whole_states, "the final states")


def test_the_twin_shares_the_models_weights():
    model = _stacked()
    twin = keras_rnnx.streaming(model)
    assert {id(w) for w in twin.weights} == {id(w) for w in model.weights}
    x = np.random.default_rng(2).normal(size=(2, 3, FEATURES)).astype("float32")
    model.layers[1].cell.kernel.assign(np.ones(model.layers[1].cell.kernel.shape))
    outputs, _ = _run_in_chunks(twin, x, (1, 2))
    assert_all_close([outputs[-1]], [to_numpy(model(x))], "after changing a weight")


def _with(layer):
    inputs = keras.Input((None, FEATURES))
    return keras.Model(inputs, layer(inputs))


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (lambda: _with(keras_rnnx.Bidirectional(keras_rnnx.GRU(2))), "Bidirectional"),
        (lambda: _with(keras_rnnx.GRU(2, go_backwards=True)), "go_backwards"),
        (lambda: _with(keras.layers.LSTM(2)), "keras.layers.LSTM"),
        (lambda: _with(keras.layers.Dense(2)), "no keras-rnnx recurrent layer"),
        (
            lambda: keras.Sequential(
                [keras.Input((3, FEATURES), batch_size=2), keras_rnnx.GRU(2, stateful=True)]
            ),
            "stateful",
        ),
        (lambda: keras.Sequential([keras_rnnx.GRU(2)]), "built model"),
    ],
    ids=["bidirectional", "go_backwards", "keras.layers", "none", "stateful", "unbuilt"],
)
def test_a_model_that_cannot_stream_is_an_error_saying_why(model, match):
    with pytest.raises(ValueError, match=match):
        keras_rnnx.streaming(model())


def test_a_layer_called_twice_on_a_chunk_is_an_error():
    inputs = keras.Input((None, FEATURES))
    shared = keras_rnnx.GRU(FEATURES, return_sequences=True)
    model = keras.Model(inputs, shared(shared(inputs)))
    with pytest.raises(ValueError, match="called twice"):
        keras_rnnx.streaming(model)
