"""JAX: DataParallel and ModelParallel (the recurrent kernels sharded) on 4
simulated CPU devices, against one device."""

import os

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
os.environ["KERAS_BACKEND"] = "jax"

import jax  # noqa: E402
import keras  # noqa: E402
from common import fit, report  # noqa: E402

results, shardings = {}, {}


def shards(net):
    """Each recurrent weight's partition spec, as the distribution laid it out."""
    for w in net.weights:
        if "_cell/" in w.path:
            # Without the model's and the layers' numbered names.
            path = "/".join(part.rstrip("_0123456789") for part in w.path.split("/")[1:])
            shardings[path] = tuple(w.value.sharding.spec)


for masked in (False, True):
    results[f"single_{masked}"] = fit(masked)
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
    results[f"data_parallel_{masked}"] = fit(masked)
    mesh = keras.distribution.DeviceMesh((2, 2), ("batch", "model"), devices=jax.devices())
    layout_map = keras.distribution.LayoutMap(mesh)
    # Each recurrent layer's gate blocks split over "model"; biases too.
    layout_map[".*_cell/kernel"] = (None, "model")
    layout_map[".*_cell/recurrent_kernel"] = (None, "model")
    layout_map[".*lstm_cell/bias"] = ("model",)
    distribution = keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch")
    keras.distribution.set_distribution(distribution)
    results[f"model_parallel_{masked}"] = fit(masked, inspect=shards)
    keras.distribution.set_distribution(None)
report(devices=len(jax.devices()), shardings=shardings, **results)
