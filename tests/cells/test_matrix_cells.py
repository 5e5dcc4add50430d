"""GLA, mLSTM, Mamba-2, DeltaNet and Gated DeltaNet against NumPy
transcriptions of their papers' step equations (the layers run the chunkwise
kernels; the step loop is held to them in `tests/kernels/test_chunkwise.py`)."""

from __future__ import annotations

import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import to_numpy
from tests.helpers.oracle import assert_all_close, numpy_sigmoid

HEADS, KEY, VALUE, STEPS, FEATURES = 2, 4, 3, 40, 5
TOLERANCE = 1e-4


def _inputs(seed=0):
    return np.random.RandomState(seed).randn(2, STEPS, FEATURES).astype("float32")


def _randomized(layer, seed=1, scale=0.5):
    """Random weights (the mLSTM's gates start at zero, which would leave them
    constant over time)."""
    rng = np.random.RandomState(seed)
    layer.set_weights([scale * rng.randn(*w.shape).astype("float32") for w in layer.get_weights()])
    return {
        w.path.split("/")[-1]: w.numpy() if hasattr(w, "numpy") else to_numpy(w)
        for w in layer.weights
    }


def _log_sigmoid(x):
    return -np.logaddexp(0, -x)


def _softplus(x):
    return np.logaddexp(0, x)


def _silu(x):
    return x * numpy_sigmoid(x)


def _rms_norm(x, scale, epsilon):
    return x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + epsilon) * scale


def _heads(x, dim):
    return x.reshape(*x.shape[:-1], -1, dim)


def _run(layer, x):
    outputs = layer(x)
    return [to_numpy(t) for t in outputs]


def test_gla_is_the_papers():
    layer = keras_rnnx.GLA(HEADS, KEY, VALUE, return_sequences=True, return_state=True)
    x = _inputs()
    layer(x)
    w = _randomized(layer)
    y, state = _run(layer, x)

    S = np.zeros((2, HEADS, KEY, VALUE))
    want = []
    for t in range(STEPS):
        z = x[:, t] @ w["kernel"]
        q, k, v = np.split(z, [HEADS * KEY, 2 * HEADS * KEY], axis=-1)
        q, k, v = _heads(q, KEY) / np.sqrt(KEY), _heads(k, KEY), _heads(v, VALUE)
        # α_t = σ(x W_α1 W_α2 + b)^(1/τ), τ = 16.
        alpha = numpy_sigmoid(x[:, t] @ w["gate_kernel"] @ w["gate_projection"] + w["gate_bias"])
        alpha = _heads(alpha ** (1 / 16), KEY)
        S = alpha[..., None] * S + k[..., :, None] * v[..., None, :]
        o = np.einsum("bhk,bhkv->bhv", q, S)
        o = _rms_norm(o, w["norm_scale"], 1e-5).reshape(2, -1)
        want.append(o * _silu(x[:, t] @ w["output_gate_kernel"] + w["output_gate_bias"]))
    assert_all_close([y, state], [np.stack(want, 1), S], "GLA", TOLERANCE, TOLERANCE)


@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
def test_mlstm_is_the_papers(forget_gate):
    layer = keras_rnnx.mLSTM(
        HEADS, KEY, VALUE, forget_gate=forget_gate, return_sequences=True, return_state=True
    )
    x = _inputs(1)
    layer(x)
    w = _randomized(layer)
    y, C_out, n_out, m_out = _run(layer, x)

    # xLSTM's eq. 19-27, with the stabiliser m (its appendix) and m_0 = 0.
    C = np.zeros((2, HEADS, KEY, VALUE))
    n = np.zeros((2, HEADS, KEY))
    m = np.zeros((2, HEADS))
    want = []
    for t in range(STEPS):
        z = x[:, t] @ w["kernel"]
        q, k, v = np.split(z, [HEADS * KEY, 2 * HEADS * KEY], axis=-1)
        q, k, v = _heads(q, KEY) / np.sqrt(KEY), _heads(k, KEY), _heads(v, VALUE)
        i_tilde, f_tilde = np.split(x[:, t] @ w["gate_kernel"] + w["gate_bias"], 2, axis=-1)
        log_f = _log_sigmoid(f_tilde) if forget_gate == "sigmoid" else f_tilde
        m_new = np.maximum(log_f + m, i_tilde)
        f = np.exp(log_f + m - m_new)[..., None]
        i = np.exp(i_tilde - m_new)[..., None]
        C = f[..., None] * C + i[..., None] * k[..., :, None] * v[..., None, :]
        n = f * n + i * k
        m = m_new
        h = np.einsum("bhk,bhkv->bhv", q, C)
        h = h / (np.maximum(np.abs(np.sum(n * q, -1, keepdims=True)), np.exp(-m)[..., None]) + 1e-6)
        h = _rms_norm(h, w["norm_scale"], 1e-5).reshape(2, -1)
        want.append(numpy_sigmoid(x[:, t] @ w["output_gate_kernel"] + w["output_gate_bias"]) * h)
    assert_all_close(
        [y, C_out, n_out, m_out], [np.stack(want, 1), C, n, m], "mLSTM", TOLERANCE, TOLERANCE
    )


