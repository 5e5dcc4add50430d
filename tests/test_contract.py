"""Every keras-rnnx layer and cell keeps Keras's layer contract (`contract.py`)."""

from __future__ import annotations

import pytest

import keras_rnnx
from tests.helpers.contract import assert_layer_contract
from tests.helpers.custom_cells import MinimalCell
from tests.helpers.oracle import sequences

# (class, constructor arguments, trainable weights, seed generators[, input
# sequences]); a cell instance in the arguments is shared by every layer the
# test makes, as in Keras's own RNN tests.
LAYERS = {
    "LSTM": (keras_rnnx.LSTM, {"units": 3, "return_sequences": True}, 3, 1),
    "GRU": (keras_rnnx.GRU, {"units": 3, "return_state": True, "dropout": 0.1}, 3, 1),
    "SimpleRNN": (keras_rnnx.SimpleRNN, {"units": 3, "go_backwards": True}, 3, 1),
    "RNN_LSTMCell": (keras_rnnx.RNN, {"cell": keras_rnnx.LSTMCell(3)}, 3, 1),
    "LSTM_recurrent_kernel_dropout": (
        keras_rnnx.LSTM,
        {"units": 3, "recurrent_kernel_dropout": 0.2, "return_sequences": True},
        3,
        1,
    ),
    "LSTM_proj_size": (
        keras_rnnx.LSTM,
        {"units": 4, "proj_size": 2, "return_state": True},
        4,
        1,
    ),
    "RNN_custom_cell": (keras_rnnx.RNN, {"cell": MinimalCell(3), "return_state": True}, 2, 0),
    "RNN_stacked_cells": (
        keras_rnnx.RNN,
        {"cell": [keras_rnnx.GRUCell(4), MinimalCell(3)], "return_sequences": True},
        5,
        1,
    ),
    "RNN_dropout_cell": (
        keras_rnnx.RNN,
        {"cell": keras_rnnx.LSTMCell(3, dropout=0.2, recurrent_dropout=0.1)},
        3,
        1,
    ),
    "Bidirectional": (
        keras_rnnx.Bidirectional,
        {"layer": keras_rnnx.GRU(3, return_sequences=True), "merge_mode": "sum"},
        6,
        2,
    ),
    "Bidirectional_backward_layer": (
        keras_rnnx.Bidirectional,
        {
            "layer": keras_rnnx.LSTM(3),
            "backward_layer": keras_rnnx.SimpleRNN(2, go_backwards=True),
        },
        6,
        2,
    ),
    "ConvLSTM1D": (
        keras_rnnx.ConvLSTM1D,
        {"filters": 2, "kernel_size": 3, "padding": "same", "return_sequences": True},
        3,
        1,
        sequences(shape=(2, 3, 5, 2)),
    ),
    "ConvLSTM2D": (
        keras_rnnx.ConvLSTM2D,
        {"filters": 2, "kernel_size": 2, "return_state": True, "dropout": 0.1},
        3,
        1,
        sequences(shape=(2, 3, 4, 4, 2)),
    ),
    "ConvLSTM3D": (
        keras_rnnx.ConvLSTM3D,
        {"filters": 2, "kernel_size": 2, "data_format": "channels_first"},
        3,
        1,
        sequences(shape=(2, 2, 1, 3, 3, 3)),
    ),
    "MinGRU": (keras_rnnx.MinGRU, {"units": 3, "return_sequences": True}, 2, 0),
    "MinLSTM_log_space": (
        keras_rnnx.MinLSTM,
        {"units": 3, "log_space": True, "go_backwards": True},
        2,
        0,
    ),
    "LRU": (keras_rnnx.LRU, {"units": 3, "return_state": True}, 6, 0),
    "RGLRU": (keras_rnnx.RGLRU, {"units": 4, "heads": 2, "return_sequences": True}, 7, 0),
    "GLA": (keras_rnnx.GLA, {"heads": 2, "key_dim": 4, "return_sequences": True}, 7, 0),
    "mLSTM": (
        keras_rnnx.mLSTM,
        {"heads": 2, "key_dim": 4, "value_dim": 3, "return_state": True, "chunk_size": 4},
        6,
        0,
    ),
    "Mamba2": (
        keras_rnnx.Mamba2,
        {"heads": 2, "head_dim": 3, "state_dim": 4, "go_backwards": True},
        6,
        0,
    ),
    "DeltaNet": (
        keras_rnnx.DeltaNet,
        {"heads": 2, "key_dim": 4, "value_dim": 3, "return_state": True, "chunk_size": 4},
        4,
        0,
    ),
    "GatedDeltaNet": (
        keras_rnnx.GatedDeltaNet,
        {"heads": 2, "key_dim": 4, "go_backwards": True, "return_sequences": True},
        9,
        0,
    ),
    "sLSTM": (keras_rnnx.sLSTM, {"units": 4, "heads": 2, "return_state": True}, 3, 0),
    "LayerNormLSTM": (keras_rnnx.LayerNormLSTM, {"units": 3, "dropout": 0.1}, 9, 1),
    "LayerNormGRU": (
        keras_rnnx.LayerNormGRU,
        {"units": 3, "norm_epsilon": 1e-5, "return_sequences": True},
        7,
        1,
    ),
}

