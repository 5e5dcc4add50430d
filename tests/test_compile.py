"""`model.compile(jit_compile=True)`: XLA on TensorFlow and JAX, torch.compile
on torch. Every kind of recurrent layer, masked and unmasked, trains and
predicts as it does uncompiled, and `explain` names the kernel the compiled
graph runs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import BACKEND, on_gpu
from tests.helpers.custom_cells import MinimalCell
from tests.helpers.oracle import FEATURES

# Each built-in cell once (GRU and SimpleRNN in the stack, which runs each
# cell's fused kernel in turn), each kind of layer once: compiling is most of
# this module's time on torch (inductor builds every kernel of the graph).
LAYERS = {
    "lstm": lambda name: keras_rnnx.LSTM(4, name=name),
    "bidirectional": lambda name: keras_rnnx.Bidirectional(keras_rnnx.LSTM(3), name=name),
    "stacked": lambda name: keras_rnnx.RNN(
        [keras_rnnx.GRUCell(4), keras_rnnx.SimpleRNNCell(3)], name=name
    ),
    "custom": lambda name: keras_rnnx.RNN(MinimalCell(4), name=name),
}


# Few steps: torch.compile traces each step of a loop it cannot fuse, which
# is most of this module's time on torch.
STEPS = 3


def _data(masked):
    """12 rows in batches of 4: unmasked, or right-padded, left-padded and
    with holes (zero steps, which `Masking` masks)."""
    rng = np.random.RandomState(0)
    x = rng.randn(12, STEPS, FEATURES).astype("float32")
    y = {name: rng.randn(12, 1).astype("float32") for name in LAYERS}
    if masked:
        lengths = rng.randint(1, STEPS, size=12)
        steps = np.arange(STEPS)[None, :]
        valid = np.concatenate(
            [
                steps < lengths[:4, None],  # right-padded
                steps >= STEPS - lengths[4:8, None],  # left-padded
                rng.rand(4, STEPS) > 0.4,  # holes
            ]
        )
        x = np.where(valid[..., None], x, 0.0).astype("float32")
    return x, y


def _model(masked):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((STEPS, FEATURES))
    x = keras.layers.Masking(0.0)(inputs) if masked else inputs
    outputs = {
        name: keras.layers.Dense(1, name=name)(make(f"{name}_rnn")(x))
        for name, make in LAYERS.items()
    }
    return keras.Model(inputs, outputs)


def _expected_kernel(name, masked):
    """The kernel the compiled graph runs, on this backend and device."""
    builtin = name in ("lstm", "bidirectional")
    if BACKEND == "torch":
        if name == "bidirectional" and not masked:
            return "torch-fused-bidirectional"  # both directions in one call
        return "torch-fused" if builtin or name == "stacked" else "reference"
    if BACKEND == "tensorflow":
        return "tf-while"  # XLA: no cuDNN kernel (Keras turns XLA off for that)
    return "jax-cudnn" if on_gpu() and name in ("lstm", "bidirectional") else "reference"


def _kernels(model):
    found = {}
    for name in LAYERS:
        selection = keras_rnnx.explain(model.get_layer(f"{name}_rnn"))
        if isinstance(selection, dict):
            assert selection["forward"].kernel_name == selection["backward"].kernel_name
            selection = selection["forward"]
        found[name] = selection.kernel_name
    return found


def _train_and_predict(masked, jit_compile):
    if BACKEND == "torch":
        import torch

        torch._dynamo.reset()  # each test compiles afresh, within dynamo's limits
    x, y = _data(masked)
    model = _model(masked)
    model.compile(optimizer="sgd", loss={name: "mse" for name in LAYERS}, jit_compile=jit_compile)
    assert model.jit_compile is jit_compile
    history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history
    predictions = model.predict(x, batch_size=4, verbose=0)
    return model, history, predictions


@pytest.mark.parametrize("masked", (False, True), ids=("unmasked", "masked"))
def test_jit_compiled_model_trains_and_predicts_as_uncompiled(masked):
    eager_model, eager_history, eager_predictions = _train_and_predict(masked, False)
    model, history, predictions = _train_and_predict(masked, True)
    for name in LAYERS:
        np.testing.assert_allclose(
            history[f"{name}_loss"], eager_history[f"{name}_loss"], rtol=1e-5, err_msg=name
        )
        np.testing.assert_allclose(
            predictions[name], eager_predictions[name], atol=1e-5, err_msg=name
        )
    for weight, eager_weight in zip(model.weights, eager_model.weights):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(weight),
            keras.ops.convert_to_numpy(eager_weight),
            atol=1e-5,
            err_msg=weight.path,
        )
    assert _kernels(model) == {name: _expected_kernel(name, masked) for name in LAYERS}
