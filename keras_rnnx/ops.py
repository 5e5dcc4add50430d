"""Functional ops for code that owns its projections (keras-hub's style):
the matrix-state recurrences of `keras_rnnx.MatrixRecurrentCell` and
`keras_rnnx.DeltaRuleCell` on whole sequences, by the chunkwise kernels, in
`(batch, time, heads, dim)` layout.

Each is differentiable, runs on every backend and inside `jax.jit`,
`tf.function` and `torch.compile`, takes a `(batch, time)` boolean `mask`
(a masked step writes nothing and decays nothing, so the state passes it
unchanged; its output is zeros) and returns the outputs and the final states.
"""

from __future__ import annotations

import math

from keras import ops

from keras_rnnx.cells.delta import l2_normalize
from keras_rnnx.cells.mlstm import FORGET_GATES, log_forget
from keras_rnnx.kernels import delta_rule as delta_kernel
from keras_rnnx.kernels.chunkwise import chunkwise
from keras_rnnx.types import Tensor

__all__ = ["delta_rule", "gated_delta_rule", "gated_linear_attention", "mlstm", "ssd"]


def _check_rank(name: str, x: Tensor, rank: int, what: str) -> None:
    if len(x.shape) != rank:
        raise ValueError(
            f"Expected `{name}` to have rank {rank}, {what}. Received: {name} with shape {x.shape}"
        )


