"""The delta rule by chunks: DeltaNet's and Gated DeltaNet's recurrence over a
whole sequence.

Per head, with the state `S (key_dim x value_dim)`, a decay `α_t = exp(g_t)`
(1 for DeltaNet) and a write strength `β_t`:

    S_t = α_t (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ,    o_t = S_tᵀ q_t

Each step writes `k_t u_tᵀ` with `u_t = β_t (v_t - α_t S_{t-1}ᵀ k_t)`, the
correction of what the state recalls for `k_t`. Within a chunk of `L` steps
from `S_0`, with `γ_t` the decay since the chunk began, every `u_t` depends on
the earlier `u_j` of the chunk through `A_tj = β_t (γ_t / γ_j) k_tᵀ k_j`
(`j < t`), a strictly lower triangular system:

    (I + A) U = diag(β) V - diag(β γ) K S_0,  so  U = Ũ - W S_0,
    Ũ = T diag(β) V,  W = T diag(β γ) K,  T = (I + A)⁻¹

(the WY form of Yang et al. 2024, "Parallelizing Linear Transformers with the
Delta Rule over Sequence Length"). Then, as for the plain chunks
(`kernels/chunkwise.py`), the outputs are attention within the chunk plus a
read of `S_0`, and the state after it is linear in `S_0`:

    O = (Q ⊙ γ) S_0 + (Q Kᵀ ⊙ Γ) U,            Γ_tj = γ_t / γ_j for j <= t
    S_L = (γ_L I - K̂ᵀ W) S_0 + K̂ᵀ Ũ,          K̂_j = (γ_L / γ_j) k_j

so the states between chunks are a recurrence of `key_dim x key_dim`
matrices over `T / L` chunks, run one chunk after another (`_states_before`).

`T` is the inverse of a unit lower triangular matrix, computed exactly by
blocks (`_inverse`): the inverses of halves of a block give the block's,
`[[T₁, 0], [-T₂ A₂₁ T₁, T₂]]`, from blocks of one step up to the chunk, in
`log₂ L` rounds of batched matmuls and with every block the inverse of a
sub-chunk's system (bounded where the recurrence is: `|β_t| |k_t|² <= 2`), so no
error grows beyond float32's rounding of each product (the tests compare
16384 steps with the step loop).

The rules of a sequence (`kernels/sequence.py`) hold as in the plain chunks: a
masked or filled step neither decays nor writes (`β = 0`, `g = 0`); a reset
splits a chunk into segments, each solved apart and started from the restart
state.
"""

from __future__ import annotations

import functools
import math

import keras
from keras import ops

from keras_rnnx.kernels.chunks import (
    SMALL_HALF,
    Chunks,
    Segments,
    decay_per_head,
    read_states,
)
from keras_rnnx.kernels.sequence import broadcast_flags
from keras_rnnx.kernels.traits import traits
from keras_rnnx.types import Tensor


def delta_rule(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    beta: Tensor,
    log_decay: Tensor | None,
    state: Tensor,
    *,
    mask: Tensor | None = None,
    reset: Tensor | None = None,
    restart_state: Tensor | None = None,
    chunk_size: int | None = None,
):
    """Every step's `o_t` and the final state of the (gated) delta rule.

    Time on axis 1, in processing order: `query`, `key` `(batch, time, heads,
    key_dim)`, `value` `(batch, time, heads, value_dim)`, `beta` and
    `log_decay` `(batch, time, heads, 1)` (`log_decay` `None` for DeltaNet's
    rule), `state` `(batch, heads, key_dim, value_dim)`. `mask` and `reset`
    are `(batch, time)` booleans; `restart_state` is the state a reset row
    restarts from (zeros if `None`).

    Returns:
        `(o, final_state)`: `o` `(batch, time, heads, value_dim)` (masked steps
        read the carried state) and the state after the last step.
    """
    return _program(chunk_size)(
        query, key, value, beta, log_decay, state, mask, reset, restart_state
    )


@functools.cache
def _program(chunk_size: int | None):
    return traits().compile(functools.partial(_delta_rule, chunk_size=chunk_size))


