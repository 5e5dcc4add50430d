"""`model.export` with keras-rnnx layers: every format Keras 3.15 offers on
this backend, each artifact run in its own runtime against the Keras model on
inputs of another batch size (and length, where the format keeps it dynamic)
than the traced ones.

The matrix: format × layer kind × masked/unmasked, `return_sequences` on for
one half of the kinds and off for the other, swapped when masked, so each
kind is exported both ways and the matrix stays lean.
"""

from __future__ import annotations

import importlib.util

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import BACKEND, to_numpy
from tests.helpers.custom_cells import MinimalCell
from tests.helpers.oracle import assert_all_close

LAYERS = {
    "LSTM": lambda **kw: keras_rnnx.LSTM(5, **kw),
    "GRU": lambda **kw: keras_rnnx.GRU(5, **kw),
    "SimpleRNN": lambda **kw: keras_rnnx.SimpleRNN(5, **kw),
    "Bidirectional": lambda **kw: keras_rnnx.Bidirectional(keras_rnnx.LSTM(3, **kw)),
    "stacked": lambda **kw: keras_rnnx.RNN([keras_rnnx.GRUCell(4), keras_rnnx.LSTMCell(5)], **kw),
    "custom": lambda **kw: keras_rnnx.RNN(MinimalCell(5), **kw),
}
SEQUENCES_UNMASKED = {"LSTM": True, "GRU": False, "SimpleRNN": True}

# Why Keras itself does not offer a format on a backend here.
NOT_OFFERED = {
    ("tf_saved_model", "torch"): "Keras's torch SavedModel export needs torch_xla, whose last "
    "release (2.9) requires torch 2.9, not the matrix's 2.13",
    ("litert", "jax"): "Keras offers LiteRT export on TensorFlow and torch only",
    ("openvino", "jax"): "Keras's OpenVINO export on JAX fails here for any model (jax2tf's "
    "`XlaCallModule` has no OpenVINO conversion; checked below)",
    ("torch", "tensorflow"): "Keras offers `torch` export on the torch backend only",
    ("torch", "jax"): "Keras offers `torch` export on the torch backend only",
}
# The package each format needs here: its runtime, and on torch LiteRT's converter.
RUNTIMES = {
    "tf_saved_model": "tensorflow",
    "onnx": "onnxruntime",
    "openvino": "openvino",
    "litert": "litert_torch" if BACKEND == "torch" else "tensorflow",
    "torch": "torch",
}
FILENAMES = {
    "onnx": "model.onnx",
    "openvino": "model.xml",
    "litert": "model.tflite",
    "torch": "model.pt2",
}


def _fixed_length(fmt, layer):
    """Whether the artifact keeps only the traced length. torch.export
    decomposes torch's RNN ops (`torch.nn.LSTM`'s too) into one step per time
    step, so a dynamic length is a constraint violation there; torch's
    tracer (Keras's ONNX and OpenVINO exports) records a loop kernel's steps
    (a custom cell's) one by one, so such a model is exported for the length
    of its `input_signature` (see the test below)."""
    return fmt == "torch" or (BACKEND == "torch" and (layer == "custom" or fmt == "litert"))


def _fixed_batch(fmt):
    """Keras's torch LiteRT export takes a static `input_signature` only."""
    return BACKEND == "torch" and fmt == "litert"