def _masked(outputs: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return outputs
    valid = ops.cast(mask, "bool")[:, :, None, None]
    return ops.where(valid, outputs, ops.zeros_like(outputs))


def _zeros(query: Tensor, *shape: int) -> Tensor:
    return ops.zeros((ops.shape(query)[0], *shape), dtype=query.dtype)


def gated_linear_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    log_decay: Tensor,
    initial_state: Tensor | None = None,
    mask: Tensor | None = None,
    chunk_size: int | None = None,
    scale: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Gated linear attention (GLA; with a decay per head, also RetNet's and
    Mamba-2's form), per head:

        S_t = diag(exp(log_decay_t)) S_{t-1} + k_t v_tᵀ
        o_t = S_tᵀ (scale q_t)

    Args:
        query, key: `(batch, time, heads, key_dim)`.
        value: `(batch, time, heads, value_dim)`.
        log_decay: `(batch, time, heads)` (a decay per head) or `(batch, time,
            heads, key_dim)` (per key dimension, GLA's), at most 0.
        initial_state: `(batch, heads, key_dim, value_dim)`, or `None` for
            zeros.
        mask: `(batch, time)` booleans, or `None`.
        chunk_size: steps per chunk, or `None` to choose by shape.
        scale: the query's scale, default `1 / √key_dim` (as
            flash-linear-attention's `chunk_gla`).

    Returns:
        `(outputs, final_state)`: `(batch, time, heads, value_dim)` and
        `(batch, heads, key_dim, value_dim)`.

    Raises:
        ValueError: an argument of the wrong rank.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> q = k = v = np.ones((2, 100, 4, 8), "float32")
        >>> g = np.full((2, 100, 4), -0.1, "float32")
        >>> o, s = keras_rnnx.ops.gated_linear_attention(q, k, v, g)
        >>> tuple(o.shape), tuple(s.shape)
        ((2, 100, 4, 8), (2, 4, 8, 8))
    """
    query, key, value, log_decay = (
        ops.convert_to_tensor(t) for t in (query, key, value, log_decay)
    )
    for name, x in (("query", query), ("key", key), ("value", value)):
        _check_rank(name, x, 4, "(batch, time, heads, dim)")
    if len(log_decay.shape) == 3:
        log_decay = ops.expand_dims(log_decay, -1)
    _check_rank("log_decay", log_decay, 4, "(batch, time, heads) or (batch, time, heads, key_dim)")
    heads, key_dim, value_dim = query.shape[2], query.shape[3], value.shape[3]
    scale = 1 / math.sqrt(key_dim) if scale is None else scale
    if initial_state is None:
        initial_state = _zeros(query, heads, key_dim, value_dim)
    outputs, (state,) = chunkwise(
        query * scale,
        key,
        value,
        ops.cast(log_decay, query.dtype),
        [ops.convert_to_tensor(initial_state)],
        mask=mask,
        chunk_size=chunk_size,
    )
    return _masked(outputs, mask), state


def mlstm(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    input_gate: Tensor,
    forget_gate: Tensor,
    initial_state: tuple | None = None,
    mask: Tensor | None = None,
    chunk_size: int | None = None,
    forget_activation: str = "sigmoid",
) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """The mLSTM of xLSTM (`keras_rnnx.mLSTMCell`'s equations), from its
    projections and gates' pre-activations, as `mlstm_kernels`' chunkwise
    functions (which take `(batch, heads, time, dim)`):

        m_t = max(log f_t + m_{t-1}, i_t)
        C_t = exp(log f_t + m_{t-1} - m_t) C_{t-1} + exp(i_t - m_t) k_t v_tᵀ
        n_t = exp(log f_t + m_{t-1} - m_t) n_{t-1} + exp(i_t - m_t) k_t
        h_t = C_tᵀ q̂_t / (max(|n_tᵀ q̂_t|, exp(-m_t)) + 1e-6),  q̂_t = q_t / √key_dim

    Args:
        query, key: `(batch, time, heads, key_dim)`.
        value: `(batch, time, heads, value_dim)`.
        input_gate: `(batch, time, heads)`, `i_t` (exponential gate).
        forget_gate: `(batch, time, heads)`, the forget gate's pre-activation.
        initial_state: `(C, n, m)`, shaped `(batch, heads, key_dim,
            value_dim)`, `(batch, heads, key_dim)`, `(batch, heads)`, or
            `None` for zeros.
        mask: `(batch, time)` booleans, or `None`.
        chunk_size: steps per chunk, or `None` to choose by shape.
        forget_activation: `"sigmoid"` (`log f = log σ(f̃)`) or `"exp"`.

    Returns:
        `(h, (C, n, m))`: `h` `(batch, time, heads, value_dim)` and the final
        states.

    Raises:
        ValueError: an argument of the wrong rank, an unknown
            `forget_activation`.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> q = k = v = np.ones((2, 100, 4, 8), "float32")
        >>> i = f = np.zeros((2, 100, 4), "float32")
        >>> h, (c, n, m) = keras_rnnx.ops.mlstm(q, k, v, i, f)
        >>> tuple(h.shape), tuple(c.shape), tuple(n.shape), tuple(m.shape)
        ((2, 100, 4, 8), (2, 4, 8, 8), (2, 4, 8), (2, 4))
    """
    if forget_activation not in FORGET_GATES:
        raise ValueError(
            f"Expected `forget_activation` to be one of {FORGET_GATES}. "
            f"Received: forget_activation={forget_activation!r}"
        )
    query, key, value, input_gate, forget_gate = (
        ops.convert_to_tensor(t) for t in (query, key, value, input_gate, forget_gate)
    )
    for name, x in (("query", query), ("key", key), ("value", value)):
        _check_rank(name, x, 4, "(batch, time, heads, dim)")
    for name, x in (("input_gate", input_gate), ("forget_gate", forget_gate)):
        _check_rank(name, x, 3, "(batch, time, heads)")
    heads, key_dim, value_dim = query.shape[2], query.shape[3], value.shape[3]
    if initial_state is None:
        initial_state = (
            _zeros(query, heads, key_dim, value_dim),
            _zeros(query, heads, key_dim),
            _zeros(query, heads),
        )
    log_decay = log_forget(ops.cast(forget_gate, query.dtype), forget_activation)
    h, states = chunkwise(
        query / math.sqrt(key_dim),
        key,
        value,
        ops.expand_dims(log_decay, -1),
        [ops.convert_to_tensor(s) for s in initial_state],
        log_input=ops.expand_dims(ops.cast(input_gate, query.dtype), -1),
        mask=mask,
        chunk_size=chunk_size,
    )
    return _masked(h, mask), tuple(states)


def ssd(
    x: Tensor,
    dt: Tensor,
    A: Tensor,  # noqa: N803  (the paper's name)
    B: Tensor,  # noqa: N803
    C: Tensor,  # noqa: N803
    D: Tensor | None = None,  # noqa: N803
    initial_state: Tensor | None = None,
    mask: Tensor | None = None,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Mamba-2's state-space duality (SSD) scan, per head:

        h_t = exp(dt_t A) h_{t-1} + B_t (dt_t x_t)ᵀ       (state_dim x head_dim)
        y_t = h_tᵀ C_t + D x_t

    as `mamba_ssm`'s `mamba_chunk_scan_combined` with `dt` already positive
    (after its softplus and bias).

    Args:
        x: `(batch, time, heads, head_dim)`.
        dt: `(batch, time, heads)`, positive.
        A: `(heads,)`, negative.
        B, C: `(batch, time, groups, state_dim)`, `groups` dividing `heads`
            (each group serves `heads / groups` consecutive heads).
        D: `(heads,)` skip, or `None`.
        initial_state: `(batch, heads, state_dim, head_dim)` (transposed from
            `mamba_ssm`'s), or `None` for zeros.
        mask: `(batch, time)` booleans, or `None`.
        chunk_size: steps per chunk, or `None` to choose by shape.

    Returns:
        `(y, final_state)`: `(batch, time, heads, head_dim)` and `(batch,
        heads, state_dim, head_dim)`.

    Raises:
        ValueError: an argument of the wrong rank, `groups` not dividing
            `heads`.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> x = np.ones((2, 100, 4, 8), "float32")
        >>> dt = np.full((2, 100, 4), 0.1, "float32")
        >>> A = -np.ones(4, "float32")
        >>> B = C = np.ones((2, 100, 1, 16), "float32")
        >>> y, h = keras_rnnx.ops.ssd(x, dt, A, B, C)
        >>> tuple(y.shape), tuple(h.shape)
        ((2, 100, 4, 8), (2, 4, 16, 8))
    """
    x, dt, A, B, C = (ops.convert_to_tensor(t) for t in (x, dt, A, B, C))
    _check_rank("x", x, 4, "(batch, time, heads, head_dim)")
    _check_rank("dt", dt, 3, "(batch, time, heads)")
    _check_rank("A", A, 1, "(heads,)")
    for name, t in (("B", B), ("C", C)):
        _check_rank(name, t, 4, "(batch, time, groups, state_dim)")
    heads, head_dim, groups, state_dim = x.shape[2], x.shape[3], B.shape[2], B.shape[3]
    if heads % groups:
        raise ValueError(
            f"Expected the groups of `B` and `C` to divide the heads of `x` ({heads}). "
            f"Received: B with shape {B.shape}"
        )
    B, C = (ops.repeat(t, heads // groups, axis=2) for t in (B, C))
    if initial_state is None:
        initial_state = _zeros(x, heads, state_dim, head_dim)
    dt = ops.cast(dt, x.dtype)
    y, (state,) = chunkwise(
        ops.cast(C, x.dtype),
        ops.cast(B, x.dtype),
        x * dt[..., None],
        ops.expand_dims(dt * ops.cast(A, x.dtype), -1),
        [ops.convert_to_tensor(initial_state)],
        mask=mask,
        chunk_size=chunk_size,
    )
    if D is not None:
        y = y + x * ops.cast(ops.convert_to_tensor(D), x.dtype)[:, None]
    return _masked(y, mask), state


def delta_rule(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    beta: Tensor,
    initial_state: Tensor | None = None,
    mask: Tensor | None = None,
    chunk_size: int | None = None,
    scale: float | None = None,
    use_qk_l2norm: bool = False,
) -> tuple[Tensor, Tensor]:
    """DeltaNet's delta rule, per head (`keras_rnnx.DeltaNetCell`'s
    recurrence), as flash-linear-attention's `chunk_delta_rule`:

        S_t = (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ
        o_t = S_tᵀ (scale q_t)

    Args:
        query, key: `(batch, time, heads, key_dim)`.
        value: `(batch, time, heads, value_dim)`.
        beta: `(batch, time, heads)`, the write strength `β_t` (in (0, 1)
            after a sigmoid; up to 2 allows negative eigenvalues).
        initial_state: `(batch, heads, key_dim, value_dim)`, or `None` for
            zeros.
        mask: `(batch, time)` booleans, or `None`. A masked step neither
            decays nor writes (the state passes it unchanged); its output is
            zeros.
        chunk_size: steps per chunk, or `None` to choose by shape.
        scale: the query's scale, default `1 / √key_dim`.
        use_qk_l2norm: whether to L2-normalise `query` and `key` first
            (`x / sqrt(|x|² + 1e-6)`, as fla's `use_qk_l2norm_in_kernel`).

    Returns:
        `(outputs, final_state)`: `(batch, time, heads, value_dim)` and
        `(batch, heads, key_dim, value_dim)`.

    Raises:
        ValueError: an argument of the wrong rank.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> q = k = v = np.ones((2, 100, 4, 8), "float32")
        >>> beta = np.full((2, 100, 4), 0.5, "float32")
        >>> o, s = keras_rnnx.ops.delta_rule(q, k, v, beta, use_qk_l2norm=True)
        >>> tuple(o.shape), tuple(s.shape)
        ((2, 100, 4, 8), (2, 4, 8, 8))
    """
    return _delta_rule(
        query, key, value, None, beta, initial_state, mask, chunk_size, scale, use_qk_l2norm
    )


def gated_delta_rule(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    g: Tensor,
    beta: Tensor,
    initial_state: Tensor | None = None,
    mask: Tensor | None = None,
    chunk_size: int | None = None,
    scale: float | None = None,
    use_qk_l2norm: bool = False,
) -> tuple[Tensor, Tensor]:
    """Gated DeltaNet's rule, per head (`keras_rnnx.GatedDeltaNetCell`'s
    recurrence; Qwen3.5's linear attention), as flash-linear-attention's
    `chunk_gated_delta_rule`:

        S_t = exp(g_t) (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ
        o_t = S_tᵀ (scale q_t)

    A layer written as keras-hub's `Qwen3_5GatedDeltaNet` gets its rule's
    outputs from `gated_delta_rule(q, k, v, g, beta, initial_state=state,
    mask=padding_mask, use_qk_l2norm=True)`, by chunks, and with a padding
    mask the final state of each row's unpadded steps.

    Args:
        query, key: `(batch, time, heads, key_dim)`.
        value: `(batch, time, heads, value_dim)`.
        g: `(batch, time, heads)`, the log decay `g_t` (at most 0).
        beta: `(batch, time, heads)`, the write strength `β_t`.
        initial_state: `(batch, heads, key_dim, value_dim)`, or `None` for
            zeros.
        mask: `(batch, time)` booleans, or `None`. A masked step neither
            decays nor writes (the state passes it unchanged); its output is
            zeros.
        chunk_size: steps per chunk, or `None` to choose by shape.
        scale: the query's scale, default `1 / √key_dim`.
        use_qk_l2norm: whether to L2-normalise `query` and `key` first
            (`x / sqrt(|x|² + 1e-6)`, as fla's `use_qk_l2norm_in_kernel`
            and keras-hub's rule).

    Returns:
        `(outputs, final_state)`: `(batch, time, heads, value_dim)` and
        `(batch, heads, key_dim, value_dim)`.

    Raises:
        ValueError: an argument of the wrong rank.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> q = k = v = np.ones((2, 100, 4, 8), "float32")
        >>> g = np.full((2, 100, 4), -0.1, "float32")
        >>> beta = np.full((2, 100, 4), 0.5, "float32")
        >>> o, s = keras_rnnx.ops.gated_delta_rule(q, k, v, g, beta, use_qk_l2norm=True)
        >>> tuple(o.shape), tuple(s.shape)
        ((2, 100, 4, 8), (2, 4, 8, 8))
    """
    return _delta_rule(
        query, key, value, g, beta, initial_state, mask, chunk_size, scale, use_qk_l2norm
    )


def _delta_rule(query, key, value, g, beta, initial_state, mask, chunk_size, scale, l2norm):
    query, key, value, beta = (ops.convert_to_tensor(t) for t in (query, key, value, beta))
    for name, x in (("query", query), ("key", key), ("value", value)):
        _check_rank(name, x, 4, "(batch, time, heads, dim)")
    gates = [("beta", beta)]
    if g is not None:
        g = ops.convert_to_tensor(g)
        gates.append(("g", g))
    for name, x in gates:
        _check_rank(name, x, 3, "(batch, time, heads)")
    heads, key_dim, value_dim = query.shape[2], query.shape[3], value.shape[3]
    if l2norm:
        query, key = l2_normalize(query), l2_normalize(key)
    scale = 1 / math.sqrt(key_dim) if scale is None else scale
    if initial_state is None:
        initial_state = _zeros(query, heads, key_dim, value_dim)
    outputs, state = delta_kernel.delta_rule(
        query * scale,
        key,
        value,
        ops.expand_dims(ops.cast(beta, query.dtype), -1),
        None if g is None else ops.expand_dims(ops.cast(g, query.dtype), -1),
        ops.convert_to_tensor(initial_state),
        mask=mask,
        chunk_size=chunk_size,
    )
    return _masked(outputs, mask), state
