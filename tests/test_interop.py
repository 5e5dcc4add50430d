"""torch's recurrent modules in and out (`from_torch`, `to_torch`), on every
backend: the module and the layer give the same outputs and states for the
same inputs. torch is installed in every backend's test session for these."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import to_numpy
from tests.helpers.oracle import assert_all_close

torch = pytest.importorskip("torch", reason="torch is needed to make the modules")

FEATURES, UNITS = 3, 6
MODULES = {
    "LSTM": lambda **kw: torch.nn.LSTM(FEATURES, UNITS, **kw),
    "GRU": lambda **kw: torch.nn.GRU(FEATURES, UNITS, **kw),
    "RNN": lambda **kw: torch.nn.RNN(FEATURES, UNITS, **kw),
    "RNN-relu": lambda **kw: torch.nn.RNN(FEATURES, UNITS, nonlinearity="relu", **kw),
    "LSTM-proj": lambda **kw: torch.nn.LSTM(FEATURES, UNITS, proj_size=2, **kw),
}
CASES = [
    (kind, layers, bidirectional)
    for kind in MODULES
    for layers in (1, 2)
    for bidirectional in (False, True)
]


def _inputs(batch=4, steps=7):
    return np.random.default_rng(0).normal(size=(batch, steps, FEATURES)).astype("float32")


def _run(module, x):
    """The module's outputs and states for batch-major `x`."""
    with torch.no_grad():
        inputs = torch.tensor(x if module.batch_first else x.swapaxes(0, 1))
        y, states = module(inputs)
    y = y.numpy() if module.batch_first else y.numpy().swapaxes(0, 1)
    states = states if isinstance(states, tuple) else (states,)
    return y, [s.numpy() for s in states]


@pytest.mark.parametrize(("kind", "layers", "bidirectional"), CASES)
def test_from_torch_computes_what_the_module_computes(kind, layers, bidirectional):
    torch.manual_seed(0)
    module = MODULES[kind](num_layers=layers, bidirectional=bidirectional, batch_first=True)
    layer = keras_rnnx.from_torch(module)
    x = _inputs()
    want, _ = _run(module, x)
    assert_all_close([to_numpy(layer(x))], [want], "outputs")
    if not (bidirectional and layers > 1):  # a Sequential of Bidirectionals: no torch twin
        back, _ = _run(keras_rnnx.to_torch(layer), x)
        assert_all_close([back], [want], "outputs of to_torch(from_torch(module))")


@pytest.mark.parametrize("kind", ("LSTM", "GRU", "LSTM-proj"))
def test_final_states_and_time_major_modules(kind):
    torch.manual_seed(1)
    module = MODULES[kind](num_layers=2, batch_first=False, bias=kind != "GRU")
    layer = keras_rnnx.from_torch(module, return_state=True)
    x = _inputs()
    want_y, want_states = _run(module, x)
    y, *states = [to_numpy(t) for t in keras.tree.flatten(layer(x))]
    assert_all_close([y], [want_y], "outputs")
    # torch stacks each state over layers; Keras returns each cell's group.
    ours = [np.stack(states[i :: len(want_states)]) for i in range(len(want_states))]
    assert_all_close(ours, want_states, "final states")


def test_dropout_between_layers_becomes_the_next_cells_input_dropout():
    module = torch.nn.GRU(FEATURES, UNITS, num_layers=3, dropout=0.25, batch_first=True).eval()
    layer = keras_rnnx.from_torch(module)
    assert [cell.dropout for cell in layer.cell.cells] == [0.0, 0.25, 0.25]
    assert_all_close([to_numpy(layer(_inputs()))], [_run(module, _inputs())[0]], "inference")


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras_rnnx.LSTM(UNITS, return_sequences=True),
        lambda: keras_rnnx.GRU(UNITS, use_bias=False, return_sequences=True),
        lambda: keras_rnnx.SimpleRNN(UNITS, activation="relu", return_sequences=True),
        lambda: keras_rnnx.RNN(
            [keras_rnnx.LSTMCell(UNITS, proj_size=2), keras_rnnx.LSTMCell(UNITS, proj_size=2)],
            return_sequences=True,
        ),
        lambda: keras_rnnx.Bidirectional(keras_rnnx.GRU(UNITS, return_sequences=True)),
    ],
    ids=["LSTM", "GRU-no-bias", "SimpleRNN-relu", "stacked-projected-LSTM", "Bidirectional"],
)
def test_to_torch_computes_what_the_layer_computes(make):
    layer = make()
    x = _inputs()
    want = to_numpy(layer(x))
    got, _ = _run(keras_rnnx.to_torch(layer), x)
    assert_all_close([got], [want], "outputs")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: keras_rnnx.GRU(UNITS, reset_after=False), "reset_after=False"),
        (lambda: keras_rnnx.LSTM(UNITS, activation="relu"), "activation is not tanh"),
        (lambda: keras_rnnx.LSTM(UNITS, go_backwards=True), "go_backwards=False"),
        (
            lambda: keras_rnnx.Bidirectional(keras_rnnx.LSTM(UNITS), merge_mode="sum"),
            "merge_mode='concat'",
        ),
        (
            lambda: keras_rnnx.RNN([keras_rnnx.LSTMCell(UNITS), keras_rnnx.GRUCell(UNITS)]),
            "one kind, size and bias",
        ),
        (
            lambda: keras_rnnx.Bidirectional(
                keras_rnnx.RNN([keras_rnnx.GRUCell(UNITS), keras_rnnx.GRUCell(UNITS)])
            ),
            "one cell per direction",
        ),
    ],
)
def test_to_torch_names_what_torch_cannot_run(make, message):
    layer = make()
    layer(_inputs())
    with pytest.raises(ValueError, match=message):
        keras_rnnx.to_torch(layer)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="built layer"):
        keras_rnnx.to_torch(keras_rnnx.LSTM(UNITS))
    with pytest.raises(TypeError, match="`module`"):
        keras_rnnx.from_torch(torch.nn.Linear(3, 4))
    with pytest.raises(ValueError, match="`return_state`"):
        keras_rnnx.from_torch(
            torch.nn.LSTM(FEATURES, UNITS, num_layers=2, bidirectional=True), return_state=True
        )
