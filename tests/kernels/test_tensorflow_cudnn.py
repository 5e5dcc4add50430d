"""TensorFlow's cuDNN kernel (`CudnnRNNV3`) against the reference kernel.

No TensorFlow GPU build can be installed where these run, so `cudnn_rnn` is
replaced by `_cudnn_rnn_on_cpu`: cuDNN's LSTM and GRU equations read from the
flat parameter vector by cuDNN's layout, with cuDNN's sequence-length rules
(zeros past a row's length, states from its last valid step). That checks the
kernel's weight packing and its conversion of any mask to lengths, in a
graph too; on a GPU the real op runs instead.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.oracle import (
    KERNEL_OPTIONS,
    MIXED_TOLERANCE,
    UNITS,
    assert_all_close,
    assert_declined,
    assert_drop_connect_runs,
    assert_matches_reference,
    assert_plugin_cell_declined,
    assert_plugin_cell_runs,
    assert_stack_runs,
    fast_and_reference,
    make_mask,
    mask_kwargs,
    only_on,
    sequences,
    stand_in_off_gpu,
    states_for,
)

pytestmark = only_on("tensorflow", "the CudnnRNNV3 kernel")


def _cudnn_rnn_on_cpu(x, h0, c0, params, lengths, rnn_mode):
    import tensorflow as tf

    gates = 4 if rnn_mode == "lstm" else 3
    features, units, width = x.shape[-1], c0.shape[-1], h0.shape[-1]
    projection = [units * width] if width != units else []  # `_canonical_on_cpu`'s layout
    sizes = [units * features] * gates + [units * width] * gates + projection
    parts = tf.split(params, sizes + [units] * 2 * gates)
    w = [tf.transpose(tf.reshape(p, (units, features))) for p in parts[:gates]]
    r = [tf.transpose(tf.reshape(p, (units, width))) for p in parts[gates : 2 * gates]]
    p = [tf.transpose(tf.reshape(p, (width, units))) for p in parts[2 * gates : len(sizes)]]
    bw, br = parts[len(sizes) : len(sizes) + gates], parts[len(sizes) + gates :]
    h, c, ys = h0, c0, []
    for t in range(x.shape[1]):
        xt = x[:, t]
        if rnn_mode == "lstm":
            i, f, g, o = (xt @ w[k] + bw[k] + h @ r[k] + br[k] for k in range(4))
            new_c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            new_h = tf.sigmoid(o) * tf.tanh(new_c)
            new_h = new_h @ p[0] if p else new_h
        else:  # cuDNN's gate order: r, z, n
            rg, z = (tf.sigmoid(xt @ w[k] + bw[k] + h @ r[k] + br[k]) for k in range(2))
            n = tf.tanh(xt @ w[2] + bw[2] + rg * (h @ r[2] + br[2]))
            new_h, new_c = (1 - z) * n + z * h, c
        valid = (t < lengths)[:, None]
        h, c = tf.where(valid, new_h, h), tf.where(valid, new_c, c)
        ys.append(tf.where(valid, new_h, 0.0))
    return tf.stack(ys, axis=1), h, c


def _params_from_canonical_on_cpu(weights, biases, num_units, input_size, num_proj):
    """The canonical weights raveled in order: cuDNN's own layout of a
    projection is not documented, so this stands in for the GPU's."""
    import tensorflow as tf

    assert len(weights) == 9 and len(biases) == 8
    assert weights[0].shape == (num_units, input_size) and weights[8].shape == (num_proj, num_units)
    return tf.concat([tf.reshape(t, [-1]) for t in weights + biases], axis=0)


def _canonical_from_params_on_cpu(params, num_units, input_size, num_proj):
    import tensorflow as tf

    shapes = [(num_units, input_size)] * 4 + [(num_units, num_proj)] * 4
    shapes += [(num_proj, num_units)] + [(num_units,)] * 8
    parts = tf.split(params, [int(np.prod(s)) for s in shapes])
    tensors = [tf.reshape(t, s) for t, s in zip(parts, shapes)]
    return tensors[:9], tensors[9:]