def _inputs(batch, steps, seed):
    """Rows right-padded, left-padded and with a hole (zeros, for `Masking`)."""
    x = np.random.default_rng(seed).normal(size=(batch, steps, 4)).astype("float32")
    if steps > 3:
        x[0, steps // 2 :] = 0.0
        x[1, : steps // 3] = 0.0
        x[-1, 1:3] = 0.0
    return x


def _model(fmt, layer, masked):
    sequences = SEQUENCES_UNMASKED.get(layer, False) != masked
    inputs = keras.Input((6 if _fixed_length(fmt, layer) else None, 4))
    x = keras.layers.Masking(0.0)(inputs) if masked else inputs
    recurrent = LAYERS[layer](return_sequences=sequences)
    model = keras.Model(inputs, recurrent(x))
    model(_inputs(3, 6, seed=0))
    return model, recurrent


def _recorded_selections(monkeypatch):
    """The selections the recurrent layers record from now on."""
    recorded, record = [], keras_rnnx.RNN.record_selection

    def recording(layer, selection):
        recorded.append(selection)
        record(layer, selection)

    monkeypatch.setattr(keras_rnnx.RNN, "record_selection", recording)
    return recorded


def _load(fmt, path):
    """A function from a NumPy batch to the artifact's output, in its runtime."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path)
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    if fmt == "openvino":
        import openvino

        # f32: OpenVINO computes in bf16 on CPUs that have it, by default.
        compiled = openvino.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return lambda x: compiled(x)[0]
    if fmt == "tf_saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # the function dies with it
        return lambda x: loaded.serve(x).numpy()
    if fmt == "litert":
        # No Flex delegate: a Flex op is an error here.
        if BACKEND == "tensorflow":
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter
        else:
            from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=path)

        def run(x):
            index = interpreter.get_input_details()[0]["index"]
            interpreter.resize_tensor_input(index, x.shape)
            interpreter.allocate_tensors()
            interpreter.set_tensor(index, x)
            interpreter.invoke()
            return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

        return run
    import torch

    module = torch.export.load(path).module()
    return lambda x: module(torch.from_numpy(x)).detach().numpy()


def _options(fmt):
    if _fixed_batch(fmt):
        return {"input_signature": [keras.InputSpec(shape=(3, 6, 4), dtype="float32")]}
    if fmt != "torch":
        return {}
    import torch

    # Keras's torch export keeps a dimension dynamic only when told to.
    return {"dynamic_shapes": {0: torch.export.Dim("batch", min=1)}}


def _runtime_error(fmt):
    """The error a runtime raises for inputs its model cannot run."""
    if fmt == "onnx":
        import onnxruntime

        return onnxruntime.capi.onnxruntime_pybind11_state.Fail
    return RuntimeError


def _case(fmt, layer, masked):
    marks = []
    reason = NOT_OFFERED.get((fmt, BACKEND))
    if reason:
        marks.append(pytest.mark.skip(reason=reason))
    elif importlib.util.find_spec(RUNTIMES[fmt]) is None:
        marks.append(pytest.mark.skip(reason=f"{RUNTIMES[fmt]} runs {fmt} artifacts"))
    return pytest.param(fmt, layer, masked, marks=marks, id=f"{fmt}-{layer}-{masked}")


@pytest.mark.parametrize(
    ("fmt", "layer", "masked"),
    [_case(fmt, layer, masked) for fmt in RUNTIMES for layer in LAYERS for masked in (False, True)],
)
def test_export_runs_in_its_runtime(tmp_path, monkeypatch, fmt, layer, masked):
    model, recurrent = _model(fmt, layer, masked)
    path = str(tmp_path / FILENAMES.get(fmt, "model"))
    recorded = _recorded_selections(monkeypatch)
    model.export(path, format=fmt, verbose=False, **_options(fmt))
    # Traced for the export (an exporter may also run the model eagerly
    # after, as torch.jit.trace's check does: an ordinary call).
    exports = {s.exporting for s in recorded}
    # litert-torch traces with torch.export, under Dynamo, where no stack walk
    # can tell which Keras export called it: the trace is for a torch export.
    traced_for = "torch" if (fmt, BACKEND) == ("litert", "torch") else fmt
    assert traced_for in exports and exports <= {traced_for, None}, exports
    run = _load(fmt, path)
    if _fixed_batch(fmt):
        shapes = ((3, 6, 0), (3, 6, 1))
    elif _fixed_length(fmt, layer):
        shapes = ((3, 6, 0), (5, 6, 1))
    else:
        shapes = ((3, 6, 0), (5, 9, 1))
    for batch, steps, seed in shapes:
        x = _inputs(batch, steps, seed)
        assert_all_close([run(x)], [to_numpy(model(x))], f"{fmt}: batch {batch}, {steps} steps")


@pytest.mark.skipif(BACKEND != "torch", reason="torch's tracer records a loop's steps one by one")
@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_a_loop_kernel_traced_for_one_length_rejects_another(tmp_path, fmt):
    # Keras traces with length-1 samples; a loop's steps are traced as a split
    # into that many, so another length is an error in the runtime, never a
    # silently wrong result (a scan's indexed reads were, as keras.layers'
    # are on torch).
    pytest.importorskip(RUNTIMES[fmt], reason=f"{RUNTIMES[fmt]} runs {fmt} artifacts")
    inputs = keras.Input((None, 4))
    model = keras.Model(inputs, keras_rnnx.RNN(MinimalCell(5))(inputs))
    model(_inputs(3, 6, seed=0))
    path = str(tmp_path / FILENAMES[fmt])
    model.export(path, format=fmt, verbose=False)
    run = _load(fmt, path)
    x = _inputs(3, 1, seed=1)
    assert_all_close([run(x)], [to_numpy(model(x))], "the traced length")
    with pytest.raises(_runtime_error(fmt), match="(?i)split|squeeze"):
        run(_inputs(3, 6, seed=2))


@pytest.mark.skipif(BACKEND != "jax", reason="the check behind a JAX skip above")
def test_keras_cannot_export_openvino_on_jax_even_for_a_dense_model(tmp_path):
    frontend = pytest.importorskip("openvino.frontend", reason="openvino converts the model")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    model(np.zeros((2, 4), "float32"))
    with pytest.raises(frontend.OpConversionFailure, match="XlaCallModule"):
        model.export(str(tmp_path / "model.xml"), format="openvino", verbose=False)


@pytest.mark.skipif(BACKEND != "torch", reason="torch's fused kernel exports as ONNX's RNN ops")
@pytest.mark.parametrize(("layer", "op"), [("LSTM", "LSTM"), ("GRU", "GRU"), ("SimpleRNN", "RNN")])
@pytest.mark.parametrize("masked", [False, True])
def test_onnx_from_torch_uses_native_rnn_ops_with_sequence_lens(tmp_path, layer, op, masked):
    onnx = pytest.importorskip("onnx", reason="onnx reads the exported graph")
    model, _ = _model("onnx", layer, masked)
    path = str(tmp_path / "model.onnx")
    model.export(path, format="onnx", verbose=False)
    nodes = [n for n in onnx.load(path).graph.node if n.op_type in ("LSTM", "GRU", "RNN")]
    assert [n.op_type for n in nodes] == [op]
    # ONNX's fifth input: the lengths a right-padded mask leaves each row.
    sequence_lens = nodes[0].input[4] if len(nodes[0].input) > 4 else ""
    assert bool(sequence_lens) == masked


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="runs ONNX models")
def test_a_streaming_twin_exports_and_streams_in_onnxruntime(tmp_path):
    import onnxruntime

    inputs = keras.Input((None, 4))
    x = keras_rnnx.GRU(3, return_sequences=True)(inputs)
    model = keras.Model(inputs, keras_rnnx.LSTM(5, return_sequences=True)(x))
    twin = keras_rnnx.streaming(model)
    states = [np.zeros((2, *s.shape[1:]), "float32") for s in twin.inputs[1:]]
    # Keras exports a model to ONNX once it has been called, any model.
    twin([keras.ops.convert_to_tensor(a) for a in (_inputs(2, 3, seed=0), *states)])
    path = str(tmp_path / "twin.onnx")
    twin.export(path, format="onnx", verbose=False)
    session = onnxruntime.InferenceSession(path)
    names = [i.name for i in session.get_inputs()]
    x = _inputs(2, 7, seed=1)
    outputs = []
    for start, end in ((0, 1), (1, 4), (4, 7)):
        y, *states = session.run(None, dict(zip(names, [x[:, start:end], *states])))
        outputs.append(y)
    assert_all_close([np.concatenate(outputs, axis=1)], [to_numpy(model(x))], "chunk by chunk")


@pytest.mark.skipif(BACKEND == "torch", reason="torch's fused op exports as ATen's")
def test_a_cuda_only_kernel_declines_an_export():
    # CudnnRNNV3 and JAX's cuDNN call convert to no format, and an artifact may
    # be served on a CPU: an export on a GPU machine runs the loop instead.
    layer = keras_rnnx.LSTM(3)
    with keras_rnnx.export_scope("onnx"):
        call = layer.prepare_call(_inputs(2, 4, seed=0))
    cudnn = next(k for k in keras_rnnx.registered_kernels() if k.name.endswith("-cudnn"))
    reason = cudnn.why_not(call)
    assert reason.startswith("traced for export (onnx)"), reason


@pytest.mark.skipif(BACKEND != "torch", reason="the chunkwise form exports from torch as matmuls")
@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="runs ONNX models")
@pytest.mark.parametrize("layer", ["GLA", "mLSTM", "Mamba2", "GatedDeltaNet"])
def test_chunkwise_layers_export_to_onnx_with_no_loop(tmp_path, monkeypatch, layer):
    import onnx
    import onnxruntime

    make = {
        "GLA": lambda: keras_rnnx.GLA(2, 3, return_sequences=True),
        "mLSTM": lambda: keras_rnnx.mLSTM(2, 3, chunk_size=4),
        "Mamba2": lambda: keras_rnnx.Mamba2(2, 3, state_dim=4, return_sequences=True),
        "GatedDeltaNet": lambda: keras_rnnx.GatedDeltaNet(2, 3, chunk_size=4),
    }[layer]
    inputs = keras.Input((9, 4))  # the chunks are laid out for the traced length
    model = keras.Model(inputs, make()(inputs))
    model(_inputs(3, 9, 0))
    path = str(tmp_path / "model.onnx")
    recorded = _recorded_selections(monkeypatch)
    model.export(path, format="onnx", verbose=False)
    assert {s.kernel_name for s in recorded if s.exporting == "onnx"} == {"chunkwise"}
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert not ops & {"Loop", "Scan"}, ops
    session = onnxruntime.InferenceSession(path)
    name = session.get_inputs()[0].name
    for batch in (3, 5):
        x = _inputs(batch, 9, batch)
        got = session.run(None, {name: x})[0]
        assert_all_close([got], [to_numpy(model(x))], f"{layer}: batch {batch}", 1e-4, 1e-4)
    # Exported for its length: another is an error, never a wrong result.
    errors = onnxruntime.capi.onnxruntime_pybind11_state
    with pytest.raises((errors.Fail, errors.InvalidArgument), match="(?i)split|dimensions"):
        session.run(None, {name: _inputs(3, 16, 0)})
