"""JAX's cuDNN LSTM kernel against the reference kernel: outputs, final states
and gradients, eagerly and under `jax.jit`; and the reasons it declines.

On a GPU these run cuDNN itself. Without one, `cudnn_lstm` is replaced by
`jax.experimental.rnn.lstm_ref` (JAX's own reference for the same call, which
unpacks the flat weight vector by cuDNN's layout), so the weight packing, the
sequence lengths for every kind of mask are checked on every machine.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import to_numpy
from tests.helpers.oracle import (
    KERNEL_OPTIONS,
    MIXED_TOLERANCE,
    STACK_OPTIONS,
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
    stand_in_off_gpu,
    states_for,
)

pytestmark = only_on("jax", "the cuDNN LSTM kernel")

# The masked forward zero-output cases decline here (see test_forward_zero_output...).
OPTIONS = {k: v for k, v in KERNEL_OPTIONS.items() if k not in ("zero_output", "zero_output_last")}
# Left-padded and holed masks run the reference loop inside the same call.
CASES = [(c, m) for c in OPTIONS for m in ("none", "right", "empty_row", "holes")]


def _lstm_ref(x, h0, c0, weights, seq_lengths, *, input_size, hidden_size, bidirectional):
    from jax.experimental import rnn

    unpacked = rnn.unpack_lstm_weights(weights, input_size, hidden_size, 1, bidirectional)
    return rnn.lstm_ref(
        x, h0, c0, *unpacked, seq_lengths, input_size, hidden_size, 1, 0.0, bidirectional
    )


@pytest.fixture
def cudnn(monkeypatch):
    """The kernel's module, with cuDNN replaced by JAX's reference off the GPU."""
    from keras_rnnx.kernels.backends import jax as kernel

    return stand_in_off_gpu(monkeypatch, kernel, "cudnn_lstm", _lstm_ref)


def _pair(**options):
    return fast_and_reference(lambda **kw: keras_rnnx.LSTM(UNITS, **kw), **options)


@pytest.mark.parametrize(("case", "mask_kind"), CASES, ids=["-".join(c) for c in CASES])
def test_cudnn_matches_reference(cudnn, case, mask_kind):
    fused, reference = _pair(**OPTIONS[case])
    assert_matches_reference(fused, reference, sequences(), **mask_kwargs(mask_kind))
    assert keras_rnnx.explain(fused).kernel_name == "jax-cudnn"


def test_cudnn_with_initial_state_and_inference_dropout(cudnn):
    fused, reference = _pair(return_state=True, dropout=0.5)
    kwargs = {"initial_state": states_for(reference), "training": False}
    assert_matches_reference(fused, reference, sequences(), **mask_kwargs("right"), **kwargs)


def test_cudnn_training_input_dropout_uses_the_same_seeded_masks(cudnn):
    fused, reference = _pair(return_sequences=True, dropout=0.5, seed=11)
    x = sequences()
    got, want = fused(x, training=True), reference(x, training=True)
    assert_all_close([to_numpy(got)], [to_numpy(want)], "training outputs")
    assert keras_rnnx.explain(fused).kernel_name == "jax-cudnn"


@pytest.mark.parametrize("mask_kind", ("right", "left", "holes"))
def test_cudnn_under_jit_runs_any_mask(cudnn, mask_kind):
    import jax

    fused, reference = _pair(return_sequences=True, return_state=True)
    trainable = [v.value for v in fused.trainable_variables]
    non_trainable = [v.value for v in fused.non_trainable_variables]

    @jax.jit
    def run(x, mask):
        outputs, _ = fused.stateless_call(trainable, non_trainable, x, mask=mask)
        return outputs

    x, mask = sequences(), make_mask(mask_kind)
    got = [to_numpy(t) for t in run(x, mask)]
    want = [to_numpy(t) for t in reference(x, mask=mask)]
    assert_all_close(got, want, f"jit, {mask_kind} mask")


def test_fit_trains_through_cudnn(cudnn):
    model = keras.Sequential([keras.Input((6, 5)), keras_rnnx.LSTM(UNITS), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x, y = sequences(), np.ones((4, 1), "float32")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=5, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before
    assert keras_rnnx.explain(model.layers[0]).kernel_name == "jax-cudnn"


def _bidirectional(merge_mode, **options):
    return lambda **kw: keras_rnnx.Bidirectional(
        keras_rnnx.LSTM(UNITS, **options, **kw), merge_mode=merge_mode
    )


@pytest.mark.parametrize(("merge_mode", "return_state"), (("concat", False), (None, True)))
def test_bidirectional_runs_both_directions_in_one_call(cudnn, merge_mode, return_state):
    make = _bidirectional(merge_mode, return_sequences=True, return_state=return_state)
    fused, reference = fast_and_reference(make)
    assert_matches_reference(fused, reference, sequences())
    for selection in keras_rnnx.explain(fused).values():
        assert selection.kernel_name == "jax-cudnn-bidirectional"


@pytest.mark.parametrize("mask_kind", ("right", "empty_row", "holes"))
def test_masked_bidirectional_runs_each_direction_on_its_own(cudnn, mask_kind):
    fused, reference = fast_and_reference(_bidirectional("concat", return_sequences=True))
    assert_matches_reference(fused, reference, sequences(), **mask_kwargs(mask_kind))
    selection = keras_rnnx.explain(fused)
    assert selection["backward"].kernel_name == "jax-cudnn"
    # Returning sequences, Bidirectional zeroes masked outputs: see below.
    assert selection["forward"].kernel_name == "reference"
    assert ("jax-cudnn", cudnn.WRONG_GRADIENTS) in selection["forward"].passed_over
    for direction in selection.values():
        assert direction.passed_over[0][0] == "jax-cudnn-bidirectional"


def test_forward_zero_output_for_mask_declines_only_with_a_mask(cudnn):
    layer = keras_rnnx.LSTM(UNITS, return_sequences=True, zero_output_for_mask=True)
    x = sequences()
    layer(x)
    assert keras_rnnx.explain(layer).kernel_name == "jax-cudnn"
    layer(x, **mask_kwargs("right"))
    assert keras_rnnx.explain(layer).kernel_name == "reference"
    assert ("jax-cudnn", cudnn.WRONG_GRADIENTS) in keras_rnnx.explain(layer).passed_over


def test_bidirectional_last_outputs_and_initial_state(cudnn):
    fused, reference = fast_and_reference(_bidirectional("sum", return_state=True))
    states = states_for(reference.forward_layer) + states_for(reference.backward_layer, seed=4)
    assert_matches_reference(fused, reference, sequences(), initial_state=states)
    assert keras_rnnx.explain(fused)["forward"].kernel_name == "jax-cudnn-bidirectional"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: keras_rnnx.GRU(UNITS), "no fused kernel for GRUCell"),
        (lambda: keras_rnnx.LSTM(UNITS, unroll=True), "unroll=True"),
        (lambda: keras_rnnx.LSTM(UNITS, activation="relu"), "activation is not tanh"),
        (lambda: keras_rnnx.LSTM(UNITS, proj_size=2), "proj_size is set"),
    ],
)
def test_declines_with_a_reason(cudnn, make, reason):
    layer = make()
    layer(sequences())
    assert_declined(layer, "jax-cudnn", reason, ran="reference")


def test_without_a_gpu_it_says_so():
    from keras_rnnx.kernels.backends import jax as kernel

    if kernel.on_gpu():
        pytest.skip("this machine has a GPU")
    layer = keras_rnnx.LSTM(UNITS)
    layer(sequences())
    assert ("jax-cudnn", "no GPU (cuDNN's LSTM runs on a CUDA device only)") in (
        keras_rnnx.explain(layer).passed_over
    )
    with pytest.raises(ValueError, match="no GPU"):
        keras_rnnx.LSTM(UNITS, use_cudnn=True)(sequences())


def test_a_plugin_cell_with_an_lstm_spec_runs_cudnn(cudnn):
    assert_plugin_cell_runs("LSTM", "jax-cudnn", "right")


def test_a_gru_spec_is_not_run_by_jax_cudnn(cudnn):
    assert_plugin_cell_declined("GRU", "jax-cudnn", "reference")


@pytest.mark.parametrize("policy", MIXED_TOLERANCE)
@pytest.mark.parametrize("mask_kind", ("none", "right"))
def test_mixed_precision_runs_cudnn_in_float32(cudnn, policy, mask_kind):
    fused, reference = _pair(dtype=policy, return_sequences=True, return_state=True)
    x, tolerance = sequences(), MIXED_TOLERANCE[policy]
    assert_matches_reference(fused, reference, x, tolerance, **mask_kwargs(mask_kind))
    assert keras_rnnx.explain(fused).kernel_name == "jax-cudnn"
    assert fused(x)[0].dtype == policy.removeprefix("mixed_")


def test_mixed_precision_bidirectional_runs_one_cudnn_call(cudnn):
    policy = "mixed_bfloat16"
    fused, reference = fast_and_reference(
        lambda **kw: keras_rnnx.Bidirectional(
            keras_rnnx.LSTM(UNITS, dtype=policy, **kw), dtype=policy
        )
    )
    assert_matches_reference(fused, reference, sequences(), MIXED_TOLERANCE["mixed_bfloat16"])
    assert keras_rnnx.explain(fused)["forward"].kernel_name == "jax-cudnn-bidirectional"


@pytest.mark.parametrize("mask_kind", ("none", "right", "holes"))
@pytest.mark.parametrize("case", STACK_OPTIONS[:3])
def test_stacked_lstm_cells_run_cudnn_layer_by_layer(cudnn, case, mask_kind):
    assert_stack_runs("LSTM-LSTM", "jax-cudnn", mask_kind, **KERNEL_OPTIONS[case])


def test_recurrent_kernel_dropout_runs_cudnn_in_training(cudnn):
    assert_drop_connect_runs("LSTM", "jax-cudnn", "right")