CELLS = {
    "LSTMCell": (keras_rnnx.LSTMCell, {"units": 3}, 3, 1),
    "LSTMCell_proj_size": (keras_rnnx.LSTMCell, {"units": 4, "proj_size": 2}, 4, 1),
    "GRUCell": (keras_rnnx.GRUCell, {"units": 3, "reset_after": False}, 3, 1),
    "SimpleRNNCell": (keras_rnnx.SimpleRNNCell, {"units": 3, "dropout": 0.2}, 3, 1),
    "StackedRNNCells": (
        keras_rnnx.StackedRNNCells,
        {"cells": [keras_rnnx.LSTMCell(4), MinimalCell(3)]},
        5,
        1,
    ),
    "ConvLSTMCell": (
        keras_rnnx.ConvLSTMCell,
        {"rank": 2, "filters": 2, "kernel_size": 3, "strides": 2},
        3,
        1,
        sequences(shape=(2, 5, 5, 3)),
    ),
    "MinGRUCell": (keras_rnnx.MinGRUCell, {"units": 3, "log_space": True}, 2, 0),
    "MinLSTMCell": (keras_rnnx.MinLSTMCell, {"units": 3, "use_bias": False}, 1, 0),
    "LRUCell": (keras_rnnx.LRUCell, {"units": 3, "r_min": 0.5}, 6, 0),
    "RGLRUCell": (keras_rnnx.RGLRUCell, {"units": 4, "min_radius": 0.5}, 7, 0),
    "GLACell": (keras_rnnx.GLACell, {"heads": 2, "key_dim": 4, "output_gate": False}, 5, 0),
    "mLSTMCell": (keras_rnnx.mLSTMCell, {"heads": 2, "key_dim": 4, "forget_gate": "exp"}, 6, 0),
    "Mamba2Cell": (keras_rnnx.Mamba2Cell, {"heads": 2, "head_dim": 3, "gate": False}, 4, 0),
    "DeltaNetCell": (
        keras_rnnx.DeltaNetCell,
        {"heads": 2, "key_dim": 4, "output_gate": True},
        6,
        0,
    ),
    "GatedDeltaNetCell": (
        keras_rnnx.GatedDeltaNetCell,
        {"heads": 2, "key_dim": 4, "normalize": False},
        8,
        0,
    ),
    "sLSTMCell": (keras_rnnx.sLSTMCell, {"units": 4, "forget_gate": "exp"}, 3, 0),
    "LayerNormLSTMCell": (keras_rnnx.LayerNormLSTMCell, {"units": 3}, 9, 1),
    "LayerNormGRUCell": (keras_rnnx.LayerNormGRUCell, {"units": 3}, 7, 1),
}


@pytest.mark.parametrize("case", LAYERS)
def test_layer_keeps_the_keras_layer_contract(case):
    layer_cls, kwargs, trainable, seeds, *data = LAYERS[case]
    data = data[0] if data else sequences()
    assert_layer_contract(
        layer_cls, kwargs, data, trainable_weights=trainable, seed_generators=seeds
    )


@pytest.mark.parametrize("case", CELLS)
def test_cell_keeps_the_keras_layer_contract(case):
    cell_cls, kwargs, trainable, seeds, *data = CELLS[case]
    data = data[0] if data else sequences()[:, 0]
    assert_layer_contract(
        cell_cls, kwargs, data, trainable_weights=trainable, seed_generators=seeds
    )
