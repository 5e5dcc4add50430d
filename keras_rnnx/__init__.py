"""keras-rnnx: recurrent layers for Keras 3 that run the fastest correct kernel.

A drop-in for `keras.layers`' recurrent layers and cells on the TensorFlow,
PyTorch and JAX backends.
"""

from keras_rnnx import ops
from keras_rnnx.cells.conv_lstm import ConvLSTMCell
from keras_rnnx.cells.delta import DeltaGates, DeltaNetCell, DeltaRuleCell, GatedDeltaNetCell
from keras_rnnx.cells.gla import GLACell
from keras_rnnx.cells.gru import GRUCell
from keras_rnnx.cells.layer_norm import LayerNormGRUCell, LayerNormLSTMCell
from keras_rnnx.cells.linear import LinearRecurrentCell
from keras_rnnx.cells.lru import LRUCell
from keras_rnnx.cells.lstm import LSTMCell
from keras_rnnx.cells.mamba2 import Mamba2Cell
from keras_rnnx.cells.matrix import MatrixGates, MatrixRecurrentCell
from keras_rnnx.cells.min_rnn import MinGRUCell, MinLSTMCell
from keras_rnnx.cells.mlstm import mLSTMCell
from keras_rnnx.cells.registry import register_cell, registered_cells
from keras_rnnx.cells.rg_lru import RGLRUCell
from keras_rnnx.cells.simple_rnn import SimpleRNNCell
from keras_rnnx.cells.slstm import sLSTMCell
from keras_rnnx.cells.stacked import StackedRNNCells
from keras_rnnx.context import export_scope
from keras_rnnx.convert import convert
from keras_rnnx.explain import explain
from keras_rnnx.interop import from_torch, to_torch
from keras_rnnx.kernels import (
    FusedSpec,
    Kernel,
    RecurrentCall,
    Selection,
    fused_spec,
    register_fused_spec,
    register_kernel,
    registered_kernels,
)
from keras_rnnx.layers.bidirectional import Bidirectional
from keras_rnnx.layers.conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from keras_rnnx.layers.gru import GRU
from keras_rnnx.layers.layer_norm import LayerNormGRU, LayerNormLSTM
from keras_rnnx.layers.linear_rnn import LRU, RGLRU, MinGRU, MinLSTM
from keras_rnnx.layers.lstm import LSTM
from keras_rnnx.layers.matrix_rnn import GLA, DeltaNet, GatedDeltaNet, Mamba2, mLSTM
from keras_rnnx.layers.rnn import RNN
from keras_rnnx.layers.simple_rnn import SimpleRNN
from keras_rnnx.layers.slstm import sLSTM
from keras_rnnx.patch import patch
from keras_rnnx.streaming import streaming

__version__ = "0.1.0"

__all__ = [
    "GLA",
    "GRU",
    "LRU",
    "LSTM",
    "RNN",
    "Bidirectional",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "ConvLSTMCell",
    "DeltaGates",
    "DeltaNet",
    "DeltaNetCell",
    "DeltaRuleCell",
    "FusedSpec",
    "GLACell",
    "GRUCell",
    "GatedDeltaNet",
    "GatedDeltaNetCell",
    "Kernel",
    "LRUCell",
    "LSTMCell",
    "LayerNormGRU",
    "LayerNormGRUCell",
    "LayerNormLSTM",
    "LayerNormLSTMCell",
    "LinearRecurrentCell",
    "Mamba2",
    "Mamba2Cell",
    "MatrixGates",
    "MatrixRecurrentCell",
    "MinGRU",
    "MinGRUCell",
    "MinLSTM",
    "MinLSTMCell",
    "RGLRU",
    "RGLRUCell",
    "RecurrentCall",
    "Selection",
    "SimpleRNN",
    "SimpleRNNCell",
    "StackedRNNCells",
    "convert",
    "explain",
    "export_scope",
    "from_torch",
    "fused_spec",
    "patch",
    "register_fused_spec",
    "register_cell",
    "register_kernel",
    "registered_cells",
    "registered_kernels",
    "streaming",
    "mLSTM",
    "mLSTMCell",
    "sLSTM",
    "sLSTMCell",
    "ops",
    "to_torch",
]
