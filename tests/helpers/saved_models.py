"""The model behind the cross-backend saving test, and the script that makes
its fixtures: `KERAS_BACKEND=<b> python -m tests.helpers.saved_models` writes
`tests/data/model_<b>.keras` and `tests/data/model_<b>.npz` (inputs, outputs)."""

from __future__ import annotations

import os

import keras
import numpy as np

import keras_rnnx

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data")
BACKENDS = ("tensorflow", "torch", "jax")


def build_model():
    """Every layer kind, a mask and nested stacked states, in one model."""
    inputs = keras.Input((6, 5))
    x = keras.layers.Masking(mask_value=0.0)(inputs)
    x = keras_rnnx.LSTM(4, return_sequences=True, go_backwards=True)(x)
    x = keras_rnnx.Bidirectional(keras_rnnx.GRU(3, return_sequences=True, reset_after=False))(x)
    x = keras_rnnx.RNN(
        [keras_rnnx.SimpleRNNCell(4), keras_rnnx.LSTMCell(3)], return_sequences=True
    )(x)
    x = keras_rnnx.SimpleRNN(2, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x) + beyond_keras(inputs))


def beyond_keras(inputs):
    """The cells beyond Keras's, on the same inputs: a ConvLSTM, layer-norm,
    parallel-scan and chunkwise (matrix-state and delta-rule) layers."""
    x = keras.layers.Reshape((6, 5, 1))(inputs)
    x = keras_rnnx.ConvLSTM1D(2, 3, padding="same", return_sequences=True)(x)
    x = keras.layers.Reshape((6, 10))(x)
    x = keras_rnnx.LayerNormLSTM(3, return_sequences=True)(x)
    x = keras_rnnx.LayerNormGRU(3, return_sequences=True, go_backwards=True)(x)
    x = keras_rnnx.MinGRU(4, return_sequences=True)(x)
    x = keras_rnnx.MinLSTM(4, log_space=True, return_sequences=True)(x)
    x = keras_rnnx.GLA(2, 2, return_sequences=True, go_backwards=True)(x)
    x = keras_rnnx.mLSTM(2, 2, forget_gate="exp", return_sequences=True, chunk_size=4)(x)
    x = keras_rnnx.Mamba2(2, 2, state_dim=3, return_sequences=True)(x)
    # Unnormalised: an RMS norm of the small outputs of the first steps would
    # magnify each backend's rounding past the test's tolerance.
    x = keras_rnnx.GatedDeltaNet(
        2, 2, normalize=False, return_sequences=True, go_backwards=True, chunk_size=4
    )(x)
    x = keras_rnnx.DeltaNet(2, 2, normalize=False, return_sequences=True)(x)
    x = keras_rnnx.RGLRU(4, heads=2, return_sequences=True)(x)
    x = keras_rnnx.sLSTM(4, heads=2, return_sequences=True)(x)
    x = keras_rnnx.LRU(3)(x)
    return keras.layers.Dense(2)(x)


def model_inputs():
    x = np.random.RandomState(0).randn(3, 6, 5).astype("float32")
    x[1, 4:] = 0.0  # right-padded
    x[2, 2] = 0.0  # a hole
    return x


def main():
    keras.utils.set_random_seed(0)
    backend = keras.backend.backend()
    model = build_model()
    x = model_inputs()
    model.save(os.path.join(DATA, f"model_{backend}.keras"))
    np.savez(os.path.join(DATA, f"model_{backend}.npz"), x=x, y=model.predict(x, verbose=0))


if __name__ == "__main__":
    main()
