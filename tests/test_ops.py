"""`keras_rnnx.ops`: the functional ops against NumPy step loops of their
equations, with masks, initial states and gradients; `mlstm` also against
`mlstm_kernels`' own chunkwise function, on torch; the delta rules also
against keras-hub's Qwen3.5 rule, restated, and over 16384 steps."""

from __future__ import annotations

import importlib.util

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import BACKEND, to_numpy
from tests.helpers.oracle import assert_all_close

BATCH, STEPS, HEADS, KEY, VALUE = 2, 45, 2, 4, 3
TOLERANCE = 1e-4
RNG = np.random.RandomState(0)


def _normal(*shape):
    return RNG.randn(*shape).astype("float32")


def _mask():
    mask = np.ones((BATCH, STEPS), bool)
    mask[1, 30:] = False  # right padding
    mask[0, 5:9] = False  # a hole
    return mask


def _numpy_linear_attention(q, k, v, log_decay, S, mask):
    """`S_t = exp(g_t) S_{t-1} + k_t v_tᵀ`, `o_t = S_tᵀ q_t`; a masked step
    keeps the state and outputs zeros."""
    if log_decay.ndim == 3:
        log_decay = log_decay[..., None]
    outputs = []
    for t in range(q.shape[1]):
        new = np.exp(log_decay[:, t])[..., None] * S + k[:, t, :, :, None] * v[:, t, :, None, :]
        S = np.where(mask[:, t, None, None, None], new, S)
        o = np.einsum("bhk,bhkv->bhv", q[:, t], S)
        outputs.append(np.where(mask[:, t, None, None], o, 0.0))
    return np.stack(outputs, 1), S


@pytest.mark.parametrize("per_key", [False, True])
def test_gated_linear_attention_is_its_equations(per_key):
    q, k = _normal(BATCH, STEPS, HEADS, KEY), _normal(BATCH, STEPS, HEADS, KEY)
    v = _normal(BATCH, STEPS, HEADS, VALUE)
    g = -np.abs(_normal(BATCH, STEPS, HEADS, *((KEY,) if per_key else ())))
    s0 = _normal(BATCH, HEADS, KEY, VALUE)
    mask = _mask()
    o, s = keras_rnnx.ops.gated_linear_attention(q, k, v, g, s0, mask=mask, chunk_size=16)
    want = _numpy_linear_attention(q / np.sqrt(KEY), k, v, g, s0, mask)
    assert_all_close([to_numpy(o), to_numpy(s)], want, "GLA op", TOLERANCE, TOLERANCE)


def test_ssd_is_mamba2s_equations():
    x = _normal(BATCH, STEPS, 4, VALUE)
    dt = np.log1p(np.exp(_normal(BATCH, STEPS, 4)))  # positive
    A = -np.exp(_normal(4))
    B, C = _normal(BATCH, STEPS, 2, KEY), _normal(BATCH, STEPS, 2, KEY)  # 2 groups
    D = _normal(4)
    mask = _mask()
    y, h = keras_rnnx.ops.ssd(x, dt, A, B, C, D, mask=mask)
    # Group g serves heads 2g and 2g + 1.
    B4, C4 = (np.repeat(t, 2, axis=2) for t in (B, C))
    o, state = _numpy_linear_attention(
        C4, B4, x * dt[..., None], dt * A, np.zeros((BATCH, 4, KEY, VALUE)), mask
    )
    o = np.where(mask[..., None, None], o + D[:, None] * x, 0.0)
    assert_all_close([to_numpy(y), to_numpy(h)], [o, state], "SSD op", TOLERANCE, TOLERANCE)


