"""TensorFlow: MirroredStrategy over 2 logical CPUs, against one device."""

import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from common import fit, report  # noqa: E402

results = {}
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
for masked in (False, True):
    results[f"single_{masked}"] = fit(masked)
    with strategy.scope():
        results[f"mirrored_{masked}"] = fit(masked)
report(replicas=strategy.num_replicas_in_sync, **results)
