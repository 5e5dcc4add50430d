"""Per-sample resets: `layer(x, reset=r)` equals running each row's segments
(a segment starts where `r` is true) as sequences of their own, from the
layer's initial states."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from keras_rnnx.kernels import chunkwise, scan
from keras_rnnx.kernels.reference import REFERENCE
from tests.helpers.backend_utils import BACKEND, on_gpu, to_numpy
from tests.helpers.custom_cells import MinimalCell
from tests.helpers.oracle import assert_all_close, make_mask, sequences, states_for

LAYERS = {
    "SimpleRNN": lambda **kw: keras_rnnx.SimpleRNN(3, **kw),
    "GRU": lambda **kw: keras_rnnx.GRU(3, **kw),
    "LSTM": lambda **kw: keras_rnnx.LSTM(3, **kw),
    "stacked": lambda **kw: keras_rnnx.RNN([keras_rnnx.GRUCell(2), keras_rnnx.LSTMCell(3)], **kw),
    "custom": lambda **kw: keras_rnnx.RNN(MinimalCell(3), **kw),
    "MinGRU": lambda **kw: keras_rnnx.MinGRU(3, **kw),
    "LRU": lambda **kw: keras_rnnx.LRU(3, **kw),
}
# Matrix-state layers, in chunks of 4 (two per row, resets in both), for the
# test of every kernel that runs resets.
MATRIX_LAYERS = {
    "GLA": lambda **kw: keras_rnnx.GLA(2, 3, chunk_size=4, **kw),
    "mLSTM": lambda **kw: keras_rnnx.mLSTM(2, 3, chunk_size=4, **kw),
    "Mamba2": lambda **kw: keras_rnnx.Mamba2(2, 3, state_dim=2, chunk_size=4, **kw),
}
BATCH, STEPS = 4, 6
# Segment starts: none, one mid-row, several (one at the first step, where a
# reset changes nothing), and every step.
STARTS = [(), (3,), (0, 2, 5), tuple(range(STEPS))]
# The fastest kernel and the reference loop; on JAX without a GPU both are
# the reference loop.
USE_CUDNN = [
    pytest.param("auto", id="fastest"),
    pytest.param(
        False,
        id="reference",
        marks=pytest.mark.skipif(
            BACKEND == "jax" and not on_gpu(),
            reason="the fastest kernel is the reference loop here",
        ),
    ),
]


def _reset():
    reset = np.zeros((BATCH, STEPS), bool)
    for row, starts in enumerate(STARTS):
        reset[row, list(starts)] = True
    return reset


def _segments(row, go_backwards):
    bounds = sorted({0, *STARTS[row], STEPS})
    segments = list(zip(bounds[:-1], bounds[1:]))
    return segments[::-1] if go_backwards else segments


def _per_segment(layer, x, mask, go_backwards):
    """Each row's outputs (in time order) and final states, running each
    segment alone from zeros; the final states are the last processed one's."""
    outputs, finals = [], []
    for row in range(BATCH):
        pieces, final = [None] * STEPS, None
        for start, end in _segments(row, go_backwards):
            kwargs = {} if mask is None else {"mask": mask[row : row + 1, start:end]}
            y, *states = layer(x[row : row + 1, start:end], **kwargs)
            y = to_numpy(y)[0]
            y = y[::-1] if go_backwards else y  # processing order back to time order
            pieces[start:end] = list(y)
            final = [to_numpy(s)[0] for s in keras.tree.flatten(states)]
        outputs.append(np.stack(pieces))
        finals.append(final)
    return np.stack(outputs), [np.stack(f) for f in zip(*finals)]


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("mask_kind", ["none", "holes"])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("use_cudnn", USE_CUDNN)
def test_reset_equals_each_segment_alone(layer, mask_kind, go_backwards, use_cudnn):
    rnn = LAYERS[layer](
        return_sequences=True, return_state=True, go_backwards=go_backwards, use_cudnn=use_cudnn
    )
    x, mask = sequences(0, (BATCH, STEPS, 5)), make_mask(mask_kind, BATCH, STEPS)
    kwargs = {} if mask is None else {"mask": mask}
    y, *states = rnn(x, reset=_reset(), **kwargs)
    y = to_numpy(y)
    y = y[:, ::-1] if go_backwards else y
    want_y, want_states = _per_segment(rnn, x, mask, go_backwards)
    got_states = [to_numpy(s) for s in keras.tree.flatten(states)]
    assert_all_close([y, *got_states], [want_y, *want_states], f"{layer}, mask {mask_kind}")


