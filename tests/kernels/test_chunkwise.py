"""The chunkwise kernel against the step loop (the reference kernel): outputs,
states and gradients, over masks, `go_backwards`, chunk sizes that do and do
not divide the length, initial states, resets, stacks and `Bidirectional`."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest

import keras_rnnx
from keras_rnnx.kernels import chunks, chunkwise
from tests.helpers.backend_utils import BACKEND, to_numpy
from tests.helpers.oracle import (
    BATCH,
    FEATURES,
    MASK_KINDS,
    assert_all_close,
    assert_matches_reference,
    fast_and_reference,
    mask_kwargs,
    sequences,
    states_for,
)

# Selection's own rule, before the fixture below replaces it.
LOOP_IS_FASTER = chunkwise.loop_is_faster


@pytest.fixture(autouse=True)
def chunks_everywhere(monkeypatch):
    """The chunks run here on every backend, also where the loop infers faster."""
    monkeypatch.setattr(chunkwise, "loop_is_faster", lambda call: None)


# The chunks sum in another order than the loop's steps: float32's rounding
# over a few steps, for outputs and gradients alike.
TOLERANCE = 1e-4

# Small heads; chunks of 4 over the oracle's 6 steps: two chunks, the second
# filled with masked steps.
MAKERS = {
    "GLA": lambda **kw: keras_rnnx.GLA(2, 4, 3, **kw),
    "mLSTM": lambda **kw: keras_rnnx.mLSTM(2, 4, 3, **kw),
    "mLSTM_exp": lambda **kw: keras_rnnx.mLSTM(2, 4, 3, forget_gate="exp", **kw),
    "Mamba2": lambda **kw: keras_rnnx.Mamba2(2, 3, state_dim=4, **kw),
    "DeltaNet": lambda **kw: keras_rnnx.DeltaNet(2, 4, 3, **kw),
    "GatedDeltaNet": lambda **kw: keras_rnnx.GatedDeltaNet(2, 4, 3, **kw),
}
LAYERS = {name: functools.partial(make, chunk_size=4) for name, make in MAKERS.items()}

OPTIONS = {
    "sequences_state": {"return_sequences": True, "return_state": True},
    "backwards": {"go_backwards": True, "return_sequences": True, "return_state": True},
    "zero_output": {"zero_output_for_mask": True, "return_sequences": True},
    "last": {"return_state": True},
}

# Every pair of layer, options and mask kind, though not every triple (as the
# scan's test): the kernel's paths meet in pairs.
CASES = [
    (layer, list(OPTIONS)[(i + j) % len(OPTIONS)], mask_kind)
    for i, layer in enumerate(LAYERS)
    for j, mask_kind in enumerate(MASK_KINDS)
]


def _random_weights(*layers, seed=0, scale=0.5):
    """The same random weights in each layer: the gates' default zeros (the
    mLSTM's) would leave them constant over time."""
    rng = np.random.RandomState(seed)
    weights = [scale * rng.randn(*w.shape).astype("float32") for w in layers[0].get_weights()]
    for layer in layers:
        layer.set_weights(weights)


def _pair(make, seed=0, scale=0.5, **options):
    fast, reference = fast_and_reference(make, **options)
    _random_weights(fast, reference, seed=seed, scale=scale)
    return fast, reference


@pytest.mark.parametrize(("layer", "options", "mask_kind"), CASES)
def test_chunkwise_matches_the_step_loop(layer, options, mask_kind):
    fast, reference = _pair(LAYERS[layer], **OPTIONS[options])
    assert_matches_reference(fast, reference, sequences(), TOLERANCE, **mask_kwargs(mask_kind))
    assert keras_rnnx.explain(fast).kernel_name == "chunkwise"


@pytest.mark.parametrize("layer", LAYERS)
def test_initial_states_and_resets_match_the_step_loop(layer):
    fast, reference = _pair(LAYERS[layer], return_sequences=True, return_state=True)
    reset = np.random.RandomState(4).rand(BATCH, 6) > 0.6
    kwargs = {"initial_state": states_for(fast), "reset": reset, **mask_kwargs("holes")}
    assert_matches_reference(fast, reference, sequences(), TOLERANCE, **kwargs)


@pytest.mark.parametrize(
    ("layer", "steps", "chunk_size"),
    [
        ("GLA", 37, None),  # one chunk of 48, its length rounded up
        ("GLA", 37, 16),  # chunks that do not divide the length
        ("GLA", 40, 20),  # chunks that do, filled to 32 steps for their halves
        ("mLSTM", 37, 5),
        ("mLSTM", 130, None),  # chunks of 64, and a third mostly filled
        ("Mamba2", 48, 16),
        ("DeltaNet", 37, 5),  # solved in blocks of a power of two, filled
        ("GatedDeltaNet", 130, None),
        ("GatedDeltaNet", 40, 12),
    ],
)
def test_any_length_and_chunk_size_match_the_step_loop(layer, steps, chunk_size):
    make = functools.partial(MAKERS[layer], chunk_size=chunk_size)
    fast, reference = _pair(make, return_sequences=True, return_state=True)
    x = sequences(1, (2, steps, FEATURES))
    assert_matches_reference(
        fast, reference, x, TOLERANCE, **mask_kwargs("right", batch=2, steps=steps)
    )


def test_a_strong_decay_per_key_stays_exact():
    # A GLA decay far from 1 (temperature 1, large gate weights: down to
    # exp(-20) a step): no factor of the scores overflows.
    def make(**kw):
        return keras_rnnx.GLA(2, 4, 3, gate_normalizer=1.0, chunk_size=32, **kw)

    fast, reference = _pair(make, return_sequences=True, scale=2.0)
    x = sequences(2, (2, 64, FEATURES))
    assert_all_close([to_numpy(fast(x))], [to_numpy(reference(x))], "outputs", TOLERANCE, TOLERANCE)


