"""The sLSTM against a NumPy transcription of xLSTM's step (eq. 8-17 with the
stabiliser of its code), its initialisation and its resets; sLSTM and RG-LRU
in `Bidirectional`, stacks and stateful use."""

from __future__ import annotations

import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import to_numpy
from tests.helpers.oracle import assert_all_close, numpy_sigmoid

UNITS, HEADS, STEPS, FEATURES = 6, 2, 30, 5
TOLERANCE = 1e-4


def _inputs(seed=0, steps=STEPS):
    return np.random.RandomState(seed).randn(2, steps, FEATURES).astype("float32")


def _numpy_slstm(x, w, forget_gate):
    width = UNITS // HEADS
    h, c, n, m = (np.zeros((2, HEADS, width)) for _ in range(4))
    outputs = []
    for t in range(x.shape[1]):
        pre = (x[:, t] @ w["kernel"]).reshape(2, HEADS, 4, width)
        pre = pre + np.einsum("bhd,hdge->bhge", h, w["recurrent_kernel"]) + w["bias"]
        i, f, z, o = (pre[:, :, g] for g in range(4))
        log_f = -np.logaddexp(0, -f) if forget_gate == "sigmoid" else f
        m_new = np.where(n == 0, i, np.maximum(i, log_f + m))
        fa, ia = np.exp(log_f + m - m_new), np.exp(i - m_new)
        c, n, m = fa * c + ia * np.tanh(z), fa * n + ia, m_new
        h = numpy_sigmoid(o) * c / n
        outputs.append(h.reshape(2, -1))
    return np.stack(outputs, 1), [s.reshape(2, -1) for s in (h, c, n, m)]


@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
def test_slstm_is_the_papers(forget_gate):
    layer = keras_rnnx.sLSTM(
        UNITS, heads=HEADS, forget_gate=forget_gate, return_sequences=True, return_state=True
    )
    x = _inputs()
    layer(x)
    rng = np.random.RandomState(1)
    layer.set_weights([0.5 * rng.randn(*w.shape).astype("float32") for w in layer.get_weights()])
    w = {v.path.split("/")[-1]: to_numpy(v) for v in layer.weights}
    got = [to_numpy(t) for t in layer(x)]
    want_y, want_states = _numpy_slstm(x, w, forget_gate)
    assert_all_close(got, [want_y, *want_states], "sLSTM", TOLERANCE, TOLERANCE)


def test_slstm_starts_as_xlstms():
    cell = keras_rnnx.sLSTMCell(8, heads=2)
    cell.build((None, 3))
    assert not np.any(to_numpy(cell.recurrent_kernel))
    bias = to_numpy(cell.bias)
    forget = -(-5.0 + 12.0 * (np.arange(4) / 3) ** 0.3)
    np.testing.assert_allclose(bias[:, 1], np.stack([forget, forget]), rtol=1e-6)
    assert not np.any(bias[:, [0, 2, 3]])


def test_a_reset_starts_the_row_again():
    layer = keras_rnnx.sLSTM(UNITS, heads=HEADS, return_sequences=True)
    x = _inputs(2)
    layer(x)
    rng = np.random.RandomState(3)
    layer.set_weights([0.5 * rng.randn(*w.shape).astype("float32") for w in layer.get_weights()])
    reset = np.zeros((2, STEPS), bool)
    reset[0, 12] = True
    y = to_numpy(layer(x, reset=reset))
    fresh = to_numpy(layer(x[:, 12:]))
    assert_all_close([y[0, 12:], y[1]], [fresh[0], to_numpy(layer(x))[1]], "reset", 1e-5, 1e-5)


@pytest.mark.parametrize("make", [keras_rnnx.sLSTM, keras_rnnx.RGLRU])
def test_bidirectional_and_stacked_are_the_layers_both_ways(make):
    x = _inputs(4)
    forward = make(UNITS, heads=HEADS, return_sequences=True)
    backward = make(UNITS, heads=HEADS, return_sequences=True, go_backwards=True)
    both = keras_rnnx.Bidirectional(make(UNITS, heads=HEADS, return_sequences=True))
    for layer in (forward, backward, both):
        layer(x)
    rng = np.random.RandomState(5)
    weights = [0.5 * rng.randn(*w.shape).astype("float32") for w in forward.get_weights()]
    forward.set_weights(weights)
    backward.set_weights(weights)
    both.set_weights(weights + weights)
    want = np.concatenate([to_numpy(forward(x)), to_numpy(backward(x))[:, ::-1]], axis=-1)
    assert_all_close([to_numpy(both(x))], [want], "Bidirectional", 1e-5, 1e-5)
    stacked = keras_rnnx.RNN(
        [keras_rnnx.sLSTMCell(UNITS, heads=HEADS), keras_rnnx.RGLRUCell(UNITS, heads=HEADS)]
    )
    assert tuple(stacked(x).shape) == (2, UNITS)


@pytest.mark.parametrize("make", [keras_rnnx.sLSTM, keras_rnnx.RGLRU])
def test_stateful_halves_equal_the_whole_sequence(make):
    x = _inputs(6, steps=10)
    whole = make(UNITS, heads=HEADS, return_sequences=True)
    halves = make(UNITS, heads=HEADS, return_sequences=True, stateful=True)
    whole(x)
    rng = np.random.RandomState(7)
    whole.set_weights([0.5 * rng.randn(*w.shape).astype("float32") for w in whole.get_weights()])
    halves(x[:, :5])
    halves.set_weights(whole.get_weights())
    halves.reset_state()
    got = np.concatenate([to_numpy(halves(x[:, :5])), to_numpy(halves(x[:, 5:]))], axis=1)
    assert_all_close([got], [to_numpy(whole(x))], "stateful halves", 1e-5, 1e-5)


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: keras_rnnx.sLSTMCell(6, heads=4), "heads"),
        (lambda: keras_rnnx.sLSTM(0), "units"),
        (lambda: keras_rnnx.sLSTM(4, forget_gate="relu"), "forget_gate"),
    ],
)
def test_bad_options_name_the_argument(make, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        make()