def test_reset_goes_back_to_zeros_not_to_the_given_initial_state():
    rnn = keras_rnnx.GRU(3, return_sequences=True)
    x = sequences(1, (BATCH, STEPS, 5))
    h0 = np.random.RandomState(2).randn(BATCH, 3).astype("float32")
    got = to_numpy(rnn(x, initial_state=h0, reset=_reset()))
    # Row 1 resets at step 3: from there it is the zero-state run of x[:, 3:].
    tail = to_numpy(rnn(x[1:2, 3:]))[0]
    assert_all_close([got[1, 3:]], [tail], "after the reset")
    head = to_numpy(rnn(x[1:2, :3], initial_state=h0[1:2]))[0]
    assert_all_close([got[1, :3]], [head], "before the reset, from initial_state")


def test_all_false_reset_changes_nothing():
    rnn = keras_rnnx.LSTM(3, return_sequences=True)
    x = sequences(3, (BATCH, STEPS, 5))
    assert_all_close(
        [to_numpy(rnn(x, reset=np.zeros((BATCH, STEPS), bool)))], [to_numpy(rnn(x))], "no reset"
    )


@pytest.mark.parametrize("go_backwards", [False, True])
def test_explain_says_which_kernel_ran_the_resets(go_backwards):
    rnn = keras_rnnx.LSTM(3, go_backwards=go_backwards)
    rnn(sequences(0, (BATCH, STEPS, 5)), reset=_reset())
    selection = keras_rnnx.explain(rnn)
    if BACKEND == "torch" and not go_backwards:
        assert selection.kernel_name == "torch-fused"  # as segments
        return
    assert selection.kernel_name == ("tf-while" if BACKEND == "tensorflow" else "reference")
    if BACKEND == "torch":
        assert "go_backwards" in dict(selection.passed_over)["torch-fused"]


def test_a_kernel_that_does_not_declare_resets_is_passed_over(monkeypatch):
    # A plugin kernel written before resets would run the call as if none
    # were asked for.
    class Unaware:
        name, priority, fused = "unaware", 50, False

        def why_not(self, call):
            return None

        def run(self, call):
            raise AssertionError("selected for a call with resets")

    keras_rnnx.register_kernel(Unaware())
    rnn = keras_rnnx.GRU(3)
    rnn(sequences(0, (BATCH, STEPS, 5)), reset=_reset())
    reasons = dict(keras_rnnx.explain(rnn).passed_over)
    assert "per-sample reset" in reasons["unaware"]


