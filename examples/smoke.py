"""A smoke test of an installed keras-rnnx (the wheel, in a fresh virtual
environment): the public API imports, a layer runs and matches keras.layers,
and the package ships its type marker. Exits non-zero on any failure."""

import importlib.resources
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_rnnx  # noqa: E402


def main():
    assert importlib.resources.files("keras_rnnx").joinpath("py.typed").is_file()
    x = np.random.default_rng(0).normal(size=(4, 6, 3)).astype("float32")
    ours, theirs = keras_rnnx.LSTM(5, "tanh"), keras.layers.LSTM(5, "tanh")
    ours.build(x.shape), theirs.build(x.shape)
    ours.set_weights(theirs.get_weights())
    numpy = keras.ops.convert_to_numpy
    np.testing.assert_allclose(numpy(ours(x)), numpy(theirs(x)), atol=1e-5)
    print(
        f"keras-rnnx {keras_rnnx.__version__} on keras {keras.__version__} "
        f"({keras.backend.backend()}): {keras_rnnx.explain(ours).kernel_name}, same as keras.layers"
    )


if __name__ == "__main__":
    main()
