"""Keras's layer contract, as one helper for every keras-rnnx layer and cell.

`assert_layer_contract` runs the checks Keras's own test case runs for a layer
(`run_layer_test`: config round trip with identical JSON and attributes, build,
symbolic and eager calls, a `fit` step as each backend compiles it by default,
weight and seed-generator counts, mixed precision where the backend has it),
then what that test leaves out: a `.keras` file round trip with identical JSON
and outputs, and the layer under the `mixed_bfloat16` and `float64` dtype
policies on every backend. Keras offers no public form of its layer test, so
this is the one place the tests use `keras.src.testing`.
"""

from __future__ import annotations

import json

import keras
import numpy as np
from keras.src.testing import test_case

from tests.helpers.backend_utils import to_numpy

KERAS_RNN = keras.layers.RNN(keras.layers.SimpleRNNCell(1))


def _float64_computes() -> bool:
    """JAX computes float64 only with `jax_enable_x64` (off by default)."""
    if keras.backend.backend() != "jax":
        return True
    import jax

    return bool(jax.config.jax_enable_x64)


POLICIES = ("mixed_bfloat16", "float64") if _float64_computes() else ("mixed_bfloat16",)


class _KerasLayerTest(test_case.TestCase):
    def runTest(self):  # unittest needs a test method to instantiate the case
        pass


def _is_cell(layer_cls) -> bool:
    return not hasattr(layer_cls, "return_sequences") and "cell" in layer_cls.__name__.lower()


def _cell_states(cell, batch):
    """Random states for a built `cell`, in its own structure."""
    rng = np.random.RandomState(1)
    return keras.tree.map_structure(
        lambda s: rng.randn(*tuple(s.shape)).astype("float32"),
        cell.get_initial_state(batch_size=batch),
    )


def assert_layer_contract(
    layer_cls,
    init_kwargs,
    input_data,
    *,
    trainable_weights,
    seed_generators,
    non_trainable_weights=0,
):
    """Assert that `layer_cls(**init_kwargs)` keeps Keras's layer contract.

    `input_data`: one call's input (a step `(batch, features)` for a cell,
    which is called with random states). The counts are what the built layer
    must hold.
    """
    case = _KerasLayerTest()
    case.setUp()
    call_kwargs = {}
    if _is_cell(layer_cls):
        probe = layer_cls(**init_kwargs)
        probe.build(input_data.shape)
        call_kwargs = {"states": _cell_states(probe, input_data.shape[0])}
    case.run_layer_test(
        layer_cls,
        init_kwargs,
        input_data=input_data,
        call_kwargs=call_kwargs,
        expected_num_trainable_weights=trainable_weights,
        expected_num_non_trainable_weights=non_trainable_weights,
        expected_num_seed_generators=seed_generators,
        # As the installed Keras's recurrent layers (False from Keras 3.16).
        supports_masking=None if call_kwargs else KERAS_RNN.supports_masking,
        # A cell's step takes states, which Keras's training model and its
        # mixed-precision check do not pass: cells are trained inside `RNN`
        # (their own cases) and checked under dtype policies below.
        run_training_check=not call_kwargs,
        run_mixed_precision_check=not call_kwargs,
    )
    if not call_kwargs:
        # Through its config, so that a cell shared with earlier instances
        # (built in their name scope) is this layer's own.
        layer = layer_cls(**init_kwargs)
        _assert_keras_file_round_trip(layer_cls.from_config(layer.get_config()), input_data)
    # Parts passed in keep their own policy (as in Keras); only the layer's
    # own weights follow its policy.
    owns_weights = not any(isinstance(v, (keras.layers.Layer, list)) for v in init_kwargs.values())
    for policy in POLICIES:
        _assert_dtype_policy(layer_cls, init_kwargs, input_data, call_kwargs, policy, owns_weights)


def _assert_keras_file_round_trip(layer, input_data):
    import tempfile

    inputs = keras.Input(input_data.shape[1:])
    model = keras.Model(inputs, layer(inputs))
    expected = [to_numpy(t) for t in keras.tree.flatten(model(input_data))]
    with tempfile.TemporaryDirectory() as directory:
        path = f"{directory}/model.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
    assert json.loads(loaded.to_json()) == json.loads(model.to_json())
    got = [to_numpy(t) for t in keras.tree.flatten(loaded(input_data))]
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]


def _assert_dtype_policy(layer_cls, init_kwargs, input_data, call_kwargs, policy, owns_weights):
    layer = layer_cls(**{**init_kwargs, "dtype": policy})
    outputs = layer(input_data, **call_kwargs)
    compute = keras.DTypePolicy(policy).compute_dtype
    if not owns_weights and call_kwargs:
        # Cells passed to a stack compute in their own dtype, as in Keras;
        # only recurrent layers cast their outputs to theirs.
        compute = layer_cls(**init_kwargs).compute_dtype
    expected = {compute}
    if call_kwargs:
        # A cell called directly returns what its ops give. Keras 3.16 keeps
        # float64 on TensorFlow only: elsewhere its ops promote float64 to
        # float32 (`keras.backend.result_type`), and Keras's own cells return
        # either, by the ops they use.
        expected.add(keras.backend.result_type(compute, compute))
    for output in keras.tree.flatten(outputs):
        assert keras.backend.standardize_dtype(output.dtype) in expected, (policy, output.dtype)
    variable = keras.DTypePolicy(policy).variable_dtype
    for weight in layer.weights if owns_weights else ():
        assert keras.backend.standardize_dtype(weight.dtype) == variable, (policy, weight.path)