def test_mamba2_is_the_papers():
    layer = keras_rnnx.Mamba2(HEADS, VALUE, state_dim=KEY, return_sequences=True, return_state=True)
    x = _inputs(2)
    layer(x)
    w = _randomized(layer)
    y, state = _run(layer, x)

    width = HEADS * VALUE
    h = np.zeros((2, HEADS, KEY, VALUE))
    want = []
    for t in range(STEPS):
        z = x[:, t] @ w["kernel"]
        u, B, C, dt = np.split(z, [width, width + KEY, width + 2 * KEY], axis=-1)
        u = _heads(u, VALUE)
        dt = _softplus(dt + w["dt_bias"])  # (batch, heads)
        A = -np.exp(w["A_log"])
        # h_t = exp(Δ A) h + B (Δ u)ᵀ, y = hᵀ C + D u.
        h = (
            np.exp(dt * A)[..., None, None] * h
            + B[:, None, :, None] * (dt[..., None] * u)[:, :, None]
        )
        out = np.einsum("bhnp,bn->bhp", h, C) + w["D"][:, None] * u
        out = out.reshape(2, -1) * _silu(x[:, t] @ w["gate_kernel"])
        want.append(_rms_norm(out, w["norm_scale"], 1e-5))
    assert_all_close([y, state], [np.stack(want, 1), h], "Mamba2", TOLERANCE, TOLERANCE)


def _l2(x):
    return x / np.sqrt(np.sum(x**2, axis=-1, keepdims=True) + 1e-6)


@pytest.mark.parametrize("gated", [False, True])
def test_delta_nets_are_the_papers(gated):
    make = keras_rnnx.GatedDeltaNet if gated else keras_rnnx.DeltaNet
    layer = make(HEADS, KEY, VALUE, return_sequences=True, return_state=True)
    x = _inputs(3)
    layer(x)
    w = _randomized(layer)
    y, state = _run(layer, x)

    S = np.zeros((2, HEADS, KEY, VALUE))
    want = []
    for t in range(STEPS):
        q, k, v = np.split(_silu(x[:, t] @ w["kernel"]), [HEADS * KEY, 2 * HEADS * KEY], -1)
        q, k, v = _l2(_heads(q, KEY)) / np.sqrt(KEY), _l2(_heads(k, KEY)), _heads(v, VALUE)
        beta = numpy_sigmoid(x[:, t] @ w["beta_kernel"] + w["beta_bias"])[..., None, None]
        alpha = np.ones_like(beta)
        if gated:
            dt = _softplus(x[:, t] @ w["decay_kernel"] + w["dt_bias"])
            alpha = np.exp(-np.exp(w["A_log"]) * dt)[..., None, None]
        # S_t = α_t (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ, o_t = S_tᵀ q_t.
        eye = np.eye(KEY)
        kk = k[..., :, None] * k[..., None, :]
        S = alpha * np.einsum("bhij,bhjv->bhiv", eye - beta * kk, S)
        S = S + beta * k[..., :, None] * v[..., None, :]
        o = _rms_norm(np.einsum("bhkv,bhk->bhv", S, q), w["norm_scale"], 1e-5).reshape(2, -1)
        if gated:
            o = o * _silu(x[:, t] @ w["output_gate_kernel"] + w["output_gate_bias"])
        want.append(o)
    name = make.__name__
    assert_all_close([y, state], [np.stack(want, 1), S], name, TOLERANCE, TOLERANCE)


def test_mlstm_mamba2_and_gated_deltanet_start_as_their_papers():
    mlstm = keras_rnnx.mLSTM(4, KEY)
    mlstm(_inputs())
    bias = to_numpy(mlstm.cell.gate_bias)
    np.testing.assert_allclose(bias, [0, 0, 0, 0, 3, 4, 5, 6])
    assert not np.any(to_numpy(mlstm.cell.gate_kernel))
    mamba = keras_rnnx.Mamba2(8, VALUE)
    mamba(_inputs())
    A = np.exp(to_numpy(mamba.cell.A_log))
    dt = _softplus(to_numpy(mamba.cell.dt_bias))
    assert np.all((A >= 1) & (A <= 16)) and np.all((dt >= 0.001 - 1e-6) & (dt <= 0.1 + 1e-6))
    np.testing.assert_array_equal(to_numpy(mamba.cell.D), np.ones(8))
    gated = keras_rnnx.GatedDeltaNet(8, KEY)
    gated(_inputs())
    A = np.exp(to_numpy(gated.cell.A_log))
    dt = _softplus(to_numpy(gated.cell.dt_bias))
    assert np.all((A > 0) & (A <= 16)) and np.all((dt >= 0.001 - 1e-6) & (dt <= 0.1 + 1e-6))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: keras_rnnx.GLA(0, 4), "`heads` to be a positive integer"),
        (lambda: keras_rnnx.GLACell(2, 4, gate_normalizer=0), "`gate_normalizer` to be a positive"),
        (lambda: keras_rnnx.mLSTM(2, 4, forget_gate="tanh"), "`forget_gate` to be one of"),
        (lambda: keras_rnnx.Mamba2(2, 4, dt_min=0.2), "0 < `dt_min` < `dt_max`"),
        (lambda: keras_rnnx.GLA(2, 4, chunk_size=0), "`chunk_size` to be a positive integer"),
        (lambda: keras_rnnx.DeltaNet(2, 0), "`key_dim` to be a positive integer"),
        (lambda: keras_rnnx.GatedDeltaNet(2, 4, dt_max=0), "0 < `dt_min` < `dt_max`"),
    ],
)
def test_bad_options_are_errors_naming_them(make, message):
    with pytest.raises(ValueError, match=message):
        make()