@pytest.fixture
def cudnn(monkeypatch):
    """The kernels' module, with CudnnRNNV3 (and cuDNN's conversion of a
    projected LSTM's weights) replaced by their equations off the GPU."""
    from keras_rnnx.kernels.backends import tensorflow as kernel

    if not kernel.on_gpu():
        monkeypatch.setattr(kernel, "params_from_canonical", _params_from_canonical_on_cpu)
        monkeypatch.setattr(kernel, "canonical_from_params", _canonical_from_params_on_cpu)
    return stand_in_off_gpu(monkeypatch, kernel, "cudnn_rnn", _cudnn_rnn_on_cpu)


OPTIONS = KERNEL_OPTIONS
LAYERS = {"LSTM": {}, "GRU": {}, "LSTM-proj": {"proj_size": 2}}
CASES = [
    (layer, case, mask)
    for layer in LAYERS
    for case in OPTIONS
    for mask in ("none", "right", "left", "empty_row", "holes")
]


def _pair(layer, **options):
    cls = getattr(keras_rnnx, layer.split("-")[0])
    return fast_and_reference(lambda **kw: cls(UNITS, **LAYERS[layer], **kw), **options)


@pytest.mark.parametrize(("layer", "case", "mask_kind"), CASES, ids=["-".join(c) for c in CASES])
def test_cudnn_matches_reference(cudnn, layer, case, mask_kind):
    fused, reference = _pair(layer, **OPTIONS[case])
    assert_matches_reference(fused, reference, sequences(), **mask_kwargs(mask_kind))
    assert keras_rnnx.explain(fused).kernel_name == "tf-cudnn"


@pytest.fixture
def a_gpu_for_keras(monkeypatch):
    """TensorFlow reporting a GPU to Keras, which decides `jit_compile="auto"`
    (and its own layers' cuDNN) by the devices it lists."""
    import tensorflow as tf

    physical, logical = tf.config.list_physical_devices, tf.config.list_logical_devices
    gpu = tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")
    monkeypatch.setattr(
        tf.config,
        "list_physical_devices",
        lambda device_type=None: (
            physical(device_type) + ([gpu] if device_type in (None, "GPU") else [])
        ),
    )
    monkeypatch.setattr(
        tf.config,
        "list_logical_devices",
        lambda device_type=None: (
            logical(device_type)
            + ([tf.config.LogicalDevice("/device:GPU:0", "GPU")] if device_type == "GPU" else [])
        ),
    )


@pytest.mark.parametrize(
    ("layer", "options"),
    [
        ("LSTM", {}),
        ("GRU", {}),
        ("LSTM", {"use_cudnn": False}),
        ("GRU", {"reset_after": False}),
        ("LSTM", {"activation": "relu"}),
        ("SimpleRNN", {}),
    ],
)
def test_jit_compile_auto_is_decided_before_the_layer_runs(cudnn, a_gpu_for_keras, layer, options):
    # Keras resolves jit_compile="auto" in compile(), before a functional
    # model's recurrent layer has run; XLA around cuDNN would fail.
    def compiled(module):
        inputs = keras.Input((5, 3))
        recurrent = getattr(module, layer)(UNITS, **options)
        model = keras.Model(inputs, recurrent(inputs))
        model.compile(optimizer="sgd", loss="mse", jit_compile="auto")
        return model, recurrent

    ours, recurrent = compiled(keras_rnnx)
    theirs, _ = compiled(keras.layers)
    assert recurrent.selection is None  # it has not run
    assert ours.jit_compile == theirs.jit_compile
    assert ours.jit_compile == (layer == "SimpleRNN" or bool(options))  # XLA unless cuDNN


def test_a_layer_on_cudnn_opts_out_of_xla(cudnn):
    fused, reference = _pair("LSTM")
    assert keras_rnnx.explain(fused).kernel_name == "tf-cudnn"
    assert fused.supports_jit is False  # Keras then compiles the model without XLA
    assert reference.supports_jit is True


