"""Where `keras.layers` raises for an input, keras-rnnx raises with Keras's
words (its own detail may follow), so a user's test that matches Keras's
message passes on the twin. Each case is checked against Keras itself too."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

from tests.helpers.backend_utils import KERAS_VERSION
from tests.helpers.oracle import sequences


def _stateful_model(mod, batch_size):
    return keras.Sequential(
        [keras.Input((5, 3), batch_size=batch_size), mod.LSTM(2, stateful=True)]
    )


def _stateful_batch_change(mod):
    model = _stateful_model(mod, batch_size=2)
    model(np.zeros((2, 5, 3), "float32"))
    model(np.zeros((1, 5, 3), "float32"))


def _unroll_unknown_steps(mod):
    import tensorflow as tf

    layer = mod.LSTM(2, unroll=True)
    layer(sequences())
    tf.function(layer, input_signature=[tf.TensorSpec((None, None, sequences().shape[-1]))])(
        sequences()
    )


NOT_LAYER = "not a layer"

# (case, call on a module: keras.layers or keras_rnnx, the words Keras raises with)
CASES = [
    *(
        (
            f"{name}_units",
            lambda mod, name=name: getattr(mod, name)(0),
            "Received an invalid value for argument `units`, expected a positive integer, got 0",
        )
        for name in ("SimpleRNN", "GRU", "LSTM", "SimpleRNNCell", "GRUCell", "LSTMCell")
    ),
    *(
        (
            f"ConvLSTM{rank}D_strides_and_dilation",
            lambda mod, rank=rank: getattr(mod, f"ConvLSTM{rank}D")(
                filters=1, kernel_size=1, strides=2, padding="same", dilation_rate=3
            ),
            "Specifying `strides > 1` is not compatible with `dilation_rate > 1`. "
            "Please provide `strides=1` or `dilation_rate=1`.",
        )
        for rank in (1, 2, 3)
    ),
    *(
        (
            f"{name}_use_cudnn",
            lambda mod, name=name: getattr(mod, name)(2, use_cudnn="yes"),
            "Invalid valid received for argument `use_cudnn`. Expected one of "
            "{'auto', True, False}.",
        )
        for name in ("GRU", "LSTM")
    ),
    (
        "RNN_cell_without_call",
        lambda mod: mod.RNN(object()),
        "Argument `cell` should have a `call` method.",
    ),
    (
        "RNN_cell_without_state_size",
        lambda mod: mod.RNN(keras.layers.Dense(3)),
        "The RNN cell should have a `state_size` attribute (single integer or list of "
        "integers, one integer per RNN state).",
    ),
    (
        "StackedRNNCells_cell_without_call",
        lambda mod: mod.StackedRNNCells([object()]),
        "All cells must have a `call` method. Received cell without a `call` method:",
    ),
    (
        "StackedRNNCells_cell_without_state_size",
        lambda mod: mod.StackedRNNCells([keras.layers.Dense(3)]),
        "All cells must have a `state_size` attribute. Received cell without a `state_size`:",
    ),
    (
        "Bidirectional_not_a_layer",
        lambda mod: mod.Bidirectional(NOT_LAYER),
        "Please initialize `Bidirectional` layer with a `keras.layers.Layer` instance.",
    ),
    (
        "Bidirectional_backward_not_a_layer",
        lambda mod: mod.Bidirectional(mod.LSTM(2), backward_layer=NOT_LAYER),
        "`backward_layer` need to be a `keras.layers.Layer` instance.",
    ),
    (
        "Bidirectional_merge_mode",
        lambda mod: mod.Bidirectional(mod.LSTM(2), merge_mode="max"),
        'Invalid merge mode. Received: max. Merge mode should be one of {"sum", "mul", '
        '"ave", "concat", None}',
    ),
    (
        "Bidirectional_same_direction",
        lambda mod: mod.Bidirectional(mod.LSTM(2), backward_layer=mod.LSTM(2)),
        "Forward layer and backward layer should have different `go_backwards` value.",
    ),
    (
        "Bidirectional_disagreeing_layers",
        lambda mod: mod.Bidirectional(
            mod.LSTM(2), backward_layer=mod.LSTM(2, go_backwards=True, return_sequences=True)
        ),
        "Forward layer and backward layer are expected to have the same value for "
        'attribute "return_sequences", got "False" for forward layer and "True" for '
        "backward layer",
    ),
    (
        "stateful_dynamic_batch",
        lambda mod: _stateful_model(mod, batch_size=None),
        "When using `stateful=True` in a RNN, the batch size must be static.",
    ),
    (
        "stateful_batch_change",
        _stateful_batch_change,
        "If an RNN is stateful, the batch size of the input sequences must be the same "
        "as the batch size of the initial state.",
    ),
    (
        "LSTM_wrong_rank",
        lambda mod: mod.LSTM(2, name="twin")(np.zeros((4, 5), "float32")),
        "of layer 'twin' is incompatible with the layer: expected ndim=3, found ndim=2. "
        "Full shape received: (4, 5)",
    ),
    (
        "ConvLSTM2D_unknown_spatial_dims",
        lambda mod: mod.ConvLSTM2D(4, 3)(keras.Input((5, None, None, 2))),
        "ConvLSTM layers only support static input shapes for the spatial dimension.",
    ),
    (
        "ConvLSTM1D_unknown_channels",
        lambda mod: mod.ConvLSTM1D(4, 3)(keras.Input((5, 8, None))),
        "The channel dimension of the inputs (last axis) should be defined. Found None.",
    ),
    pytest.param(
        "unroll_unknown_steps",
        _unroll_unknown_steps,
        "Cannot unroll a RNN if the time dimension is undefined.",
        marks=pytest.mark.skipif(
            keras.backend.backend() != "tensorflow",
            reason="only TensorFlow graphs leave the number of time steps unknown at call time",
        ),
    ),
]


def _case_id(case):
    return case.values[0] if hasattr(case, "values") else case[0]


@pytest.mark.parametrize(("case", "call", "words"), CASES, ids=[_case_id(c) for c in CASES])
def test_keras_rnnx_raises_with_keras_words(case, call, words):
    import keras_rnnx

    # The words are Keras 3.15's, which keras-rnnx keeps on every Keras: an
    # older Keras words some of them otherwise, or does not check the input.
    if KERAS_VERSION >= (3, 15):
        with pytest.raises(ValueError, match=re.escape(words)):
            call(keras.layers)
    with pytest.raises(ValueError, match=re.escape(words)):
        call(keras_rnnx)
