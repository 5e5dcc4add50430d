"""keras-rnnx in small: the Keras RNN guide's digit classifier.

Each 8x8 image of scikit-learn's bundled digits data set is a sequence of 8
rows (time steps) of 8 pixels, read by `keras_rnnx.LSTM`. Runs on the backend
that KERAS_BACKEND names.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import keras_rnnx  # noqa: E402


def main():
    keras.utils.set_random_seed(0)
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")  # (1797, 8 steps, 8 features)
    y = digits.target
    order = np.random.RandomState(0).permutation(len(x))
    x, y = x[order], y[order]
    x_train, y_train, x_test, y_test = x[:1400], y[:1400], x[1400:], y[1400:]

    lstm = keras_rnnx.LSTM(64)
    model = keras.Sequential(
        [keras.Input((None, 8)), lstm, keras.layers.BatchNormalization(), keras.layers.Dense(10)]
    )
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer="adam",
        metrics=["accuracy"],
    )
    print(f"backend: {keras.backend.backend()}; training on {len(x_train)} digits, 40 epochs")
    model.fit(x_train, y_train, batch_size=64, epochs=40, verbose=2)  # a line per epoch
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)

    print(f"test accuracy on {len(x_test)} held-out digits: {accuracy:.3f}")
    print(keras_rnnx.explain(lstm))


if __name__ == "__main__":
    main()
