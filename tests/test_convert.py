"""`keras_rnnx.convert`: models built with `keras.layers` (in code, or loaded
from a `.keras` file) to keras-rnnx's twins and back, with their weights; and
`explain(model)`'s report over a whole model."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

import keras_rnnx
from keras_rnnx.layers.keras_semantics import is_keras_own

layers = keras.layers
STEPS, FEATURES = 6, 3


def _sequential():
    return keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            layers.LSTM(4, return_sequences=True),
            layers.Bidirectional(layers.GRU(3, return_sequences=True), merge_mode="ave"),
            layers.SimpleRNN(2),
        ]
    )


def _functional():
    inputs = keras.Input((STEPS, FEATURES))
    x = layers.Masking()(inputs)
    sequences, h, c = layers.LSTM(4, return_sequences=True, return_state=True)(x)
    y = layers.RNN(layers.StackedRNNCells([layers.GRUCell(3), layers.LSTMCell(2)]))(
        sequences, initial_state=None
    )
    z = layers.GRU(4, go_backwards=True)(x, initial_state=h)
    return keras.Model(inputs, layers.Concatenate()([y, z, c]))


def _nested():
    inner = _functional()
    outer_inputs = keras.Input((STEPS, FEATURES))
    return keras.Sequential([outer_inputs, layers.Dense(FEATURES), inner, layers.Dense(2)])


def _time_distributed():
    # Sequences of sequences: an LSTM per outer step.
    inputs = keras.Input((2, STEPS, FEATURES))
    x = layers.TimeDistributed(layers.LSTM(3))(inputs)
    x = layers.Bidirectional(layers.SimpleRNN(2), backward_layer=layers.GRU(2, go_backwards=True))(
        x
    )
    return keras.Model(inputs, x)


def _stateful():
    return keras.Sequential(
        [keras.Input((STEPS, FEATURES), batch_size=4), layers.GRU(3, stateful=True)]
    )


def _conv_lstm():
    return keras.Sequential(
        [
            keras.Input((3, 5, 5, 2)),
            layers.ConvLSTM2D(2, 3, padding="same", return_sequences=True),
            layers.ConvLSTM2D(2, 2),
        ]
    )


MODELS = {
    "sequential": _sequential,
    "functional": _functional,
    "nested": _nested,
    "time_distributed": _time_distributed,
    "stateful": _stateful,
    "conv_lstm": _conv_lstm,
}


def _inputs(model):
    shape = tuple(4 if d is None else d for d in model.inputs[0].shape)
    return np.random.RandomState(0).randn(*shape).astype("float32")


def _layer_classes(model):
    """Every layer class in `model`, wrappers, directions and cells included."""
    found = []

    def walk(layer):
        found.append(type(layer))
        for sub in getattr(layer, "layers", []):
            walk(sub)
        for attr in ("forward_layer", "backward_layer", "layer", "cell"):
            sub = getattr(layer, attr, None)
            if isinstance(sub, keras.layers.Layer) and not isinstance(layer, keras.Model):
                walk(sub)
        for cell in getattr(layer, "cells", []):
            walk(cell)

    walk(model)
    return found


def _recurrent(classes):
    names = {"RNN", "LSTM", "GRU", "SimpleRNN", "Bidirectional", "StackedRNNCells", "ConvLSTM2D"}
    names |= {"LSTMCell", "GRUCell", "SimpleRNNCell"}
    return [cls for cls in classes if cls.__name__ in names]


def _assert_predicts_the_same(a, b, x):
    for model in (a, b):  # stateful layers start from zeros in each model
        for layer in model.layers:
            if getattr(layer, "stateful", False):
                # Assigned, as Keras 3.10's `reset_state` fails on JAX 0.6.
                for state in keras.tree.flatten(layer.states):
                    state.assign(np.zeros(state.shape, state.dtype))
    outputs = [keras.tree.flatten(model.predict(x, verbose=0)) for model in (a, b)]
    for p, q in zip(*outputs):
        np.testing.assert_allclose(p, q, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", MODELS)
def test_round_trip_keras_to_keras_rnnx_and_back(kind):
    model = MODELS[kind]()
    x = _inputs(model)
    fast = keras_rnnx.convert(model)
    recurrent = _recurrent(_layer_classes(fast))
    assert recurrent and all(cls.__module__.startswith("keras_rnnx.") for cls in recurrent)
    _assert_predicts_the_same(fast, model, x)
    back = keras_rnnx.convert(fast, to="keras")
    recurrent = _recurrent(_layer_classes(back))
    assert recurrent and all(is_keras_own(cls) for cls in recurrent)
    _assert_predicts_the_same(back, model, x)
    # The model itself is left as it was.
    assert all(is_keras_own(cls) for cls in _recurrent(_layer_classes(model)))


def test_a_keras_file_saved_with_keras_layers_converts(tmp_path):
    model = _sequential()
    model.compile("adam", "mse")
    x = _inputs(model)
    model.fit(x, np.zeros((4, 2), "float32"), epochs=1, verbose=0)
    path = str(tmp_path / "keras.keras")
    model.save(path)
    fast = keras_rnnx.convert(keras.saving.load_model(path))
    assert type(fast.layers[0]) is keras_rnnx.LSTM
    _assert_predicts_the_same(fast, model, x)
    # Compiled as the original was (a fresh optimizer), so it trains on.
    assert fast.optimizer is not None and type(fast.optimizer) is type(model.optimizer)
    fast.fit(x, np.zeros((4, 2), "float32"), epochs=1, verbose=0)


LOAD_WITHOUT_KERAS_RNNX = """
import sys
sys.modules["keras_rnnx"] = None  # `import keras_rnnx` now fails: not installed, in effect
import keras, numpy as np
model = keras.saving.load_model(sys.argv[1])
assert not any("keras_rnnx" in type(l).__module__ for l in model.layers)
np.save(sys.argv[2], model.predict(np.load(sys.argv[3]), verbose=0))
"""


def test_converted_back_model_loads_where_keras_rnnx_is_not_installed(tmp_path):
    trained = keras_rnnx.convert(_sequential())
    trained.layers[2].cell.kernel.assign(np.full((3, 2), 0.3, "float32"))
    x = _inputs(trained)
    path = str(tmp_path / "plain.keras")
    keras_rnnx.convert(trained, to="keras").save(path)
    with zipfile.ZipFile(path) as archive:
        assert "keras_rnnx" not in archive.read("config.json").decode()
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npy"
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_KERAS_RNNX, path, str(out), str(tmp_path / "x.npy")],
        check=True,
        env=env,
    )
    np.testing.assert_allclose(np.load(out), trained.predict(x, verbose=0), atol=1e-5)


def _beyond_keras():
    return keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            keras_rnnx.LSTM(4, proj_size=2, return_sequences=True),
            keras_rnnx.LRU(3, return_sequences=True),
            keras_rnnx.GRU(2),
        ]
    )


def test_layers_without_a_keras_twin_stay_and_are_named():
    model = _beyond_keras()
    with pytest.warns(UserWarning, match="proj_size=2") as caught:
        back = keras_rnnx.convert(model, to="keras")
    message = str(caught[0].message)
    assert "sequential/lstm" in message and "keras_rnnx.LRU (Keras has no such layer)" in message
    assert [type(layer) for layer in back.layers[:2]] == [keras_rnnx.LSTM, keras_rnnx.LRU]
    assert is_keras_own(type(back.layers[2]))
    _assert_predicts_the_same(back, model, _inputs(model))
    with pytest.raises(ValueError, match="have no twin in 'keras'"):
        keras_rnnx.convert(model, to="keras", strict=True)


@keras.saving.register_keras_serializable(package="convert_test")
class HalvingCell(keras.layers.Layer):
    state_size = 3

    def call(self, inputs, states):
        h = states[0] * 0.5 + keras.ops.sum(inputs, axis=-1, keepdims=True)
        return h, [h]


def test_a_foreign_cell_keeps_running_in_the_twin_and_is_named():
    model = keras.Sequential([keras.Input((STEPS, FEATURES)), layers.RNN(HalvingCell())])
    with pytest.warns(UserWarning, match="convert_test>HalvingCell"):
        fast = keras_rnnx.convert(model)
    assert type(fast.layers[0]) is keras_rnnx.RNN
    assert type(fast.layers[0].cell) is HalvingCell
    _assert_predicts_the_same(fast, model, _inputs(model))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="Expected `to` to be one of"):
        keras_rnnx.convert(_sequential(), to="torch")
    with pytest.raises(ValueError, match="Expected a keras.Model"):
        keras_rnnx.convert(layers.LSTM(2))

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.lstm = layers.LSTM(2)

        def call(self, x):
            return self.lstm(x)

    with pytest.raises(ValueError, match=r"subclassed model .*keras_rnnx.patch\(\)"):
        keras_rnnx.convert(Subclassed())


def test_explain_a_model_lists_every_recurrent_layer():
    model = keras_rnnx.convert(_time_distributed())
    report = keras_rnnx.explain(model)
    assert [row[2] for row in report] == ["not run yet"] * 3
    model.predict(_inputs(model), verbose=0)
    report = keras_rnnx.explain(model)
    paths = [row[0] for row in report]
    assert paths[0].endswith("/time_distributed/lstm") and len(paths) == 3
    assert [row[1] for row in report] == [
        "keras_rnnx.LSTM",
        "keras_rnnx.SimpleRNN",
        "keras_rnnx.GRU",
    ]
    _, wrapped, both = model.layers  # the Input layer first
    directions = keras_rnnx.explain(both)
    expected = [keras_rnnx.explain(wrapped.layer), directions["forward"], directions["backward"]]
    assert [row[2] for row in report] == [str(s.kernel_name) for s in expected]
    text = str(report)
    assert text.splitlines()[0].split() == ["layer", "class", "kernel", "why", "not", "faster"]
    assert all(path in text for path in paths)
    plain = keras_rnnx.explain(_sequential())
    assert [row[1:3] for row in plain][0] == ("keras.layers.LSTM", "Keras's own")
