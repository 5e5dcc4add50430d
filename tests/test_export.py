"""`model.export` with keras-rnnx layers, each artifact run in its own runtime
against the Keras model, on inputs of another batch size and length than the
traced ones.

So far: ONNX on torch (Keras traces it with TorchScript's exporter when the
batch and time are dynamic), masked and unmasked, the sequence or the last
output; a masked model lays its steps out without a sort there. Not yet: a
layer on a loop kernel (a custom cell; a projected LSTM, as ONNX's LSTM op
has no projection) for another length than the traced one, and the other
backends' exporters.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from backend_utils import BACKEND, to_numpy
from oracle import assert_all_close

import keras_rnnx

pytestmark = pytest.mark.skipif(
    BACKEND != "torch", reason="the ONNX export tests cover torch's exporter so far"
)
ort = pytest.importorskip("onnxruntime", reason="onnxruntime runs the exported models")

LAYERS = {
    "LSTM": lambda **kw: keras_rnnx.LSTM(5, **kw),
    "GRU": lambda **kw: keras_rnnx.GRU(5, **kw),
    "SimpleRNN": lambda **kw: keras_rnnx.SimpleRNN(5, **kw),
    "stacked": lambda **kw: keras_rnnx.RNN([keras_rnnx.GRUCell(4), keras_rnnx.LSTMCell(5)], **kw),
}
CASES = [
    (layer, masked, sequences)
    for layer in LAYERS
    for masked in (False, True)
    for sequences in (False, True)
]


def _inputs(batch, steps, seed):
    """Rows right-padded, left-padded and with a hole (zeros, for `Masking`)."""
    x = np.random.default_rng(seed).normal(size=(batch, steps, 4)).astype("float32")
    if steps > 3:
        x[0, steps // 2 :] = 0.0
        x[1, : steps // 3] = 0.0
        x[-1, 1:3] = 0.0
    return x


@pytest.mark.parametrize(("layer", "masked", "sequences"), CASES)
def test_onnx_export_runs_in_onnxruntime(tmp_path, layer, masked, sequences):
    inputs = keras.Input((None, 4))
    x = keras.layers.Masking(0.0)(inputs) if masked else inputs
    recurrent = LAYERS[layer](return_sequences=sequences)
    model = keras.Model(inputs, recurrent(x))
    model(_inputs(3, 6, seed=0))
    path = str(tmp_path / "model.onnx")
    model.export(path, format="onnx", verbose=False)
    assert keras_rnnx.explain(recurrent).kernel == "torch-fused"
    session = ort.InferenceSession(path)
    name = session.get_inputs()[0].name
    for batch, steps, seed in ((3, 6, 0), (5, 9, 1)):
        x = _inputs(batch, steps, seed)
        got = session.run(None, {name: x})[0]
        assert_all_close([got], [to_numpy(model(x))], f"batch {batch}, {steps} steps")


def test_a_loop_kernel_exported_for_another_length_fails_loudly(tmp_path):
    # Keras traces with length-1 samples; a loop's steps are traced as a split
    # into that many, so another length is an error in onnxruntime, never a
    # silently wrong result (the scan's indexed reads were).
    from custom_cells import MinimalCell

    inputs = keras.Input((None, 4))
    model = keras.Model(inputs, keras_rnnx.RNN(MinimalCell(5))(inputs))
    model(_inputs(3, 6, seed=0))
    path = str(tmp_path / "loop.onnx")
    model.export(path, format="onnx", verbose=False)
    session = ort.InferenceSession(path)
    name = session.get_inputs()[0].name
    for steps in (1, 6):
        x = _inputs(3, steps, seed=steps)
        try:
            got = session.run(None, {name: x})[0]
        except ort.capi.onnxruntime_pybind11_state.Fail:
            assert steps != 1, "the traced length must run"
            continue
        assert_all_close([got], [to_numpy(model(x))], f"{steps} steps")