@pytest.mark.parametrize("layer", ["GLA", "GatedDeltaNet"])
def test_stacked_and_bidirectional_layers_run_the_kernel_both_ways(layer):
    def make(**kw):
        return keras_rnnx.Bidirectional(MAKERS[layer](chunk_size=4, return_sequences=True, **kw))

    fast, reference = _pair(make)
    assert_matches_reference(fast, reference, sequences(), TOLERANCE, **mask_kwargs("left"))
    assert keras_rnnx.explain(fast.forward_layer).kernel_name == "chunkwise"
    assert keras_rnnx.explain(fast.backward_layer).kernel_name == "chunkwise"


@pytest.mark.parametrize("layer", ["mLSTM", "GatedDeltaNet"])
def test_stateful_halves_equal_the_whole_sequence(layer):
    x = sequences(shape=(BATCH, 8, FEATURES))
    whole = MAKERS[layer](return_sequences=True)
    halves = MAKERS[layer](return_sequences=True, stateful=True)
    whole(x)
    _random_weights(whole)
    expected = to_numpy(whole(x))
    halves(x[:, :4])
    halves.set_weights(whole.get_weights())
    halves.reset_state()
    got = np.concatenate([to_numpy(halves(x[:, :4])), to_numpy(halves(x[:, 4:]))], axis=1)
    assert_all_close([got], [expected], "stateful halves", TOLERANCE, TOLERANCE)


def test_the_kernel_says_why_it_declines():
    stacked = keras_rnnx.RNN([keras_rnnx.GLACell(2, 4), keras_rnnx.GLACell(2, 4)])
    stacked(sequences())
    passed = dict(keras_rnnx.explain(stacked).passed_over)
    assert passed["chunkwise"] == "StackedRNNCells has no matrix state"
    unrolled = keras_rnnx.Mamba2(2, 3, unroll=True)
    unrolled(sequences())
    passed = dict(keras_rnnx.explain(unrolled).passed_over)
    assert passed["chunkwise"] == "unroll=True asks for the unrolled loop"


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda: keras_rnnx.GLA(2, 4), "a decay per key dimension"),
        (lambda: keras_rnnx.GatedDeltaNet(2, 4), "the delta rule"),
    ],
)
def test_the_loop_infers_where_it_is_faster(monkeypatch, make, what):
    monkeypatch.setattr(chunkwise, "loop_is_faster", LOOP_IS_FASTER)
    x = sequences()
    layer, mlstm = make(), keras_rnnx.mLSTM(2, 4)
    layer(x), mlstm(x)
    if BACKEND == "jax" and __import__("jax").default_backend() == "cpu":
        # Inference by the loop, and why.
        assert keras_rnnx.explain(layer).kernel_name == "reference"
        passed = dict(keras_rnnx.explain(layer).passed_over)
        assert passed["chunkwise"] == f"on JAX's CPU the compiled step loop infers {what} faster"
    else:
        assert keras_rnnx.explain(layer).kernel_name == "chunkwise"
    assert keras_rnnx.explain(mlstm).kernel_name == "chunkwise"  # a decay per head
    layer(x, training=True)  # a train step: the chunks, everywhere
    assert keras_rnnx.explain(layer).kernel_name == "chunkwise"


def test_a_users_matrix_cell_runs_the_kernel():
    import math

    from keras import ops

    class Decaying(keras_rnnx.MatrixRecurrentCell):
        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], 3 * self.heads * 4))

        def gates(self, inputs):
            q, k, v = ops.split(ops.matmul(inputs, self.kernel), 3, axis=-1)
            shape = (*q.shape[:-1], self.heads, 4)
            q, k, v = (ops.reshape(t, shape) for t in (q, k, v))
            return keras_rnnx.MatrixGates(q, k, v, ops.full_like(q[..., :1], math.log(0.9)))

    def make(**kw):
        return keras_rnnx.RNN(Decaying(2, 4, chunk_size=4), **kw)

    fast, reference = _pair(make, return_sequences=True)
    assert_matches_reference(fast, reference, sequences(), TOLERANCE, **mask_kwargs("right"))
    assert keras_rnnx.explain(fast).kernel_name == "chunkwise"


def test_chunk_length_by_shape():
    assert chunks.chunk_length(6, None) == 16
    assert chunks.chunk_length(37, None) == 48
    assert chunks.chunk_length(4096, None) == chunks.CHUNK
    assert chunks.chunk_length(4096, 100) == 100


@pytest.mark.parametrize("steps", (1, 5, 130))
def test_the_states_before_each_step_are_the_recurrences(steps):
    """`Recurrence.states_before`, which carries the states across chunks:
    `h0`, then each step's state but the last, which comes apart (steps past
    `sequence.CHUNK` go by chunks of steps on torch and TensorFlow)."""
    from keras_rnnx.kernels.sequence import Recurrence

    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.5, 1.0, (2, 2, steps, 3)).astype("float32")
    h0 = rng.normal(size=(2, 3)).astype("float32")
    h, want = h0, []
    for t in range(steps):
        want.append(h)
        h = a[:, t] * h + b[:, t]
    a, b, h0 = (keras.ops.convert_to_tensor(x) for x in (a, b, h0))
    before, last = Recurrence.linear(keras.ops.multiply).states_before(a, b, h0)
    assert_all_close([to_numpy(before), to_numpy(last)], [np.stack(want, 1), h], "the states")
