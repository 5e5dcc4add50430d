"""torch's fused kernel against the reference kernel: outputs, final states
and gradients, over every option it accepts; and the reasons it declines."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from backend_utils import coefficients_for, outputs_and_gradients, to_numpy
from oracle import BATCH, STEPS, UNITS, assert_all_close, make_mask, sequences, states_for

import keras_rnnx

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="the torch kernel runs on the torch backend only"
)

OPTIONS = {
    "default": {},
    "sequences_state": {"return_sequences": True, "return_state": True},
    "backwards": {"go_backwards": True, "return_sequences": True, "return_state": True},
    "zero_output": {"zero_output_for_mask": True, "return_sequences": True},
    "zero_output_backwards": {
        "zero_output_for_mask": True,
        "go_backwards": True,
        "return_sequences": True,
    },
    "no_bias": {"use_bias": False, "return_state": True},
}
LAYERS = {
    "LSTM": {},
    "GRU": {},
    "SimpleRNN": {},
    "SimpleRNN-relu": {"activation": "relu"},
}
CASES = [
    (layer, case, mask)
    for layer in LAYERS
    for case in OPTIONS
    for mask in ("none", "right", "empty_row")
]


def _pair(layer, **options):
    cls = getattr(keras_rnnx, layer.split("-")[0])
    kwargs = {**LAYERS[layer], **options}
    fused, reference = cls(UNITS, **kwargs), cls(UNITS, use_cudnn=False, **kwargs)
    x = sequences()
    fused(x)
    reference(x)
    reference.set_weights(fused.get_weights())
    return fused, reference


def _compare(fused, reference, x, **kwargs):
    coefficients = coefficients_for(reference(x, **kwargs))
    out_f, grad_f = outputs_and_gradients(fused, x, coefficients, **kwargs)
    out_r, grad_r = outputs_and_gradients(reference, x, coefficients, **kwargs)
    assert_all_close(out_f, out_r, "outputs")
    assert_all_close(grad_f, grad_r, "gradients")


@pytest.mark.parametrize(("layer", "case", "mask_kind"), CASES, ids=["-".join(c) for c in CASES])
def test_fused_matches_reference(layer, case, mask_kind):
    fused, reference = _pair(layer, **OPTIONS[case])
    mask = make_mask(mask_kind)
    _compare(fused, reference, sequences(), **({} if mask is None else {"mask": mask}))
    assert keras_rnnx.explain(fused).kernel == "torch-fused"
    assert keras_rnnx.explain(reference).kernel == "reference"


@pytest.mark.parametrize("layer", LAYERS)
def test_fused_with_initial_state_and_inference_dropout(layer):
    fused, reference = _pair(layer, return_state=True, dropout=0.5)
    states = states_for(reference)
    _compare(fused, reference, sequences(), initial_state=states, training=False)


@pytest.mark.parametrize("layer", ("GRU", "SimpleRNN"))
def test_fused_training_input_dropout_uses_the_same_seeded_masks(layer):
    fused, reference = _pair(layer, return_sequences=True, dropout=0.5, seed=11)
    x = sequences()
    a, b = fused(x, training=True), reference(x, training=True)
    assert_all_close([to_numpy(a)], [to_numpy(b)], "training outputs")
    assert keras_rnnx.explain(fused).kernel == "torch-fused"


@pytest.mark.parametrize("layer", ("LSTM", "GRU"))
def test_fused_stateful_training_backward_works(layer):
    fused, reference = _pair(layer, stateful=True, return_sequences=True)
    fused.reset_state()
    reference.reset_state()
    coefficients = coefficients_for([np.zeros((BATCH, STEPS, UNITS))])
    for seed in range(3):  # states carried from batch to batch, gradients each time
        x = sequences(seed)
        out_f, grad_f = outputs_and_gradients(fused, x, coefficients)
        out_r, grad_r = outputs_and_gradients(reference, x, coefficients)
        assert_all_close(out_f, out_r, f"outputs {seed}")
        assert_all_close(grad_f, grad_r, f"gradients {seed}")


@pytest.mark.parametrize(
    ("layer", "options", "mask_kind", "reason"),
    [
        ("LSTM", {}, "left", "mask is not right-padded"),
        ("GRU", {}, "left", "mask is not right-padded"),
        ("GRU", {}, "holes", "mask is not right-padded"),
        ("GRU", {"reset_after": False}, "none", "reset_after=False"),
        ("LSTM", {"recurrent_activation": "hard_sigmoid"}, "none", "recurrent_activation"),
        ("SimpleRNN", {"activation": "elu"}, "none", "activation is not tanh or relu"),
        ("GRU", {"unroll": True}, "none", "unroll=True"),
    ],
)
def test_declines_with_a_reason(layer, options, mask_kind, reason):
    cls = getattr(keras_rnnx, layer)
    auto, reference = cls(UNITS, **options), cls(UNITS, use_cudnn=False, **options)
    x = sequences()
    auto(x)
    reference(x)
    reference.set_weights(auto.get_weights())
    mask = make_mask(mask_kind)
    _compare(auto, reference, x, **({} if mask is None else {"mask": mask}))
    selection = keras_rnnx.explain(auto)
    assert selection.kernel == "reference"
    assert any(name == "torch-fused" and reason in why for name, why in selection.passed_over)
    with pytest.raises(ValueError, match=reason):
        cls(UNITS, use_cudnn=True, **options)(x, **({} if mask is None else {"mask": mask}))


def test_recurrent_dropout_declines_only_in_training():
    layer = keras_rnnx.GRU(UNITS, recurrent_dropout=0.3)
    x = sequences()
    layer(x, training=False)
    assert keras_rnnx.explain(layer).kernel == "torch-fused"
    layer(x, training=True)
    assert keras_rnnx.explain(layer).kernel == "reference"