def _numpy_mlstm(q, k, v, i, f, mask):
    C = np.zeros((BATCH, HEADS, KEY, VALUE))
    n = np.zeros((BATCH, HEADS, KEY))
    m = np.zeros((BATCH, HEADS))
    outputs = []
    for t in range(STEPS):
        log_f = -np.logaddexp(0, -f[:, t])
        m_new = np.maximum(log_f + m, i[:, t])
        fa, ia = np.exp(log_f + m - m_new)[..., None], np.exp(i[:, t] - m_new)[..., None]
        keep = mask[:, t, None]
        C = np.where(
            keep[..., None, None],
            fa[..., None] * C + ia[..., None] * k[:, t, ..., None] * v[:, t, :, None],
            C,
        )
        n = np.where(keep[..., None], fa * n + ia * k[:, t], n)
        m = np.where(keep, m_new, m)
        qs = q[:, t] / np.sqrt(KEY)
        h = np.einsum("bhk,bhkv->bhv", qs, C)
        h = h / (np.maximum(np.abs((n * qs).sum(-1, keepdims=True)), np.exp(-m)[..., None]) + 1e-6)
        outputs.append(np.where(keep[..., None], h, 0.0))
    return np.stack(outputs, 1), C, n, m


def _mlstm_inputs():
    q, k = _normal(BATCH, STEPS, HEADS, KEY), _normal(BATCH, STEPS, HEADS, KEY)
    v = _normal(BATCH, STEPS, HEADS, VALUE)
    return q, k, v, _normal(BATCH, STEPS, HEADS), _normal(BATCH, STEPS, HEADS) + 2


def test_mlstm_is_its_equations():
    q, k, v, i, f = _mlstm_inputs()
    mask = _mask()
    h, (C, n, m) = keras_rnnx.ops.mlstm(q, k, v, i, f, mask=mask, chunk_size=16)
    want = _numpy_mlstm(q, k, v, i, f, mask)
    got = [to_numpy(t) for t in (h, C, n, m)]
    assert_all_close(got, list(want), "mLSTM op", TOLERANCE, TOLERANCE)


@pytest.mark.skipif(BACKEND != "torch", reason="mlstm_kernels is a torch (and JAX) package")
@pytest.mark.skipif(
    importlib.util.find_spec("mlstm_kernels") is None,
    reason="mlstm_kernels is a test dependency of the torch session",
)
def test_mlstm_equals_mlstm_kernels_native_chunkwise():
    import torch
    from mlstm_kernels.torch.chunkwise.native import mlstm_chunkwise__native_autograd

    steps = 128  # theirs needs a multiple of its chunk
    q, k = _normal(BATCH, HEADS, steps, KEY), _normal(BATCH, HEADS, steps, KEY)
    v = _normal(BATCH, HEADS, steps, VALUE)
    i, f = _normal(BATCH, HEADS, steps), _normal(BATCH, HEADS, steps) + 2
    theirs = mlstm_chunkwise__native_autograd(
        *(torch.tensor(t) for t in (q, k, v, i, f)), return_last_states=True, chunk_size=64
    )
    h, (C, n, m) = theirs
    ours = keras_rnnx.ops.mlstm(*(np.swapaxes(t, 1, 2) for t in (q, k, v, i, f)))
    got = [np.swapaxes(to_numpy(ours[0]), 1, 2), *(to_numpy(t) for t in ours[1])]
    want = [t.detach().numpy() for t in (h, C, n, m[..., 0])]
    assert_all_close(got, want, "mLSTM vs mlstm_kernels", TOLERANCE, TOLERANCE)


def _numpy_delta_rule(q, k, v, g, beta, S, mask):
    """`S_t = exp(g_t) (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ`, `o_t =
    S_tᵀ q_t`; a masked step keeps the state and outputs zeros."""
    outputs = []
    for t in range(q.shape[1]):
        decayed = np.exp(g[:, t])[..., None, None] * S
        recalled = np.einsum("bhk,bhkv->bhv", k[:, t], decayed)
        write = beta[:, t, :, None] * (v[:, t] - recalled)
        new = decayed + k[:, t, :, :, None] * write[:, :, None, :]
        S = np.where(mask[:, t, None, None, None], new, S)
        o = np.einsum("bhk,bhkv->bhv", q[:, t], S)
        outputs.append(np.where(mask[:, t, None, None], o, 0.0))
    return np.stack(outputs, 1), S