def test_reset_in_a_functional_model_trains():
    x_in = keras.Input((None, 5))
    reset_in = keras.Input((None,), dtype="bool")
    y = keras_rnnx.GRU(3)(x_in, reset=reset_in)
    model = keras.Model([x_in, reset_in], keras.layers.Dense(1)(y))
    model.compile("adam", "mse")
    x = sequences(4, (BATCH, STEPS, 5))
    history = model.fit([x, _reset()], np.ones((BATCH, 1), "float32"), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    rnn = model.layers[2]
    assert_all_close(
        [to_numpy(model.predict_on_batch([x, _reset()]))],
        [to_numpy(model.layers[-1](rnn(x, reset=_reset())))],
        "predict",
    )


def _restart_at_first_steps():
    """`_reset()` with rows 0, 2 and 3 restarting at their first step (row 1
    starts from what it was given)."""
    reset = _reset()
    reset[0, 0] = True
    return reset


def _flat(result):
    return [to_numpy(t) for t in keras.tree.flatten(result)]


@pytest.mark.parametrize("layer", ["GRU", "LSTM", "stacked", "MinGRU", "LRU", *MATRIX_LAYERS])
@pytest.mark.parametrize("given", ["initial_state", "stateful"])
@pytest.mark.parametrize("mask_kind", ["none", "holes"])
def test_every_kernel_that_runs_resets_agrees_with_the_reference_loop(
    layer, given, mask_kind, monkeypatch
):
    # One meaning of a reset, at the first step too: a row restarts from the
    # restart states whatever it was given or carried.
    monkeypatch.setattr(scan, "loop_is_faster", lambda: None)  # the scan runs here too
    monkeypatch.setattr(chunkwise, "loop_is_faster", lambda call: None)  # and the chunks
    rnn = {**LAYERS, **MATRIX_LAYERS}[layer](return_sequences=True, stateful=given == "stateful")
    x, mask = sequences(6, (BATCH, STEPS, 5)), make_mask(mask_kind, BATCH, STEPS)
    rnn(x)  # built; a stateful layer now carries states that are not zeros
    initial_state = states_for(rnn, batch=BATCH) if given == "initial_state" else None
    call = rnn.prepare_call(x, initial_state, mask=mask, reset=_restart_at_first_steps())
    kernels = [
        kernel
        for kernel in keras_rnnx.registered_kernels()
        if kernel is not REFERENCE and getattr(kernel, "resets", False) and not kernel.why_not(call)
    ]
    if not kernels:
        pytest.skip(f"no kernel but the reference loop runs {layer} with resets here")
    want = _flat(REFERENCE.run(call))
    for kernel in kernels:
        assert_all_close(_flat(kernel.run(call)), want, f"{kernel.name}, {layer}, {given}")


@pytest.mark.parametrize("use_cudnn", USE_CUDNN)
@pytest.mark.parametrize("given", ["initial_state", "stateful"])
def test_a_reset_at_the_first_step_restarts_whatever_the_row_was_given(use_cudnn, given):
    rnn = keras_rnnx.LSTM(3, return_sequences=True, stateful=given == "stateful")
    rnn.use_cudnn = use_cudnn
    x = sequences(7, (BATCH, STEPS, 5))
    from_zeros = to_numpy(rnn(x))  # also leaves a stateful layer carrying states
    reset = np.zeros((BATCH, STEPS), bool)
    reset[:, 0] = True
    initial_state = states_for(rnn, batch=BATCH) if given == "initial_state" else None
    got = to_numpy(rnn(x, initial_state=initial_state, reset=reset))
    assert_all_close([got], [from_zeros], f"{keras_rnnx.explain(rnn).kernel_name}, {given}")


@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_a_reset_that_is_not_boolean_is_an_error_naming_it(dtype):
    rnn = keras_rnnx.GRU(3, stateful=True)
    x = sequences(0, (BATCH, STEPS, 5))
    rnn(x)
    before = _flat(rnn.states)
    with pytest.raises(ValueError, match=f"`reset` to be a boolean.*dtype {dtype}"):
        rnn(x, reset=np.full((BATCH, STEPS), 0.3 if dtype == "float32" else 1, dtype))
    assert_all_close(_flat(rnn.states), before, "the states, untouched")


@pytest.mark.parametrize("shape", [(BATCH,), (BATCH, STEPS + 1), (BATCH, STEPS, 1)])
def test_a_reset_of_the_wrong_shape_is_an_error_naming_it(shape):
    rnn = keras_rnnx.GRU(3)
    with pytest.raises(ValueError, match="`reset` shaped"):
        rnn(sequences(0, (BATCH, STEPS, 5)), reset=np.zeros(shape, bool))


@pytest.mark.parametrize("mask_kind", ["none", "holes"])
def test_bidirectional_resets_each_direction(mask_kind):
    layer = keras_rnnx.Bidirectional(keras_rnnx.GRU(3, return_sequences=True))
    x, mask = sequences(5, (BATCH, STEPS, 5)), make_mask(mask_kind, BATCH, STEPS)
    y = to_numpy(layer(x, mask=mask, reset=_reset()))
    forward = to_numpy(layer.forward_layer(x, mask=mask, reset=_reset()))
    backward = to_numpy(layer.backward_layer(x, mask=mask, reset=_reset()))[:, ::-1]
    assert_all_close([y], [np.concatenate([forward, backward], axis=-1)], mask_kind)
    if BACKEND == "torch":  # no bidirectional kernel: it would run no resets
        assert keras_rnnx.explain(layer)["forward"].kernel_name == "torch-fused"
