"""What a recurrent call learns from its surroundings (`keras_rnnx.context`):
read once per call, the export looked for only while a trace is recorded."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from keras_rnnx import context
from tests.helpers.backend_utils import BACKEND
from tests.helpers.oracle import sequences


def _traced(function, x):
    """`function(x)` traced into a graph on the current backend."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(function)(x)
    if BACKEND == "jax":
        import jax

        return jax.jit(function)(x)
    import torch

    return torch.jit.trace(function, keras.ops.convert_to_tensor(x), check_trace=False)(
        keras.ops.convert_to_tensor(x)
    )


def test_an_eager_call_never_walks_the_stack(monkeypatch):
    walks = []
    monkeypatch.setattr(context, "_keras_export_on_stack", lambda: walks.append(1))
    layer = keras_rnnx.GRU(3)
    layer(sequences())
    assert walks == [] and keras_rnnx.explain(layer).exporting is None
    _traced(layer, sequences())
    assert len(walks) == 1  # once for the trace


def test_a_bidirectional_reads_one_context_for_both_directions(monkeypatch):
    reads, read = [], context.read
    monkeypatch.setattr(context, "read", lambda t=None: reads.append(1) or read(t))
    keras_rnnx.Bidirectional(keras_rnnx.LSTM(3))(sequences())
    assert len(reads) == 1


def test_an_export_scope_names_the_export_for_any_call():
    layer = keras_rnnx.LSTM(3)
    with keras_rnnx.export_scope("openvino"):
        layer(sequences())
        assert context.read().exporting == "openvino"
    assert keras_rnnx.explain(layer).exporting == "openvino"
    assert context.read().exporting is None
    layer(sequences())
    assert keras_rnnx.explain(layer).exporting is None


def test_an_unknown_export_format_names_the_argument():
    with pytest.raises(ValueError, match="`format`.*Received: format='tflite'"):
        with keras_rnnx.export_scope("tflite"):
            pass


def test_a_stream_feeds_states_in_and_takes_final_states_out():
    layer = keras_rnnx.GRU(3, return_state=True)
    x = sequences()
    _, whole = layer(x)
    first, second = x[:, :3], x[:, 3:]
    _, h = layer(first)
    with context.streaming_states({id(layer): [h]}) as stream:
        _, h2 = layer(second)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(h2), keras.ops.convert_to_numpy(whole), atol=1e-5
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(stream.final_states[id(layer)][0]),
        keras.ops.convert_to_numpy(whole),
        atol=1e-5,
    )
    with context.streaming_states({id(layer): [h]}):
        with pytest.raises(ValueError, match="initial_state.*cannot take both"):
            layer(second, initial_state=[h])


def test_a_call_context_is_immutable():
    import dataclasses

    call_context = context.read(sequences())
    with pytest.raises(dataclasses.FrozenInstanceError):
        call_context.exporting = "onnx"  # type: ignore[misc]


def test_the_trace_facts_reach_the_call():
    # Kernels and their vendor functions read them there (`RecurrentCall`).
    layer = keras_rnnx.GRU(3)
    eager = layer.prepare_call(sequences())
    assert (eager.traced, eager.compiling, eager.jit_tracing) == (False, False, False)
    calls = []

    def call_and_keep_the_call(x):
        calls.append(layer.prepare_call(x))
        return layer(x)

    _traced(call_and_keep_the_call, sequences())
    assert calls and calls[0].traced
    assert calls[0].jit_tracing == (BACKEND == "torch")