def _l2(x):
    return x / np.sqrt(np.sum(x**2, axis=-1, keepdims=True) + 1e-6)


def _delta_inputs(steps=STEPS, batch=BATCH, heads=HEADS, key=KEY, value=VALUE):
    q, k = _normal(batch, steps, heads, key), _normal(batch, steps, heads, key)
    v = _normal(batch, steps, heads, value)
    g = -np.abs(_normal(batch, steps, heads)) * 0.3
    beta = 1 / (1 + np.exp(-_normal(batch, steps, heads)))
    return q, k, v, g.astype("float32"), beta.astype("float32")


@pytest.mark.parametrize("gated", [False, True])
def test_delta_rules_are_their_equations(gated):
    q, k, v, g, beta = _delta_inputs()
    s0, mask = _normal(BATCH, HEADS, KEY, VALUE), _mask()
    if not gated:
        g = np.zeros_like(g)
    # Unnormalised keys, their own scale: the options change nothing else.
    k = _l2(k)
    kwargs = {"initial_state": s0, "mask": mask, "chunk_size": 16, "scale": 0.5}
    if gated:
        o, s = keras_rnnx.ops.gated_delta_rule(q, k, v, g, beta, **kwargs)
    else:
        o, s = keras_rnnx.ops.delta_rule(q, k, v, beta, **kwargs)
    want = _numpy_delta_rule(0.5 * q, k, v, g, beta, s0, mask)
    assert_all_close([to_numpy(o), to_numpy(s)], want, "delta rule op", TOLERANCE, TOLERANCE)


def _keras_hub_rule(q, k, v, g, beta, padding_mask):
    """keras-hub's `Qwen3_5GatedDeltaNet` rule as its later revision writes it
    (a step loop that honours the padding mask), restated in NumPy: q and k
    L2-normalised, q scaled by `1/√key_dim`; a padded step keeps the state,
    its output is the state read by `q_t`."""
    q, k = _l2(q) / np.sqrt(q.shape[-1]), _l2(k)
    S = np.zeros((q.shape[0], q.shape[2], q.shape[3], v.shape[3]))
    outputs = []
    for t in range(q.shape[1]):
        valid = padding_mask[:, t, None, None, None]
        decayed = np.where(valid, np.exp(g[:, t])[..., None, None] * S, S)
        delta = beta[:, t, :, None] * (v[:, t] - np.einsum("bhkv,bhk->bhv", decayed, k[:, t]))
        S = decayed + valid * k[:, t, :, :, None] * delta[:, :, None, :]
        outputs.append(np.einsum("bhkv,bhk->bhv", S, q[:, t]))
    return np.stack(outputs, 1), S


def test_gated_delta_rule_swaps_in_for_keras_hubs_and_keeps_the_unpadded_state():
    q, k, v, g, beta = _delta_inputs()
    mask = np.ones((BATCH, STEPS), bool)
    mask[1, 30:] = False  # right padding
    o, s = keras_rnnx.ops.gated_delta_rule(q, k, v, g, beta, mask=mask, use_qk_l2norm=True)
    want_o, want_s = _keras_hub_rule(q, k, v, g, beta, mask)
    want_o = np.where(mask[..., None, None], want_o, 0.0)  # ours outputs zeros there
    assert_all_close([to_numpy(o), to_numpy(s)], [want_o, want_s], "swap", TOLERANCE, TOLERANCE)
    # The padded row's final state is its 30 steps' alone.
    _, alone = keras_rnnx.ops.gated_delta_rule(
        *(t[1:, :30] for t in (q, k, v, g, beta)), use_qk_l2norm=True
    )
    assert_all_close([to_numpy(s)[1:]], [to_numpy(alone)], "unpadded", TOLERANCE, TOLERANCE)