def _delta_rule(query, key, value, beta, log_decay, state, mask, reset, restart, *, chunk_size):
    dtype = query.dtype
    # Decays and the triangular solve in float32 at least (as fla's kernels).
    wide = "float32" if keras.backend.standardize_dtype(dtype) in ("float16", "bfloat16") else dtype
    query, key, value, beta, state = (ops.cast(t, wide) for t in (query, key, value, beta, state))
    log_decay = ops.zeros_like(beta) if log_decay is None else ops.cast(log_decay, wide)
    if reset is None:
        restart = None
    else:
        restart = ops.zeros_like(state) if restart is None else ops.cast(restart, wide)
    if mask is not None:
        valid = broadcast_flags(mask, beta)
        beta = ops.where(valid, beta, ops.zeros_like(beta))
        log_decay = ops.where(valid, log_decay, ops.zeros_like(log_decay))

    layout = Chunks(int(query.shape[1]), int(query.shape[2]), chunk_size)
    q, k, v, b, g = (layout.split(t) for t in (query, key, value, beta, log_decay))
    segments = Segments(layout.length, None if reset is None else layout.split(reset, False))
    F = ops.cumsum(g, axis=3)  # (batch, heads, chunks, L, 1)
    G = F - segments.base(F - g)  # log decay since each step's segment began

    solve = _inverse(k, b, F, segments.index)
    u = _bmm(solve, b * v)  # Ũ
    w = _bmm(solve, b * ops.exp(G) * k)  # W
    # The chunk's writes decayed to its end; only the last segment's count.
    weight = ops.exp(F[..., -1:, :] - F)
    if segments.reset is not None:
        weight = weight * ops.cast(segments.same[..., -1, :], F.dtype)[..., None]
    k_end = ops.swapaxes(k * weight, -1, -2)  # K̂ᵀ: (batch, heads, chunks, key_dim, L)
    key_dim = int(k.shape[-1])
    carried = ops.exp(G[..., -1:, :]) * ops.eye(key_dim, dtype=k.dtype)  # γ_L I
    restart_w = restart_s = None
    if segments.opened is None:
        a = carried - _bmm(k_end, w)
    else:
        opened = broadcast_flags(segments.opened, w)
        ended_opened = broadcast_flags(segments.opened[..., -1], carried)
        w, restart_w = ops.where(opened, w, 0.0), ops.where(opened, 0.0, w)
        a = ops.where(ended_opened, carried, 0.0) - _bmm(k_end, w)
        restart_s = ops.expand_dims(restart, 2)
    b_ = _bmm(k_end, u)
    if restart_w is not None:
        restarted = ops.where(ended_opened, 0.0, carried) - _bmm(k_end, restart_w)
        b_ = b_ + ops.matmul(restarted, restart_s)
    s_in, final = _states_before(a, b_, state)

    u = u - _bmm(w, s_in)
    if restart_w is not None:
        u = u - ops.matmul(restart_w, restart_s)
    scores = _bmm(q, ops.swapaxes(k, -1, -2)) * decay_per_head(F)
    if segments.reset is not None:
        scores = ops.where(segments.same, scores, 0.0)
    if restart is None:
        carried_read = _bmm(q * ops.exp(G), s_in)
    else:
        carried_read = read_states(q * ops.exp(G), s_in, segments, restart)
    o = _bmm(scores, u) + carried_read
    return ops.cast(layout.merge(o), dtype), ops.cast(final, dtype)


def _states_before(a: Tensor, b: Tensor, s0: Tensor) -> tuple[Tensor, Tensor]:
    """The state before each chunk (axis 2 of `(batch, heads, chunks, ...)`)
    and after the last, `S_out = a S_in + b`, one chunk after another: one
    matmul a chunk (a scan of pairs would compose the `key_dim x key_dim`
    matrices, `key_dim` times the work; bench.py `--layers delta`). By
    `ops.scan` where it compiles to one loop (JAX's), else by a Python loop
    over the `T / L` chunks."""
    if traits().compiled_scan:

        def step(s, pair):
            return ops.matmul(pair[0], s) + pair[1], s

        last, before = ops.scan(step, s0, (ops.moveaxis(a, 2, 0), ops.moveaxis(b, 2, 0)))
        return ops.moveaxis(before, 0, 2), last
    s, before = s0, []
    for a_chunk, b_chunk in zip(ops.unstack(a, axis=2), ops.unstack(b, axis=2)):
        before.append(s)
        s = ops.matmul(a_chunk, s) + b_chunk
    return ops.stack(before, axis=2), s


