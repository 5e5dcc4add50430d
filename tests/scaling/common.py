"""What every scaling run shares: the model, its data, and one reference run.

Each script runs in its own process (device counts are fixed before a backend
starts), trains the same model from the same weights on one device and
distributed, and prints the results as JSON for `test_scaling.py`.
"""

from __future__ import annotations

import json
import sys

import keras
import numpy as np

import keras_rnnx

BATCH, STEPS, FEATURES, UNITS = 8, 5, 3, 4


def data(masked):
    rng = np.random.RandomState(0)
    x = rng.randn(2 * BATCH, STEPS, FEATURES).astype("float32")
    if masked:  # right-padded rows: zero steps, which `Masking` masks
        lengths = rng.randint(1, STEPS + 1, size=len(x))
        x[np.arange(STEPS)[None, :] >= lengths[:, None]] = 0.0
    y = rng.randn(len(x), 1).astype("float32")
    return x, y


def model(masked):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((STEPS, FEATURES))]
    layers += [keras.layers.Masking(0.0)] if masked else []
    layers += [
        keras_rnnx.Bidirectional(keras_rnnx.LSTM(UNITS, return_sequences=True), name="bi"),
        keras_rnnx.GRU(UNITS, name="gru"),
        keras.layers.Dense(1, name="head"),
    ]
    return keras.Sequential(layers)


def fit(masked, epochs=2, inspect=None):
    """Train in the current distribution; the losses and final weights
    (`inspect(model)` is called after training)."""
    x, y = data(masked)
    net = model(masked)
    net.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    history = net.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0)
    weights = [np.asarray(keras.ops.convert_to_numpy(w)) for w in net.weights]
    if inspect is not None:
        inspect(net)
    return history.history["loss"], weights


def report(**results):
    """Print results (losses and weight lists) as one JSON line."""

    def plain(value):
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    print("RESULT " + json.dumps({k: plain(v) for k, v in results.items()}))
    sys.stdout.flush()
