"""The Keras RNN guide (../shared/seed), example by example, with
`keras.layers.X` replaced by `keras_rnnx.X`. The NestedCell example is in
tests/layers/test_rnn.py (test_guide_nested_cell_model_compiles_and_fits)."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

import keras_rnnx
from tests.helpers.backend_utils import to_numpy


def _params(model):
    return {layer.name: layer.count_params() for layer in model.layers}


def test_builtin_layers_simple_example():
    model = keras.Sequential()
    model.add(keras.Input((None,)))
    model.add(layers.Embedding(input_dim=1000, output_dim=64))
    model.add(keras_rnnx.LSTM(128))
    model.add(layers.Dense(10))
    assert [layer.count_params() for layer in model.layers] == [64000, 98816, 1290]
    assert model.count_params() == 164106


def test_outputs_and_states_example():
    model = keras.Sequential()
    model.add(keras.Input((None,)))
    model.add(layers.Embedding(input_dim=1000, output_dim=64))
    model.add(keras_rnnx.GRU(256, return_sequences=True))
    model.add(keras_rnnx.SimpleRNN(128))
    model.add(layers.Dense(10))
    assert [layer.count_params() for layer in model.layers] == [64000, 247296, 49280, 1290]
    assert tuple(model.layers[1].output.shape) == (None, None, 256)
    assert model.count_params() == 361866


def test_encoder_decoder_example():
    encoder_vocab, decoder_vocab = 1000, 2000
    encoder_input = layers.Input(shape=(None,))
    encoder_embedded = layers.Embedding(input_dim=encoder_vocab, output_dim=64)(encoder_input)
    output, state_h, state_c = keras_rnnx.LSTM(64, return_state=True, name="encoder")(
        encoder_embedded
    )
    encoder_state = [state_h, state_c]
    decoder_input = layers.Input(shape=(None,))
    decoder_embedded = layers.Embedding(input_dim=decoder_vocab, output_dim=64)(decoder_input)
    decoder_output = keras_rnnx.LSTM(64, name="decoder")(
        decoder_embedded, initial_state=encoder_state
    )
    output = layers.Dense(10)(decoder_output)
    model = keras.Model([encoder_input, decoder_input], output)
    params = _params(model)
    assert params["encoder"] == params["decoder"] == 33024
    assert model.count_params() == 258698
    a = np.random.RandomState(0).randint(0, encoder_vocab, (2, 5))
    b = np.random.RandomState(1).randint(0, decoder_vocab, (2, 3))
    assert model.predict([a, b], verbose=0).shape == (2, 10)


def test_cell_in_rnn_equals_layer():
    """RNN(LSTMCell(10)) computes what LSTM(10) computes."""
    x = np.random.RandomState(0).randn(3, 7, 4).astype("float32")
    layer = keras_rnnx.LSTM(10)
    wrapped = keras_rnnx.RNN(keras_rnnx.LSTMCell(10))
    layer(x)
    wrapped(x)
    wrapped.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_numpy(wrapped(x)), to_numpy(layer(x)), atol=1e-6)


def test_cross_batch_statefulness_example():
    paragraph1 = np.random.random((20, 10, 50)).astype(np.float32)
    paragraph2 = np.random.random((20, 10, 50)).astype(np.float32)
    paragraph3 = np.random.random((20, 10, 50)).astype(np.float32)
    lstm_layer = keras_rnnx.LSTM(64, stateful=True)
    output = lstm_layer(paragraph1)
    output = lstm_layer(paragraph2)
    output = lstm_layer(paragraph3)
    # The layer saw all three paragraphs: it equals one pass over them joined.
    whole = keras_rnnx.LSTM(64)
    whole(paragraph1)
    whole.set_weights(lstm_layer.get_weights())
    joined = np.concatenate([paragraph1, paragraph2, paragraph3], axis=1)
    np.testing.assert_allclose(to_numpy(output), to_numpy(whole(joined)), atol=1e-5)
    lstm_layer.reset_states()
    assert all((to_numpy(s) == 0).all() for s in lstm_layer.states)


def test_state_reuse_example():
    paragraph1 = np.random.random((20, 10, 50)).astype(np.float32)
    paragraph2 = np.random.random((20, 10, 50)).astype(np.float32)
    paragraph3 = np.random.random((20, 10, 50)).astype(np.float32)
    lstm_layer = keras_rnnx.LSTM(64, stateful=True)
    output = lstm_layer(paragraph1)
    output = lstm_layer(paragraph2)
    existing_state = lstm_layer.states
    new_lstm_layer = keras_rnnx.LSTM(64)
    new_output = new_lstm_layer(paragraph3, initial_state=existing_state)
    assert tuple(new_output.shape) == (20, 64)
    fresh = to_numpy(new_lstm_layer(paragraph3))
    assert not np.allclose(to_numpy(new_output), fresh), "the reused state changed nothing"
    assert tuple(output.shape) == (20, 64)


def test_bidirectional_example():
    model = keras.Sequential()
    model.add(keras.Input((5, 10)))
    model.add(keras_rnnx.Bidirectional(keras_rnnx.LSTM(64, return_sequences=True)))
    model.add(keras_rnnx.Bidirectional(keras_rnnx.LSTM(32)))
    model.add(layers.Dense(10))
    assert [layer.count_params() for layer in model.layers] == [38400, 41216, 650]
    assert tuple(model.layers[0].output.shape) == (None, 5, 128)
    assert model.count_params() == 80266


def test_bidirectional_example_with_input_shape_argument():
    """The guide passes `input_shape=` to the first layer, as Keras 2 did."""
    model = keras.Sequential()
    model.add(
        keras_rnnx.Bidirectional(keras_rnnx.LSTM(64, return_sequences=True), input_shape=(5, 10))
    )
    model.add(keras_rnnx.Bidirectional(keras_rnnx.LSTM(32)))
    model.add(layers.Dense(10))
    assert model.count_params() == 80266


def test_cudnn_section_digits_example():
    """The guide's MNIST-rows model, on scikit-learn's bundled 8x8 digits."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")
    y = digits.target
    x_train, y_train, x_test, y_test = x[:1000], y[:1000], x[1000:1300], y[1000:1300]
    sample, sample_label = x_train[0], y_train[0]
    batch_size, input_dim, units, output_size = 64, 8, 64, 10

    def build_model(allow_cudnn_kernel=True):
        if allow_cudnn_kernel:
            lstm_layer = keras_rnnx.LSTM(units)
        else:
            lstm_layer = keras_rnnx.RNN(keras_rnnx.LSTMCell(units))
        return keras.models.Sequential(
            [
                keras.Input((None, input_dim)),
                lstm_layer,
                layers.BatchNormalization(),
                layers.Dense(output_size),
            ]
        )

    model = build_model(allow_cudnn_kernel=True)
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer="sgd",
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        validation_data=(x_test, y_test),
        batch_size=batch_size,
        epochs=1,
        verbose=0,
    )
    noncudnn_model = build_model(allow_cudnn_kernel=False)
    noncudnn_model.set_weights(model.get_weights())
    noncudnn_model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer="sgd",
        metrics=["accuracy"],
    )
    np.testing.assert_allclose(
        noncudnn_model.predict(x_test, verbose=0), model.predict(x_test, verbose=0), atol=1e-4
    )
    history = noncudnn_model.fit(
        x_train,
        y_train,
        validation_data=(x_test, y_test),
        batch_size=batch_size,
        epochs=3,
        verbose=0,
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    cpu_model = build_model(allow_cudnn_kernel=True)
    cpu_model.set_weights(model.get_weights())
    result = np.argmax(cpu_model.predict_on_batch(np.expand_dims(sample, 0)), axis=1)
    assert result.shape == (1,) and 0 <= result[0] < 10 and 0 <= sample_label < 10
