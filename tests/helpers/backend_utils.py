"""Backend-specific test plumbing: gradients of a layer's outputs.

The oracle compares gradients, and each backend takes them its own way; this is
the one place tests touch a backend directly.
"""

from __future__ import annotations

import keras
import numpy as np

BACKEND = keras.backend.backend()
# (major, minor) of the installed Keras: behaviour that changes between Keras
# versions is tested against the one installed.
KERAS_VERSION = tuple(int(v) for v in keras.__version__.split(".")[:2])


def on_gpu() -> bool:
    """Whether this backend computes on a GPU here."""
    if BACKEND == "torch":
        import torch

        return torch.cuda.is_available()
    if BACKEND == "jax":
        import jax

        return jax.default_backend() in ("gpu", "cuda")
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _loss(outputs, coefficients):
    flat = keras.tree.flatten(outputs)
    return sum(
        # In float32: a mixed-precision layer outputs its compute dtype.
        keras.ops.sum(keras.ops.cast(o, "float32") * keras.ops.convert_to_tensor(c))
        for o, c in zip(flat, coefficients)
    )


def coefficients_for(outputs, seed=0):
    """Fixed random weights per output element, so every gradient matters."""
    rng = np.random.RandomState(seed)
    return [rng.randn(*tuple(o.shape)).astype("float32") for o in keras.tree.flatten(outputs)]


def outputs_and_gradients(layer, inputs, coefficients, **call_kwargs):
    """Run `layer(inputs, **call_kwargs)`; return outputs and the gradients of
    `sum(coefficient * output)` with respect to the inputs and to each of the
    layer's trainable weights (in `layer.trainable_weights` order)."""
    weights = layer.trainable_weights
    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.constant(inputs)
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = layer(x, **call_kwargs)
            loss = _loss(outputs, coefficients)
        grads = tape.gradient(loss, [x] + [w.value for w in weights])
    elif BACKEND == "torch":
        import torch

        x = torch.tensor(inputs, requires_grad=True)
        outputs = layer(x, **call_kwargs)
        loss = _loss(outputs, coefficients)
        grads = torch.autograd.grad(loss, [x] + [w.value for w in weights], allow_unused=True)
    elif BACKEND == "jax":
        import jax

        non_trainable = [v.value for v in layer.non_trainable_variables]

        def run(trainable, x):
            outputs, _ = layer.stateless_call(trainable, non_trainable, x, **call_kwargs)
            return _loss(outputs, coefficients), outputs

        (_, outputs), grads = jax.value_and_grad(run, argnums=(0, 1), has_aux=True)(
            [w.value for w in layer.trainable_variables], inputs
        )
        grads = [grads[1], *grads[0]]
    else:  # pragma: no cover
        raise NotImplementedError(BACKEND)
    outputs = [to_numpy(o) for o in keras.tree.flatten(outputs)]
    grads = [None if g is None else to_numpy(g) for g in grads]
    return outputs, grads
