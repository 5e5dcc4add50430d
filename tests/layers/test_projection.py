"""`LSTM(proj_size=...)`: torch's projected LSTM (LSTMP), on every backend,
against `torch.nn.LSTM(proj_size=...)` given the same weights (torch is
installed in every backend's test session)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import coefficients_for, outputs_and_gradients, to_numpy
from tests.helpers.oracle import (
    UNITS,
    assert_all_close,
    assert_matches_reference,
    fast_and_reference,
    sequences,
    states_for,
)

torch = pytest.importorskip("torch", reason="torch.nn.LSTM is the oracle")

PROJ = 2


def _torch_lstmp(x, kernel, recurrent, bias, projection, h, c):
    """torch.nn.LSTM(proj_size) with Keras's weights, from states `h`, `c`."""
    units, proj = projection.shape
    lstm = torch.nn.LSTM(x.shape[-1], units, proj_size=proj, batch_first=True)
    with torch.no_grad():
        for name, value in (
            ("weight_ih_l0", kernel.T),
            ("weight_hh_l0", recurrent.T),
            ("bias_ih_l0", bias),
            ("bias_hh_l0", np.zeros_like(bias)),
            ("weight_hr_l0", projection.T),
        ):
            getattr(lstm, name).copy_(torch.tensor(value))
    y, (h, c) = lstm(torch.tensor(x), (torch.tensor(h)[None], torch.tensor(c)[None]))
    return [t.detach().numpy() for t in (y, h[0], c[0])]


def _projected(**options):
    return keras_rnnx.LSTM(
        UNITS + 2, proj_size=PROJ, return_sequences=True, return_state=True, **options
    )


@pytest.mark.parametrize("use_cudnn", ("auto", False))
def test_matches_torch_lstm_with_proj_size(use_cudnn):
    layer = _projected(use_cudnn=use_cudnn)
    x = sequences()
    layer(x)
    h0, c0 = states_for(layer)
    assert h0.shape[-1] == PROJ and c0.shape[-1] == UNITS + 2
    got = [to_numpy(t) for t in layer(x, initial_state=[h0, c0])]
    weights = [to_numpy(w) for w in layer.weights]
    want = _torch_lstmp(x, *weights, h0, c0)
    assert_all_close(got, want, "outputs, h, c")


@pytest.mark.parametrize("use_cudnn", ("auto", False))
def test_gradients_match_torch_lstm(use_cudnn):
    layer = keras_rnnx.LSTM(UNITS + 2, proj_size=PROJ, return_sequences=True, use_cudnn=use_cudnn)
    x = sequences()
    coefficients = coefficients_for(layer(x))
    _, grads = outputs_and_gradients(layer, x, coefficients)
    kernel, recurrent, bias, projection = (to_numpy(w) for w in layer.weights)
    lstm = torch.nn.LSTM(x.shape[-1], UNITS + 2, proj_size=PROJ, batch_first=True)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(kernel.T))
        lstm.weight_hh_l0.copy_(torch.tensor(recurrent.T))
        lstm.bias_ih_l0.copy_(torch.tensor(bias))
        lstm.bias_hh_l0.zero_()
        lstm.weight_hr_l0.copy_(torch.tensor(projection.T))
    inputs = torch.tensor(x, requires_grad=True)
    (torch.tensor(coefficients[0]) * lstm(inputs)[0]).sum().backward()
    want = [
        inputs.grad,
        lstm.weight_ih_l0.grad.T,
        lstm.weight_hh_l0.grad.T,
        lstm.bias_ih_l0.grad,
        lstm.weight_hr_l0.grad.T,
    ]
    assert_all_close(grads, [t.numpy() for t in want], "gradients")


def test_bidirectional_projections_match_the_reference_loop():
    make = lambda **kw: keras_rnnx.Bidirectional(_projected(**kw))  # noqa: E731
    fused, reference = fast_and_reference(make)
    assert_matches_reference(fused, reference, sequences())
    assert tuple(fused(sequences())[0].shape)[-1] == 2 * PROJ


def test_states_weights_and_shapes():
    cell = keras_rnnx.LSTMCell(6, proj_size=PROJ)
    assert cell.state_size == [PROJ, 6] and cell.output_size == PROJ
    layer = keras_rnnx.RNN(cell, return_sequences=True)
    layer(sequences())
    assert [w.path.split("/")[-1] for w in layer.weights] == [
        "kernel",
        "recurrent_kernel",
        "bias",
        "projection_kernel",
    ]
    assert tuple(cell.recurrent_kernel.shape) == (PROJ, 24)
    assert tuple(cell.projection_kernel.shape) == (6, PROJ)
    assert layer.compute_output_shape((None, 6, 5)) == (None, 6, PROJ)
    # Keras's own RNN layer runs the cell too.
    keras_layer = keras.layers.RNN(keras_rnnx.LSTMCell(6, proj_size=PROJ), return_state=True)
    assert [tuple(t.shape) for t in keras_layer(sequences())] == [(4, PROJ)] * 2 + [(4, 6)]


def test_without_proj_size_the_config_is_keras_and_with_it_round_trips(tmp_path):
    plain = keras_rnnx.LSTM(UNITS)
    assert "proj_size" not in plain.get_config()
    assert "proj_size" not in plain.cell.get_config()
    assert plain.proj_size is None
    layer = _projected()
    config = layer.get_config()
    assert config["proj_size"] == PROJ and layer.proj_size == PROJ
    clone = keras_rnnx.LSTM.from_config(json.loads(json.dumps(config)))
    assert clone.proj_size == PROJ
    inputs = keras.Input((None, 5))
    model = keras.Model(inputs, layer(inputs)[0])
    x = sequences()
    path = str(tmp_path / "projected.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert_all_close([to_numpy(loaded(x))], [to_numpy(model(x))], "loaded model")


@pytest.mark.parametrize("proj_size", (0, -1, UNITS, UNITS + 1, 1.5, True, "2"))
def test_a_bad_proj_size_is_named(proj_size):
    with pytest.raises(ValueError, match="`proj_size`"):
        keras_rnnx.LSTM(UNITS, proj_size=proj_size)


def test_fit_trains_a_projected_lstm():
    model = keras.Sequential(
        [keras.Input((6, 5)), keras_rnnx.LSTM(8, proj_size=3), keras.layers.Dense(1)]
    )
    model.compile("adam", "mse")
    rng = np.random.RandomState(0)
    x, y = rng.randn(16, 6, 5).astype("float32"), rng.randn(16, 1).astype("float32")
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]
