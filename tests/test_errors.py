"""Bad input raises a clear error naming the argument, and changes nothing."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import to_numpy
from tests.helpers.oracle import BATCH, FEATURES, STEPS, sequences


def _snapshot(layer):
    return [to_numpy(w) for w in layer.weights] + [
        to_numpy(v) for v in keras.tree.flatten(layer.states or [])
    ]


def _unchanged(before, layer):
    after = _snapshot(layer)
    return len(before) == len(after) and all((a == b).all() for a, b in zip(before, after))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"units": 0}, "expected a positive integer, got 0"),
        ({"units": -3}, "expected a positive integer, got -3"),
        ({"units": 2.5}, "expected a positive integer, got 2.5"),
        ({"units": 3, "activation": "no_such_activation"}, "activation='no_such_activation'"),
        ({"units": 3, "kernel_initializer": "nope"}, "kernel_initializer='nope'"),
        ({"units": 3, "dropout": 1.5}, "dropout=1.5"),
        ({"units": 3, "recurrent_dropout": -0.1}, "recurrent_dropout=-0.1"),
        ({"units": 3, "recurrent_kernel_dropout": "half"}, "recurrent_kernel_dropout='half'"),
        ({"units": 3, "use_cudnn": "yes"}, "use_cudnn='yes'"),
    ],
)
@pytest.mark.parametrize("layer", ("LSTM", "GRU", "SimpleRNN"))
def test_bad_constructor_arguments(layer, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        getattr(keras_rnnx, layer)(**kwargs)


def test_bad_cells_and_wrappers():
    with pytest.raises(ValueError, match="`cell` should have a `call` method"):
        keras_rnnx.RNN(object())
    with pytest.raises(ValueError, match="state_size"):
        keras_rnnx.RNN(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="merge_mode='max'"):
        keras_rnnx.Bidirectional(keras_rnnx.LSTM(2), merge_mode="max")
    with pytest.raises(ValueError, match="with a `keras.layers.Layer` instance"):
        keras_rnnx.Bidirectional("lstm")
    with pytest.raises(
        ValueError, match=r"`layer` to be a recurrent layer.*Received: layer=<Dense"
    ):
        keras_rnnx.Bidirectional(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="`backward_layer` to be a recurrent layer"):
        keras_rnnx.Bidirectional(keras_rnnx.LSTM(2), backward_layer=keras.layers.Dense(3))
    with pytest.raises(ValueError, match="return_sequences"):
        keras_rnnx.Bidirectional(
            keras_rnnx.LSTM(2),
            backward_layer=keras_rnnx.LSTM(2, go_backwards=True, return_sequences=True),
        )
    with pytest.raises(ValueError, match="go_backwards"):
        keras_rnnx.Bidirectional(keras_rnnx.LSTM(2), backward_layer=keras_rnnx.LSTM(2))


def test_wrong_rank_before_build_leaves_layer_unbuilt():
    layer = keras_rnnx.GRU(3)
    with pytest.raises(
        ValueError, match=r"expected ndim=3, found ndim=2. Full shape received: \(4, 5\)"
    ):
        layer(np.zeros((4, 5), "float32"))
    assert not layer.weights
    layer(sequences())
    assert layer.built


@pytest.mark.parametrize("layer_name", ("LSTM", "GRU", "SimpleRNN"))
def test_call_errors_leave_weights_and_states_untouched(layer_name):
    layer = getattr(keras_rnnx, layer_name)(3, stateful=True)
    x = sequences()
    layer(x)
    before = _snapshot(layer)
    bad_calls = [
        (lambda: layer(np.zeros((BATCH, STEPS), "float32")), "expected ndim=3"),
        (lambda: layer(np.zeros((BATCH, STEPS, FEATURES + 1), "float32")), "trailing dimensions"),
        (lambda: layer(x, mask=np.ones((BATCH, STEPS + 1), bool)), "`mask` shaped"),
        (lambda: layer(x, mask=np.ones((BATCH,), bool)), "`mask` shaped"),
        (lambda: layer(np.zeros((BATCH + 1, STEPS, FEATURES), "float32")), "batches of 4"),
        (lambda: layer(x, initial_state=[np.zeros((BATCH, 3))] * 5), "initial state"),
        (lambda: layer(x, initial_state=[np.zeros((BATCH, 4))] * len(layer.states)), "shaped"),
        (lambda: layer.reset_state(states=[np.zeros((BATCH, 7))] * len(layer.states)), "shaped"),
    ]
    for call, message in bad_calls:
        with pytest.raises(ValueError, match=message):
            call()
        assert _unchanged(before, layer), message


def test_stateful_needs_a_fixed_batch_size():
    with pytest.raises(ValueError, match="batch size must be static"):
        keras.Sequential([keras.Input((5, 3)), keras_rnnx.LSTM(2, stateful=True)])
    model = keras.Sequential([keras.Input((5, 3), batch_size=2), keras_rnnx.LSTM(2, stateful=True)])
    assert tuple(model.output_shape) == (2, 2)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="only TensorFlow graphs leave the number of time steps unknown at call time",
)
def test_unroll_needs_known_steps():
    import tensorflow as tf

    layer = keras_rnnx.LSTM(2, unroll=True)
    layer(sequences())
    graph_call = tf.function(layer, input_signature=[tf.TensorSpec((None, None, FEATURES))])
    with pytest.raises(ValueError, match="Cannot unroll a RNN if the time dimension is undefined"):
        graph_call(sequences())


@keras_rnnx.register_cell(package="rnnx_tests")
class WrongStatesCell(keras.layers.Layer):
    """Declares two states, returns one."""

    state_size = [2, 2]

    def call(self, inputs, states):
        return states[0], [states[0]]


@keras_rnnx.register_cell(package="rnnx_tests")
class WrongOutputsCell(keras.layers.Layer):
    """Declares one output, returns two."""

    state_size = 2
    output_size = 2

    def call(self, inputs, states):
        return [states[0], states[0]], states


def test_cell_returning_the_wrong_structure():
    with pytest.raises(ValueError, match="do not match its declared `state_size`"):
        keras_rnnx.RNN(WrongStatesCell())(sequences())
    with pytest.raises(ValueError, match="do not match its declared `output_size`"):
        keras_rnnx.RNN(WrongOutputsCell())(sequences())


def test_bad_state_size():
    class Cell(keras.layers.Layer):
        state_size = "big"

        def call(self, inputs, states):
            return inputs, states

    with pytest.raises(TypeError, match="state or output size"):
        keras_rnnx.RNN(Cell())


def test_bidirectional_odd_initial_state():
    layer = keras_rnnx.Bidirectional(keras_rnnx.GRU(3))
    layer(sequences())
    with pytest.raises(ValueError, match=r"1 forward state\(s\) followed by 1 backward"):
        layer(sequences(), initial_state=[np.zeros((BATCH, 3), "float32")] * 3)


def test_reset_state_on_non_stateful_bidirectional():
    layer = keras_rnnx.Bidirectional(keras_rnnx.GRU(3))
    with pytest.raises(AttributeError, match="not stateful"):
        layer.reset_state()


@pytest.mark.parametrize("layer_name", ("LSTM", "GRU", "SimpleRNN"))
def test_initial_state_of_another_batch_size(layer_name):
    layer = getattr(keras_rnnx, layer_name)(4, return_state=True)
    states = [np.zeros((BATCH + 1, 4), "float32")] * (2 if layer_name == "LSTM" else 1)
    with pytest.raises(
        ValueError,
        match=rf"`initial_state`.*with a batch of {BATCH}. Received shapes: \[\({BATCH + 1}, 4\)",
    ):
        layer(sequences(), initial_state=states)