@pytest.mark.parametrize("layer", ("LSTM", "GRU"))
def test_cudnn_with_initial_state_and_inference_dropout(cudnn, layer):
    fused, reference = _pair(layer, return_state=True, dropout=0.5)
    kwargs = {"initial_state": states_for(reference), "training": False}
    assert_matches_reference(fused, reference, sequences(), **mask_kwargs("left"), **kwargs)


@pytest.mark.parametrize("mask_kind", ("right", "left", "holes"))
def test_cudnn_in_a_graph_runs_any_mask(cudnn, mask_kind):
    import tensorflow as tf

    fused, reference = _pair("GRU", return_sequences=True, return_state=True)
    graph = tf.function(
        lambda x, m: fused(x, mask=m),
        # Time is known: the CPU stand-in for cuDNN unrolls over it.
        input_signature=[tf.TensorSpec((None, 6, 5)), tf.TensorSpec((None, 6), tf.bool)],
    )
    x, mask = sequences(), make_mask(mask_kind)
    got = [t.numpy() for t in graph(x, mask)]
    want = [t.numpy() for t in reference(x, mask=mask)]
    assert_all_close(got, want, f"tf.function, {mask_kind} mask")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: keras_rnnx.SimpleRNN(UNITS), "no fused kernel for SimpleRNNCell"),
        (lambda: keras_rnnx.GRU(UNITS, reset_after=False), "reset_after=False"),
        (lambda: keras_rnnx.LSTM(UNITS, recurrent_dropout=0.2), None),
    ],
)
def test_declines_with_a_reason(cudnn, make, reason):
    layer = make()
    layer(sequences(), training=True)
    reason = reason or "recurrent_dropout > 0 in training"
    assert_declined(layer, "tf-cudnn", reason, ran="tf-while")


def test_without_a_gpu_it_says_so():
    from keras_rnnx.kernels.backends import tensorflow as kernel

    if kernel.on_gpu():
        pytest.skip("this machine has a GPU")
    layer = keras_rnnx.LSTM(UNITS)
    layer(sequences())
    assert ("tf-cudnn", "no GPU (CudnnRNNV3 runs on a CUDA device only)") in (
        keras_rnnx.explain(layer).passed_over
    )


@pytest.mark.parametrize("layer", ("LSTM", "GRU"))
def test_a_plugin_cell_with_a_fused_spec_runs_cudnn(cudnn, layer):
    assert_plugin_cell_runs(layer, "tf-cudnn", "left")


def test_a_simple_rnn_spec_is_not_run_by_cudnn_here(cudnn):
    assert_plugin_cell_declined("SimpleRNN", "tf-cudnn", "tf-while")


@pytest.mark.parametrize("policy", MIXED_TOLERANCE)
@pytest.mark.parametrize("layer", LAYERS)
def test_mixed_precision_runs_cudnn(cudnn, layer, policy):
    # float16 runs as CudnnRNNV3's half type; bfloat16, which it lacks, in float32.
    fused, reference = _pair(layer, dtype=policy, return_sequences=True, return_state=True)
    x, tolerance = sequences(), MIXED_TOLERANCE[policy]
    assert_matches_reference(fused, reference, x, tolerance, **mask_kwargs("left"))
    assert keras_rnnx.explain(fused).kernel_name == "tf-cudnn"


@pytest.mark.parametrize("mask_kind", ("none", "left", "holes"))
@pytest.mark.parametrize("stack", ("GRU-LSTM", "LSTM-GRU", "LSTMP-LSTMP"))
def test_stacked_cells_run_cudnn_layer_by_layer(cudnn, stack, mask_kind):
    assert_stack_runs(stack, "tf-cudnn", mask_kind, **KERNEL_OPTIONS["backwards"])


@pytest.mark.parametrize("layer", LAYERS)
def test_recurrent_kernel_dropout_runs_cudnn_in_training(cudnn, layer):
    name, *_ = layer.split("-")
    assert_drop_connect_runs(name, "tf-cudnn", "left", **LAYERS[layer])
