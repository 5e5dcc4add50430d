"""Cells, one step at a time, against keras.layers' cells; the state-size convention."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from keras_rnnx.cells.base import Shape, size_to_shapes
from tests.helpers.backend_utils import to_numpy
from tests.helpers.oracle import assert_all_close

CELLS = {
    "LSTMCell": {"units": 4},
    "GRUCell": {"units": 4},
    "GRUCell-reset_before": {"units": 4, "reset_after": False},
    "SimpleRNNCell": {"units": 4},
}


@pytest.mark.parametrize("training", (False, True))
@pytest.mark.parametrize("name", CELLS)
def test_one_step_matches_keras_cell(name, training):
    cls = name.split("-")[0]
    kwargs = {**CELLS[name], "dropout": 0.3, "recurrent_dropout": 0.3, "seed": 5}
    ours, theirs = getattr(keras_rnnx, cls)(**kwargs), getattr(keras.layers, cls)(**kwargs)
    rng = np.random.RandomState(0)
    x = rng.randn(3, 6).astype("float32")
    states = [rng.randn(3, 4).astype("float32") for _ in theirs.get_initial_state(3)]
    ours.build((3, 6))
    theirs.build((3, 6))
    ours.set_weights(theirs.get_weights())
    out_ours, states_ours = ours(x, states, training=training)
    out_theirs, states_theirs = theirs(x, states, training=training)
    assert_all_close(
        [to_numpy(t) for t in [out_ours, *states_ours]],
        [to_numpy(t) for t in [out_theirs, *states_theirs]],
        f"{name} step",
    )
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]


@pytest.mark.parametrize("cls", ("LSTMCell", "GRUCell", "SimpleRNNCell"))
def test_cell_config_matches_keras(cls):
    ours = getattr(keras_rnnx, cls)(3, activation="relu", name="c")
    theirs = getattr(keras.layers, cls)(3, activation="relu", name="c")
    assert ours.get_config() == theirs.get_config()
    assert getattr(keras_rnnx, cls).from_config(ours.get_config()).get_config() == ours.get_config()


def test_lstm_unit_forget_bias_initialises_forget_gate_to_one():
    cell = keras_rnnx.LSTMCell(3)
    cell.build((None, 2))
    np.testing.assert_array_equal(to_numpy(cell.bias), [0, 0, 0, 1, 1, 1] + [0] * 6)


def _dims(shapes):
    return keras.tree.map_structure(lambda s: s.dims, shapes)


def test_state_size_convention():
    assert _dims(size_to_shapes(5, top_level=True)) == (5,)
    assert _dims(size_to_shapes([5, 6], top_level=True)) == [(5,), (6,)]
    assert _dims(size_to_shapes((5, 6), top_level=True)) == [(5,), (6,)]  # Keras: 2 states
    assert _dims(size_to_shapes([10, (20, 30)], top_level=True)) == [(10,), (20, 30)]
    assert _dims(size_to_shapes([10, [20, 30]], top_level=True)) == [(10,), [(20,), (30,)]]
    assert _dims(size_to_shapes({"a": 3, "b": (2, 2)})) == {"a": (3,), "b": (2, 2)}
    assert isinstance(size_to_shapes((20, 30)), Shape)  # below the top level: one shape
    with pytest.raises(TypeError, match="state or output size"):
        size_to_shapes(["x"])