def _inverse(k: Tensor, b: Tensor, F: Tensor, index: Tensor | None) -> Tensor:
    """`(I + A)⁻¹` for each chunk, `A_tj = b_t exp(F_t - F_j) k_tᵀ k_j` for
    `j < t` in the same segment (`index`, each step's segment, or `None`):
    `(batch, heads, chunks, L, L)`. By blocks: the inverse of `[[I + A₁₁, 0],
    [A₂₁, I + A₂₂]]` is `[[T₁, 0], [-T₂ A₂₁ T₁, T₂]]` with `T₁`, `T₂` the
    halves' inverses, from blocks of one step up; the chunk is filled to a
    power of two steps (steps that write nothing)."""
    lead, length = tuple(k.shape[:3]), int(k.shape[3])
    size = 2 ** math.ceil(math.log2(max(length, 1)))
    if index is not None:
        index = ops.repeat(index, int(k.shape[1]), axis=1)[..., None]  # one row per head
    if size != length:
        fill = [(0, 0), (0, 0), (0, 0), (0, size - length), (0, 0)]
        k, b = ops.pad(k, fill), ops.pad(b, fill)
        F = ops.concatenate([F, ops.repeat(F[..., -1:, :], size - length, axis=3)], axis=3)
        index = None if index is None else ops.pad(index, fill)

    def rows(x):
        return ops.reshape(x, (-1, size, int(x.shape[-1])))

    k, b, F = rows(k), rows(b), rows(F)
    index = None if index is None else rows(index)
    solve = ops.ones_like(ops.reshape(b, (-1, 1, 1)))
    half = 1
    while half < size:
        # `unstack`, not slices: TensorFlow's gradient of a slice is a
        # full-size copy of its own.
        def halves(x, half=half):
            return ops.unstack(ops.reshape(x, (-1, 2, half, int(x.shape[-1]))), axis=1)

        (k1, k2), (F1, F2) = halves(k), halves(F)
        end = F1[:, -1:]
        # A₂₁, each factor at most 1 (`j <= end < t`).
        lower = _product(k2 * ops.exp(F2 - end), ops.swapaxes(k1 * ops.exp(end - F1), 1, 2))
        lower = lower * halves(b)[1]
        if index is not None:
            first, second = halves(index)
            lower = ops.where(ops.equal(second, ops.swapaxes(first, 1, 2)), lower, 0.0)
        t1, t2 = ops.unstack(ops.reshape(solve, (-1, 2, half, half)), axis=1)
        below = -_product(t2, _product(lower, t1))
        solve = ops.concatenate(
            [ops.concatenate([t1, ops.zeros_like(t1)], -1), ops.concatenate([below, t2], -1)],
            axis=1,
        )
        half *= 2
    solve = ops.reshape(solve, (-1, *lead[1:], size, size))
    return solve if size == length else solve[..., :length, :length]


def _bmm(x: Tensor, y: Tensor) -> Tensor:
    """`x @ y` for `(batch, heads, chunks, ...)` matrices, as one batch of
    matrices: torch's matmul copies operands of more than three axes that
    are transposed views (a tenth of a chunked call); its bmm reads them in
    place."""
    lead = tuple(x.shape[1:-2])
    product = ops.matmul(ops.reshape(x, (-1, *x.shape[-2:])), ops.reshape(y, (-1, *y.shape[-2:])))
    return ops.reshape(product, (-1, *lead, *product.shape[-2:]))


def _product(x: Tensor, y: Tensor) -> Tensor:
    """`x @ y` for a batch of matrices; the smallest as sums of products,
    too small for a matmul to pay (torch's CPU matmul loops over them)."""
    if int(x.shape[-1]) <= SMALL_HALF and int(x.shape[-2]) <= SMALL_HALF:
        return ops.sum(x[..., :, :, None] * y[..., None, :, :], axis=-2)
    return ops.matmul(x, y)
