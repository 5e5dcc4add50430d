"""The layer-normalised cells against NumPy implementations of their
equations: TensorFlow Addons' `LayerNormLSTMCell.call`, step for step, and the
same rule on Keras's GRU."""

from __future__ import annotations

import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import to_numpy
from tests.helpers.oracle import (
    BATCH,
    assert_all_close,
    assert_matches_reference,
    fast_and_reference,
    mask_kwargs,
    numpy_sigmoid,
    numpy_steps,
    sequences,
)

UNITS = 4


def _layer_norm(v, gamma, beta, epsilon):
    mean = v.mean(-1, keepdims=True)
    variance = v.var(-1, keepdims=True)
    return gamma * (v - mean) / np.sqrt(variance + epsilon) + beta


def _randomised(layer, x):
    """`layer`, built, with random weights: norm scales and offsets matter."""
    layer(x)
    rng = np.random.RandomState(5)
    layer.set_weights([rng.randn(*w.shape).astype("float32") for w in layer.get_weights()])
    return layer


@pytest.mark.parametrize("epsilon", (1e-3, 0.5))
def test_layer_norm_lstm_is_tfas(epsilon):
    x = sequences()
    layer = _randomised(
        keras_rnnx.LayerNormLSTM(
            UNITS, norm_epsilon=epsilon, return_sequences=True, return_state=True
        ),
        x,
    )
    got = [to_numpy(t) for t in layer(x)]
    w, u, b, kg, kb, rg, rb, sg, sb = layer.get_weights()

    def step(x_t, states):  # TFA's LayerNormLSTMCell.call
        h, c = states
        z = _layer_norm(x_t @ w, kg, kb, epsilon)
        z += _layer_norm(h @ u, rg, rb, epsilon)
        z += b
        z0, z1, z2, z3 = np.split(z, 4, axis=1)
        i, f, o = numpy_sigmoid(z0), numpy_sigmoid(z1), numpy_sigmoid(z3)
        c = _layer_norm(f * c + i * np.tanh(z2), sg, sb, epsilon)
        h = o * np.tanh(c)
        return h, (h, c)

    zeros = np.zeros((BATCH, UNITS))
    outputs, (h, c) = numpy_steps(step, x, (zeros, zeros))
    assert_all_close(got, [outputs, h, c], "LayerNormLSTM", 1e-4, 1e-4)
    names = [w.path.split("/", 2)[-1] for w in layer.weights]
    assert names == [
        "kernel",
        "recurrent_kernel",
        "bias",
        "kernel_norm/gamma",
        "kernel_norm/beta",
        "recurrent_norm/gamma",
        "recurrent_norm/beta",
        "state_norm/gamma",
        "state_norm/beta",
    ]


def test_layer_norm_gru_is_its_equations():
    x = sequences()
    layer = _randomised(keras_rnnx.LayerNormGRU(UNITS, return_sequences=True), x)
    got = to_numpy(layer(x))
    w, u, b, kg, kb, rg, rb = layer.get_weights()

    def step(x_t, h):
        x_z, x_r, x_h = np.split(_layer_norm(x_t @ w, kg, kb, 1e-3) + b[0], 3, axis=1)
        u_z, u_r, u_h = np.split(_layer_norm(h @ u, rg, rb, 1e-3) + b[1], 3, axis=1)
        z, r = numpy_sigmoid(x_z + u_z), numpy_sigmoid(x_r + u_r)
        h = z * h + (1 - z) * np.tanh(x_h + r * u_h)
        return h, h

    outputs, _ = numpy_steps(step, x, np.zeros((BATCH, UNITS)))
    assert_all_close([got], [outputs], "LayerNormGRU", 1e-4, 1e-4)


@pytest.mark.parametrize("layer", ("LayerNormLSTM", "LayerNormGRU"))
@pytest.mark.parametrize("mask_kind", ("none", "holes"))
def test_the_backends_loop_matches_the_reference_loop(layer, mask_kind):
    def make(**kw):
        return getattr(keras_rnnx, layer)(UNITS, return_sequences=True, go_backwards=True, **kw)

    fast, reference = fast_and_reference(make)
    assert_matches_reference(fast, reference, sequences(), **mask_kwargs(mask_kind))


@pytest.mark.parametrize("layer", ("LayerNormLSTM", "LayerNormGRU"))
def test_dropout_applies_in_training_only(layer):
    rnn = getattr(keras_rnnx, layer)(UNITS, dropout=0.5, recurrent_dropout=0.3, seed=1)
    x = sequences()
    inference = to_numpy(rnn(x))
    np.testing.assert_array_equal(inference, to_numpy(rnn(x, training=False)))
    assert not np.allclose(inference, to_numpy(rnn(x, training=True)))


@pytest.mark.parametrize(
    ("make", "match"),
    (
        (lambda: keras_rnnx.LayerNormLSTMCell(3, norm_epsilon=0), "`norm_epsilon`"),
        (lambda: keras_rnnx.LayerNormLSTMCell(3, proj_size=2), "proj_size"),
        (lambda: keras_rnnx.LayerNormGRUCell(3, reset_after=False), "`reset_after=True`"),
        (lambda: keras_rnnx.LayerNormGRU(3, norm_gamma_initializer="nope"), "norm_gamma"),
    ),
)
def test_bad_arguments_name_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()
