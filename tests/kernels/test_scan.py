"""The parallel-scan kernel against the step loop (the reference kernel), and
the linear-recurrence cells against NumPy implementations of their papers'
equations."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from keras_rnnx.kernels import scan
from tests.helpers.backend_utils import on_gpu, to_numpy
from tests.helpers.oracle import (
    BATCH,
    FEATURES,
    MASK_KINDS,
    assert_all_close,
    assert_matches_reference,
    fast_and_reference,
    mask_kwargs,
    numpy_sigmoid,
    numpy_steps,
    sequences,
    states_for,
)


@pytest.fixture(autouse=True)
def scan_everywhere(monkeypatch):
    """The scan runs here on every backend, also where the loop is faster."""
    monkeypatch.setattr(scan, "loop_is_faster", lambda: None)


LAYERS = {
    "MinGRU": lambda **kw: keras_rnnx.MinGRU(3, **kw),
    "MinGRU_log": lambda **kw: keras_rnnx.MinGRU(3, log_space=True, **kw),
    "MinLSTM": lambda **kw: keras_rnnx.MinLSTM(3, **kw),
    "MinLSTM_log": lambda **kw: keras_rnnx.MinLSTM(3, log_space=True, **kw),
    "LRU": lambda **kw: keras_rnnx.LRU(3, **kw),
    "RGLRU": lambda **kw: keras_rnnx.RGLRU(4, heads=2, **kw),
}

OPTIONS = {
    "sequences_state": {"return_sequences": True, "return_state": True},
    "backwards": {"go_backwards": True, "return_sequences": True, "return_state": True},
    "zero_output": {"zero_output_for_mask": True, "return_sequences": True},
    "last": {"return_state": True},
}


# Every pair of layer, options and mask kind, though not every triple: the
# scan's paths (identity pairs per layer's algebra, held outputs, reversal)
# meet in pairs, and the 100 triples took minutes on JAX.
CASES = [
    (layer, list(OPTIONS)[(i + j) % len(OPTIONS)], mask_kind)
    for i, layer in enumerate(LAYERS)
    for j, mask_kind in enumerate(MASK_KINDS)
]


@pytest.mark.parametrize(("layer", "options", "mask_kind"), CASES)
def test_parallel_scan_matches_the_step_loop(layer, options, mask_kind):
    fast, reference = fast_and_reference(LAYERS[layer], **OPTIONS[options])
    assert_matches_reference(fast, reference, sequences(), **mask_kwargs(mask_kind))
    assert keras_rnnx.explain(fast).kernel_name == "parallel-scan"


@pytest.mark.parametrize("layer", LAYERS)
def test_initial_states_and_resets_match_the_step_loop(layer):
    fast, reference = fast_and_reference(LAYERS[layer], return_sequences=True, return_state=True)
    reset = np.random.RandomState(4).rand(BATCH, 6) > 0.7
    kwargs = {"initial_state": states_for(fast), "reset": reset, **mask_kwargs("holes")}
    assert_matches_reference(fast, reference, sequences(), **kwargs)


@pytest.mark.parametrize("steps", (1, 2, 7, 64, 257))
def test_any_length_scans_as_the_loop(steps):
    fast, reference = fast_and_reference(LAYERS["LRU"], return_sequences=True)
    x = sequences(shape=(2, steps, FEATURES))
    assert_all_close([to_numpy(fast(x))], [to_numpy(reference(x))], f"{steps} steps", 1e-4, 1e-4)


def test_bidirectional_runs_the_scan_both_ways():
    def make(**kw):
        return keras_rnnx.Bidirectional(keras_rnnx.MinGRU(3, return_sequences=True, **kw))

    fast, reference = fast_and_reference(make)
    assert_matches_reference(fast, reference, sequences(), **mask_kwargs("left"))
    assert keras_rnnx.explain(fast.forward_layer).kernel_name == "parallel-scan"
    assert keras_rnnx.explain(fast.backward_layer).kernel_name == "parallel-scan"


@pytest.mark.parametrize("training", (False, True))
def test_on_jaxs_cpu_the_faster_loop_runs(monkeypatch, training):
    monkeypatch.undo()
    layer = keras_rnnx.MinGRU(3)
    layer(sequences(), training=training)
    passed = dict(keras_rnnx.explain(layer).passed_over)
    if keras.backend.backend() == "jax" and not on_gpu():
        assert passed["parallel-scan"] == "on JAX's CPU the compiled step loop is faster"
    else:
        assert keras_rnnx.explain(layer).kernel_name == "parallel-scan"


def test_the_kernel_says_why_it_declines():
    stacked = keras_rnnx.RNN([keras_rnnx.MinGRUCell(3), keras_rnnx.MinGRUCell(2)])
    stacked(sequences())
    passed = dict(keras_rnnx.explain(stacked).passed_over)
    assert passed["parallel-scan"] == "StackedRNNCells is not a linear recurrence"
    unrolled = keras_rnnx.MinLSTM(3, unroll=True)
    unrolled(sequences())
    assert keras_rnnx.explain(unrolled).kernel_name != "parallel-scan"


def test_a_users_linear_cell_runs_the_scan():
    class Leaky(keras_rnnx.LinearRecurrentCell):
        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units))

        def coefficients(self, inputs):
            b = keras.ops.matmul(inputs, self.kernel)
            return keras.ops.full_like(b, 0.9), b

    fast, reference = fast_and_reference(lambda **kw: keras_rnnx.RNN(Leaky(4), **kw))
    assert_matches_reference(fast, reference, sequences(), **mask_kwargs("right"))
    assert keras_rnnx.explain(fast).kernel_name == "parallel-scan"


def test_stateful_halves_equal_the_whole_sequence():
    x = sequences(shape=(BATCH, 8, FEATURES))
    whole = keras_rnnx.MinLSTM(3, return_sequences=True)
    halves = keras_rnnx.MinLSTM(3, return_sequences=True, stateful=True)
    expected = to_numpy(whole(x))
    halves(x[:, :4])
    halves.set_weights(whole.get_weights())
    halves.reset_state()
    got = np.concatenate([to_numpy(halves(x[:, :4])), to_numpy(halves(x[:, 4:]))], axis=1)
    assert_all_close([got], [expected], "stateful halves")


# ---- the equations, in NumPy ------------------------------------------------


def _g(x):
    return np.where(x >= 0, x + 0.5, numpy_sigmoid(x))


@pytest.mark.parametrize("log_space", (False, True))
def test_min_gru_is_the_papers(log_space):
    layer = keras_rnnx.MinGRU(4, log_space=log_space, return_sequences=True, return_state=True)
    x = sequences()
    y, h = (to_numpy(t) for t in layer(x))
    w, b = layer.get_weights()

    def step(x_t, h):
        k, candidate = np.split(x_t @ w + b, 2, axis=-1)
        z = numpy_sigmoid(k)
        h = (1 - z) * h + z * (_g(candidate) if log_space else candidate)
        return h, h

    want_y, want_h = numpy_steps(step, x, np.zeros((BATCH, 4)))
    assert_all_close([y, h], [want_y, want_h], "minGRU")


@pytest.mark.parametrize("log_space", (False, True))
def test_min_lstm_is_the_papers(log_space):
    layer = keras_rnnx.MinLSTM(4, log_space=log_space, return_sequences=True, return_state=True)
    x = sequences()
    y, h = (to_numpy(t) for t in layer(x))
    w, b = layer.get_weights()

    def step(x_t, h):
        k_f, k_i, candidate = np.split(x_t @ w + b, 3, axis=-1)
        f, i = numpy_sigmoid(k_f), numpy_sigmoid(k_i)
        f, i = f / (f + i), i / (f + i)
        h = f * h + i * (_g(candidate) if log_space else candidate)
        return h, h

    want_y, want_h = numpy_steps(step, x, np.zeros((BATCH, 4)))
    assert_all_close([y, h], [want_y, want_h], "minLSTM")


def test_lru_is_the_papers():
    layer = keras_rnnx.LRU(5, return_sequences=True, return_state=True)
    x = sequences()
    y, state = (to_numpy(t) for t in layer(x))
    nu_log, theta_log, gamma_log, kernel, output_kernel, skip = layer.get_weights()
    lam = np.exp(-np.exp(nu_log) + 1j * np.exp(theta_log))
    gamma = np.exp(gamma_log)
    B = (kernel[:, :5] + 1j * kernel[:, 5:]).T  # (N, H)
    C = (output_kernel[:5] - 1j * output_kernel[5:]).T  # (H, N)

    def step(u, x):
        x = lam * x + gamma * (u @ B.T)
        return (x @ C.T).real + skip * u, x

    want_y, want_x = numpy_steps(step, x, np.zeros((BATCH, 5), complex))
    assert_all_close([y, state], [want_y, np.concatenate([want_x.real, want_x.imag], -1)], "LRU")


def test_rg_lru_is_the_papers():
    layer = keras_rnnx.RGLRU(4, heads=2, return_sequences=True, return_state=True)
    x = sequences()
    layer(x)
    rng = np.random.RandomState(3)
    layer.set_weights([0.5 * rng.randn(*w.shape).astype("float32") for w in layer.get_weights()])
    y, state = (to_numpy(t) for t in layer(x))
    w = {v.path.split("/")[-1]: to_numpy(v) for v in layer.weights}

    def gate(u, name):
        z = np.einsum("bhi,hij->bhj", u.reshape(-1, 2, 2), w[f"{name}_kernel"])
        return numpy_sigmoid(z + w[f"{name}_bias"]).reshape(-1, 4)

    def step(x_t, h):
        u = x_t @ w["kernel"] + w["bias"]
        r, i = gate(u, "a_gate"), gate(u, "input_gate")
        a = (1 / (1 + np.exp(w["a_param"]))) ** (8 * r)  # σ(-Λ)^(8 r)
        h = a * h + np.sqrt(1 - a**2) * (i * u)
        return h, h

    want_y, want_h = numpy_steps(step, x, np.zeros((BATCH, 4)))
    assert_all_close([y, state], [want_y, want_h], "RG-LRU")


def test_rg_lru_starts_on_its_ring():
    cell = keras_rnnx.RGLRUCell(64, heads=4)
    cell.build((None, 3))
    a = np.exp(-np.logaddexp(0, to_numpy(cell.a_param)))
    assert ((a >= 0.9 - 1e-6) & (a <= 0.999 + 1e-6)).all()


def test_lru_starts_stable_and_normalised():
    cell = keras_rnnx.LRUCell(64, r_min=0.4, r_max=0.9, max_phase=np.pi)
    cell.build((None, 3))
    magnitude = np.exp(-np.exp(to_numpy(cell.nu_log)))
    assert ((magnitude >= 0.4 - 1e-6) & (magnitude <= 0.9 + 1e-6)).all()
    assert (np.exp(to_numpy(cell.theta_log)) <= np.pi + 1e-6).all()
    np.testing.assert_allclose(
        np.exp(to_numpy(cell.gamma_log)), np.sqrt(1 - magnitude**2), rtol=1e-5
    )


def test_log_space_stays_finite_over_long_sequences():
    """Forget gates near 1 for 4096 steps: products far below float32's range."""
    layer = keras_rnnx.MinGRU(4, log_space=True, bias_initializer="ones", return_state=True)
    x = np.abs(sequences(shape=(2, 4096, FEATURES)))
    y, h = (to_numpy(t) for t in layer(x))
    assert np.isfinite(y).all() and np.isfinite(h).all() and (h > 0).all()


@pytest.mark.parametrize(
    ("make", "argument"),
    (
        (lambda: keras_rnnx.MinGRUCell(0), "units"),
        (lambda: keras_rnnx.MinLSTMCell(3, log_space="yes"), "log_space"),
        (lambda: keras_rnnx.LRUCell(3, r_min=0.9, r_max=0.5), "r_min"),
        (lambda: keras_rnnx.LRUCell(3, max_phase=7), "max_phase"),
        (lambda: keras_rnnx.RGLRUCell(6, heads=4), "heads"),
        (lambda: keras_rnnx.RGLRU(6, max_radius=1.0), "min_radius"),
        (lambda: keras_rnnx.MinGRU(3, kernel_initializer="nope"), "kernel_initializer"),
    ),
)
def test_bad_arguments_name_the_argument(make, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        make()