def test_the_gated_delta_rule_stays_exact_over_16384_steps():
    steps = 16384
    q, k, v, g, beta = _delta_inputs(steps, batch=1, heads=1, key=8, value=8)
    g = g * 0.1  # a slow decay: the state holds many steps
    o, s = keras_rnnx.ops.gated_delta_rule(q, k, v, g, beta, use_qk_l2norm=True)
    mask = np.ones((1, steps), bool)
    want = _numpy_delta_rule(_l2(q) / np.sqrt(8), _l2(k), v, g, beta, np.zeros((1, 1, 8, 8)), mask)
    assert_all_close([to_numpy(o), to_numpy(s)], want, "16384 steps", TOLERANCE, TOLERANCE)


def test_the_ops_are_differentiable_and_compile():
    q, k, v, i, f = _mlstm_inputs()
    # Tensors, not arrays: torch's Dynamo does not trace NumPy arrays.
    k, v, i, f, mask = (keras.ops.convert_to_tensor(t) for t in (k, v, i, f, _mask()))

    def loss(q):
        h, _ = keras_rnnx.ops.mlstm(q, k, v, i, f, mask=mask)
        o, _ = keras_rnnx.ops.gated_linear_attention(q, k, v, -keras.ops.abs(f), mask=mask)
        beta = keras.ops.sigmoid(i)
        d, _ = keras_rnnx.ops.gated_delta_rule(q, k, v, -keras.ops.abs(f), beta, mask=mask)
        return keras.ops.sum(h) + keras.ops.sum(o) + keras.ops.sum(d)

    eager = to_numpy(loss(q))
    if BACKEND == "jax":
        import jax

        compiled, grad = jax.jit(loss), jax.grad(loss)(q)
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(loss)
        x = tf.constant(q)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = loss(x)
        grad = tape.gradient(value, x)
    else:
        import torch

        # Dynamo's graph capture without inductor's compile (minutes here).
        compiled = torch.compile(loss, backend="eager", fullgraph=True)
        x = torch.tensor(q, requires_grad=True)
        (grad,) = torch.autograd.grad(loss(x), [x])
    assert_all_close(
        [to_numpy(compiled(keras.ops.convert_to_tensor(q)))],
        [eager],
        "compiled",
        TOLERANCE,
        TOLERANCE,
    )
    grad = to_numpy(grad)
    assert grad.shape == q.shape and np.all(np.isfinite(grad)) and np.any(grad)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: keras_rnnx.ops.gated_linear_attention(
                _normal(2, 5, 8), _normal(2, 5, 1, 8), _normal(2, 5, 1, 8), _normal(2, 5, 1)
            ),
            "`query` to have rank 4",
        ),
        (
            lambda: keras_rnnx.ops.mlstm(
                *(_normal(2, 5, 1, 4) for _ in range(3)), _normal(2, 5), _normal(2, 5, 1)
            ),
            "`input_gate` to have rank 3",
        ),
        (
            lambda: keras_rnnx.ops.ssd(
                _normal(2, 5, 3, 4),
                _normal(2, 5, 3),
                _normal(3),
                _normal(2, 5, 2, 4),
                _normal(2, 5, 2, 4),
            ),
            "groups of `B` and `C` to divide the heads",
        ),
        (
            lambda: keras_rnnx.ops.gated_delta_rule(
                *(_normal(2, 5, 1, 4) for _ in range(3)), _normal(2, 5, 1, 1), _normal(2, 5, 1)
            ),
            "`g` to have rank 3",
        ),
        (
            lambda: keras_rnnx.ops.delta_rule(
                *(_normal(2, 5, 1, 4) for _ in range(3)), _normal(2, 5)
            ),
            "`beta` to have rank 3",
        ),
    ],
)
def test_bad_arguments_are_errors_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()
