"""Promises beyond one call: concurrent `predict`, very long sequences, and
`torch.export` (strict and not, masked), each equal to the plain run."""

from __future__ import annotations

import concurrent.futures

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import BACKEND, coefficients_for, outputs_and_gradients, to_numpy
from tests.helpers.custom_cells import MinimalCell
from tests.helpers.oracle import FEATURES, make_mask, sequences


@pytest.mark.skipif(
    BACKEND == "jax",
    reason="Keras's JAX trainer cannot predict from other threads (keras.layers neither: "
    "TypeError in Variable initialization, Keras 3.15.1)",
)
def test_predict_from_four_threads_at_once():
    inputs = keras.Input((None, FEATURES))
    x = keras.layers.Masking(0.0)(inputs)
    x = keras_rnnx.Bidirectional(keras_rnnx.LSTM(4, return_sequences=True))(x)
    model = keras.Model(inputs, keras_rnnx.GRU(3)(x))
    batches = [sequences(seed=i, shape=(8, 6 + i, FEATURES)) for i in range(4)]
    for batch in batches:
        batch[::3, -2:] = 0.0  # some rows padded
    expected = [model.predict(b, verbose=0) for b in batches]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda b: model.predict(b, verbose=0), batches * 2))
    for g, e in zip(got, expected * 2):
        np.testing.assert_allclose(g, e, atol=1e-6)


@pytest.mark.parametrize(
    "make",
    (lambda: keras_rnnx.LSTM(2, return_state=True), lambda: keras_rnnx.RNN(MinimalCell(2))),
    ids=("fastest", "custom_cell"),
)
def test_five_thousand_steps(make):
    x = sequences(shape=(2, 5000, 2)) * 0.1
    layer = make()
    outputs, gradients = outputs_and_gradients(layer, x, coefficients_for(layer(x)))
    assert all(np.isfinite(o).all() for o in outputs)
    assert all(np.isfinite(g).all() for g in gradients)


@pytest.mark.skipif(BACKEND != "torch", reason="torch.export exports torch modules")
@pytest.mark.parametrize("strict", (True, False), ids=("strict", "non_strict"))
@pytest.mark.parametrize("masked", (False, True), ids=("unmasked", "masked"))
def test_torch_export(strict, masked):
    import torch

    layer = keras_rnnx.Bidirectional(keras_rnnx.LSTM(3, return_sequences=True))
    x = torch.tensor(sequences())
    kwargs = {"mask": torch.tensor(make_mask("right"))} if masked else {}
    layer(x, **kwargs)
    exported = torch.export.export(layer, (x,), kwargs=kwargs, strict=strict).module()
    # Other masks than the traced one, and other values.
    for kind in ("right", "left", "holes", "empty_row") if masked else ("none",):
        x = torch.tensor(sequences(seed=9))
        kwargs = {"mask": torch.tensor(make_mask(kind))} if masked else {}
        np.testing.assert_allclose(
            to_numpy(exported(x, **kwargs)), to_numpy(layer(x, **kwargs)), atol=1e-5, err_msg=kind
        )
