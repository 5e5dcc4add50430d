"""keras-rnnx's twin of each of Keras's recurrent classes, by Keras's public
name: what `patch` puts under `keras.layers` and `convert` swaps."""

from __future__ import annotations

from keras_rnnx.cells.gru import GRUCell
from keras_rnnx.cells.lstm import LSTMCell
from keras_rnnx.cells.simple_rnn import SimpleRNNCell
from keras_rnnx.cells.stacked import StackedRNNCells
from keras_rnnx.layers.bidirectional import Bidirectional
from keras_rnnx.layers.conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from keras_rnnx.layers.gru import GRU
from keras_rnnx.layers.lstm import LSTM
from keras_rnnx.layers.rnn import RNN
from keras_rnnx.layers.simple_rnn import SimpleRNN

TWINS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        RNN,
        SimpleRNN,
        GRU,
        LSTM,
        Bidirectional,
        SimpleRNNCell,
        GRUCell,
        LSTMCell,
        StackedRNNCells,
        ConvLSTM1D,
        ConvLSTM2D,
        ConvLSTM3D,
    )
}
