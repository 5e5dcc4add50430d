"""torch's fused kernel against the reference kernel: outputs, final states
and gradients, over every option it accepts; and the reasons it declines."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import (
    KERAS_VERSION,
    coefficients_for,
    outputs_and_gradients,
    to_numpy,
)
from tests.helpers.oracle import (
    BATCH,
    KERNEL_OPTIONS,
    MIXED_TOLERANCE,
    STACK_OPTIONS,
    STACKS,
    STEPS,
    UNITS,
    assert_all_close,
    assert_declined,
    assert_drop_connect_runs,
    assert_matches_reference,
    assert_plugin_cell_declined,
    assert_plugin_cell_runs,
    assert_stack_runs,
    fast_and_reference,
    make_mask,
    mask_kwargs,
    only_on,
    sequences,
    states_for,
)

pytestmark = only_on("torch", "the torch kernel")

OPTIONS = KERNEL_OPTIONS
LAYERS = {
    "LSTM": {},
    "GRU": {},
    "SimpleRNN": {},
    "SimpleRNN-relu": {"activation": "relu"},
    "LSTM-proj": {"proj_size": 2},
}
CASES = [
    (layer, case, mask)
    for layer in LAYERS
    for case in OPTIONS
    for mask in ("none", "right", "left", "empty_row", "holes")
]


def _make(layer):
    cls = getattr(keras_rnnx, layer.split("-")[0])
    return lambda **kw: cls(UNITS, **LAYERS[layer], **kw)


def _pair(layer, **options):
    return fast_and_reference(_make(layer), **options)


@pytest.mark.parametrize(("layer", "case", "mask_kind"), CASES, ids=["-".join(c) for c in CASES])
def test_fused_matches_reference(layer, case, mask_kind):
    fused, reference = _pair(layer, **OPTIONS[case])
    assert_matches_reference(fused, reference, sequences(), **mask_kwargs(mask_kind))
    assert keras_rnnx.explain(fused).kernel_name == "torch-fused"
    assert keras_rnnx.explain(reference).kernel_name == "reference"


@pytest.mark.parametrize("layer", LAYERS)
def test_fused_with_initial_state_and_inference_dropout(layer):
    fused, reference = _pair(layer, return_state=True, dropout=0.5)
    states = states_for(reference)
    assert_matches_reference(fused, reference, sequences(), initial_state=states, training=False)


@pytest.mark.parametrize("layer", ("GRU", "SimpleRNN"))
def test_fused_training_input_dropout_uses_the_same_seeded_masks(layer):
    fused, reference = _pair(layer, return_sequences=True, dropout=0.5, seed=11)
    x = sequences()
    a, b = fused(x, training=True), reference(x, training=True)
    assert_all_close([to_numpy(a)], [to_numpy(b)], "training outputs")
    assert keras_rnnx.explain(fused).kernel_name == "torch-fused"


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
        ("GRU", {"reset_after": False}, "none", "reset_after=False"),
        ("LSTM", {"recurrent_activation": "hard_sigmoid"}, "none", "recurrent_activation"),
        ("SimpleRNN", {"activation": "elu"}, "none", "activation is not tanh or relu"),
        ("GRU", {"unroll": True}, "none", "unroll=True"),
    ],
)
def test_declines_with_a_reason(layer, options, mask_kind, reason):
    cls = getattr(keras_rnnx, layer)
    auto, reference = fast_and_reference(lambda **kw: cls(UNITS, **kw), **options)
    x = sequences()
    assert_matches_reference(auto, reference, x, **mask_kwargs(mask_kind))
    assert_declined(auto, "torch-fused", reason, ran="reference")
    with pytest.raises(ValueError, match=reason):
        cls(UNITS, use_cudnn=True, **options)(x, **mask_kwargs(mask_kind))


def test_recurrent_dropout_declines_only_in_training():
    layer = keras_rnnx.GRU(UNITS, recurrent_dropout=0.3)
    x = sequences()
    layer(x, training=False)
    assert keras_rnnx.explain(layer).kernel_name == "torch-fused"
    layer(x, training=True)
    assert keras_rnnx.explain(layer).kernel_name == "reference"


BIDIRECTIONAL = [
    (layer, merge_mode, return_state)
    for layer in ("LSTM", "GRU", "SimpleRNN-relu", "LSTM-proj")
    for merge_mode in ("concat", "ave", None)
    for return_state in (False, True)
]


def _bidirectional(layer, merge_mode, **options):
    make = _make(layer)
    return lambda **kw: keras_rnnx.Bidirectional(make(**options, **kw), merge_mode=merge_mode)


@pytest.mark.parametrize(("layer", "merge_mode", "return_state"), BIDIRECTIONAL)
def test_bidirectional_runs_both_directions_in_one_call(layer, merge_mode, return_state):
    options = {"return_sequences": True, "return_state": return_state}
    fused, reference = fast_and_reference(_bidirectional(layer, merge_mode, **options))
    assert_matches_reference(fused, reference, sequences())
    selection = keras_rnnx.explain(fused)
    assert (
        selection["forward"].kernel_name
        == selection["backward"].kernel_name
        == "torch-fused-bidirectional"
    )
    assert keras_rnnx.explain(reference)["forward"].kernel_name == "reference"


def test_bidirectional_kernel_with_initial_state_and_stateful_states():
    make = _bidirectional("LSTM", "sum", return_state=True, stateful=True)
    fused, reference = fast_and_reference(make)
    states = states_for(reference.forward_layer) + states_for(reference.backward_layer, seed=4)
    assert_matches_reference(fused, reference, sequences(), initial_state=states)
    for a, b in zip(fused.states, reference.states):
        assert_all_close([to_numpy(a)], [to_numpy(b)], "stateful states")


@pytest.mark.parametrize(
    ("mask_kind", "options", "reason"),
    [
        ("right", {}, "a mask"),
        ("none", {"dropout": 0.3, "training": True}, "input dropout in training"),
    ],
)
def test_bidirectional_falls_back_to_a_kernel_per_direction(mask_kind, options, reason):
    dropout = options.get("dropout", 0.0)
    fused, reference = fast_and_reference(
        _bidirectional("GRU", "concat", return_sequences=True, dropout=dropout, seed=5)
    )
    x, kwargs = sequences(), {**mask_kwargs(mask_kind), "training": options.get("training")}
    got, want = to_numpy(fused(x, **kwargs)), to_numpy(reference(x, **kwargs))
    assert_all_close([got], [want], "outputs")
    for selection in keras_rnnx.explain(fused).values():
        assert selection.kernel_name == "torch-fused"
        name, why = selection.passed_over[0]
        assert name == "torch-fused-bidirectional" and why.startswith(reason)


@pytest.mark.skipif(
    KERAS_VERSION < (3, 15),
    reason="a whole-graph torch.compile of a Keras layer needs Keras 3.15: an older Keras's "
    "tree flattening (optree) breaks the graph before any kernel runs",
)
@pytest.mark.parametrize("mask_kind", ("none", "right", "left", "holes"))
def test_torch_compile_traces_the_fused_kernel_whole(mask_kind):
    import torch

    fused, reference = _pair("LSTM", return_sequences=True, return_state=True)
    x, kwargs = torch.tensor(sequences()), mask_kwargs(mask_kind)
    if "mask" in kwargs:
        kwargs["mask"] = torch.tensor(kwargs["mask"])
    compiled = torch.compile(lambda t: fused(t, **kwargs), backend="eager", fullgraph=True)
    got = [to_numpy(t) for t in compiled(x)]
    assert_all_close(got, [to_numpy(t) for t in reference(x, **kwargs)], "compiled")
    assert keras_rnnx.explain(fused).kernel_name == "torch-fused"


@pytest.mark.parametrize("layer", ("GRU", "SimpleRNN-relu", "LSTM-proj"))
@pytest.mark.parametrize("mask_kind", ("right", "left", "empty_row", "holes"))
@pytest.mark.parametrize(
    "case", ("sequences_state", "backwards", "zero_output", "zero_output_last")
)
def test_inference_without_autograd_runs_packed_sequences(monkeypatch, layer, mask_kind, case):
    import torch

    from keras_rnnx.kernels.backends import torch as kernel

    runs = []
    packed = kernel._packed
    monkeypatch.setattr(kernel, "_packed", lambda *a: runs.append(1) or packed(*a))
    fused, reference = _pair(layer, **OPTIONS[case])
    x, kwargs = sequences(), mask_kwargs(mask_kind)
    with torch.no_grad():
        got = [to_numpy(t) for t in keras.tree.flatten(fused(x, **kwargs))]
    want = [to_numpy(t) for t in keras.tree.flatten(reference(x, **kwargs))]
    assert_all_close(got, want, "outputs without autograd")
    assert runs


@pytest.mark.parametrize("layer", ("LSTM", "GRU", "SimpleRNN"))
@pytest.mark.parametrize("mask_kind", ("none", "left"))
def test_a_plugin_cell_with_a_fused_spec_runs_fused(layer, mask_kind):
    assert_plugin_cell_runs(layer, "torch-fused", mask_kind)


def test_a_plugin_cell_without_a_fused_spec_runs_the_loop():
    assert_plugin_cell_declined("GRU", "torch-fused", "reference", with_spec=False)


@pytest.mark.parametrize("policy", MIXED_TOLERANCE)
@pytest.mark.parametrize("mask_kind", ("none", "left"))
@pytest.mark.parametrize("layer", LAYERS)
def test_fused_runs_mixed_precision(layer, mask_kind, policy):
    fused, reference = _pair(layer, dtype=policy, return_sequences=True, return_state=True)
    x, tolerance = sequences(), MIXED_TOLERANCE[policy]
    assert_matches_reference(fused, reference, x, tolerance, **mask_kwargs(mask_kind))
    assert keras_rnnx.explain(fused).kernel_name == "torch-fused"


def test_fused_runs_a_float16_layer_and_a_mixed_bidirectional():
    # torch has no float16 QR on CPU, which Keras's orthogonal initializer uses.
    layer = keras_rnnx.GRU(
        UNITS, dtype="float16", recurrent_initializer="glorot_uniform", return_sequences=True
    )
    assert to_numpy(layer(sequences())).dtype == np.float16
    assert keras_rnnx.explain(layer).kernel_name == "torch-fused"
    policy = "mixed_bfloat16"
    bidirectional = keras_rnnx.Bidirectional(keras_rnnx.LSTM(UNITS, dtype=policy), dtype=policy)
    bidirectional(sequences())
    assert keras_rnnx.explain(bidirectional)["forward"].kernel_name == "torch-fused-bidirectional"


STACK_CASES = [
    (stack, case, mask)
    for stack in STACKS
    for case in STACK_OPTIONS
    for mask in ("none", "left", "empty_row", "holes")
]


@pytest.mark.parametrize(
    ("stack", "case", "mask_kind"), STACK_CASES, ids=["-".join(c) for c in STACK_CASES]
)
def test_stacked_cells_run_fused(stack, case, mask_kind):
    assert_stack_runs(stack, "torch-fused", mask_kind, **KERNEL_OPTIONS[case])


def test_stacked_cells_with_initial_state_and_training_input_dropout():
    def make(**kw):
        cells = [
            keras_rnnx.LSTMCell(4, dropout=0.5, seed=1),
            keras_rnnx.GRUCell(UNITS, dropout=0.3),
        ]
        return keras_rnnx.RNN(cells, return_sequences=True, return_state=True, **kw)

    fused, reference = fast_and_reference(make)
    states = states_for(reference)
    for training in (False, True):
        keras.utils.set_random_seed(7)
        got = fused(sequences(), initial_state=states, training=training)
        keras.utils.set_random_seed(7)
        want = reference(sequences(), initial_state=states, training=training)
        assert_all_close(
            [to_numpy(t) for t in got], [to_numpy(t) for t in want], f"training={training}"
        )
    assert keras_rnnx.explain(fused).kernel_name == "torch-fused"


def test_stacked_cells_decline_for_a_cell_without_a_spec_or_recurrent_dropout():
    from tests.helpers.custom_cells import MinimalCell

    custom = keras_rnnx.RNN([keras_rnnx.LSTMCell(4), MinimalCell(UNITS)])
    custom(sequences())
    assert_declined(custom, "torch-fused", "no fused kernel for MinimalCell", ran="reference")
    dropping = keras_rnnx.RNN([keras_rnnx.GRUCell(4), keras_rnnx.GRUCell(3, recurrent_dropout=0.2)])
    dropping(sequences(), training=True)
    assert_declined(dropping, "torch-fused", "recurrent_dropout > 0", ran="reference")


def test_stateful_stack_and_bidirectional_stack_run_fused():
    stateful = keras_rnnx.RNN(
        [keras_rnnx.LSTMCell(4), keras_rnnx.LSTMCell(UNITS)], stateful=True, return_state=True
    )
    first = stateful(sequences())
    second = stateful(sequences())
    assert not np.allclose(to_numpy(first[0]), to_numpy(second[0]))  # the states carried
    assert keras_rnnx.explain(stateful).kernel_name == "torch-fused"
    bidirectional = keras_rnnx.Bidirectional(
        keras_rnnx.RNN([keras_rnnx.GRUCell(4), keras_rnnx.GRUCell(UNITS)], return_sequences=True)
    )
    bidirectional(sequences(), mask=make_mask("left"))
    selection = keras_rnnx.explain(bidirectional)
    assert selection["forward"].kernel_name == selection["backward"].kernel_name == "torch-fused"


@pytest.mark.parametrize("mask_kind", ("none", "left"))
@pytest.mark.parametrize("layer", ("LSTM", "GRU", "SimpleRNN", "LSTM-proj"))
def test_recurrent_kernel_dropout_runs_fused_in_training(layer, mask_kind):
    name, *_ = layer.split("-")
    assert_drop_connect_runs(name, "torch-fused", mask_kind, **LAYERS.get(layer, {}))


def test_recurrent_dropout_in_training_points_to_recurrent_kernel_dropout():
    layer = keras_rnnx.GRU(UNITS, recurrent_dropout=0.3)
    layer(sequences(), training=True)
    assert_declined(layer, "torch-fused", "recurrent_kernel_dropout", ran="reference")
