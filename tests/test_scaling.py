"""Scaling out on CPU, each run equal to one device: JAX DataParallel and
ModelParallel on 4 simulated devices, TensorFlow MirroredStrategy on 2 logical
CPUs, torch DistributedDataParallel with gloo over 2 processes. Each backend's
run is a script in `scaling/`, in a process of its own (device counts are set
before the backend starts); the docs page "Scaling out" has the recipes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers.backend_utils import BACKEND

HERE = os.path.join(os.path.dirname(__file__), "scaling")


def _run(script, *args):
    env = {**os.environ, "PYTHONPATH": HERE}
    done = subprocess.run(
        [sys.executable, os.path.join(HERE, script), *args],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def _assert_same_run(results, name, reference, atol):
    losses, weights = results[name]
    expected_losses, expected_weights = results[reference]
    np.testing.assert_allclose(losses, expected_losses, atol=atol, err_msg=f"{name} losses")
    assert len(weights) == len(expected_weights)
    for i, (w, e) in enumerate(zip(weights, expected_weights)):
        np.testing.assert_allclose(w, e, atol=atol, err_msg=f"{name} weight {i}")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution runs on the jax backend")
def test_jax_data_and_model_parallel_equal_one_device():
    results = _run("jax_parallel.py")
    assert results["devices"] == 4
    shardings = results["shardings"]
    assert shardings["gru/gru_cell/kernel"] == [None, "model"]
    assert shardings["gru/gru_cell/recurrent_kernel"] == [None, "model"]
    assert shardings["bi/backward_lstm/lstm_cell/bias"] == ["model"]
    for masked in (False, True):
        for run in ("data_parallel", "model_parallel"):
            _assert_same_run(results, f"{run}_{masked}", f"single_{masked}", atol=1e-6)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute runs on tensorflow")
def test_tensorflow_mirrored_strategy_equals_one_device():
    results = _run("tf_mirrored.py")
    assert results["replicas"] == 2
    for masked in (False, True):
        _assert_same_run(results, f"mirrored_{masked}", f"single_{masked}", atol=1e-6)


@pytest.mark.skipif(BACKEND != "torch", reason="DistributedDataParallel runs on torch")
def test_torch_ddp_over_two_processes_equals_one_process():
    results = _run("torch_ddp.py", str(_free_port()))
    for masked in (False, True):
        _assert_same_run(results, f"ddp_{masked}", f"single_{masked}", atol=1e-6)
        # Both processes end with the same weights.
        for w1, w0 in zip(results[f"ddp_rank1_{masked}"][1], results[f"ddp_{masked}"][1]):
            np.testing.assert_array_equal(w1, w0)
