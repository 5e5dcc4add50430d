"""The chunkwise kernel: a matrix-state cell over a whole sequence, by chunks.

For `S_t = diag(exp(g_t)) S_{t-1} + k_t v_tᵀ`, `o_t = S_tᵀ q_t`
(`keras_rnnx.MatrixRecurrentCell`), the state after a chunk of `L` steps is
the state before it, decayed, plus the chunk's own writes; and every output in
the chunk is the same two parts read by `q_t`:

    o_t = (q_t ⊙ exp(F_t))ᵀ S_in + Σ_{j<=t} (q_t ⊙ exp(F_t - F_j))ᵀ k_j v_j
    S_out = exp(F_L) ⊙ S_in + Σ_j (k_j ⊙ exp(F_L - F_j)) v_jᵀ

with `F_t` the sum of the log decays up to step `t` of the chunk. The second
term is attention within the chunk (a masked, decay-weighted `Q Kᵀ` times
`V`); the states between chunks are a linear recurrence of their own, over
`T / L` chunks, which `sequence.Recurrence` scans. So a sequence costs
matmuls, not `T` sequential steps.

The mLSTM's stabiliser is a recurrence in the (max, +) algebra, `m_t =
max(g_t + m_{t-1}, i_t)`, scanned over chunks the same way; within a chunk it
is a running maximum of the log weights, and every weight is taken relative to
it, so that no exponential exceeds 1.

The rules of a sequence (`kernels/sequence.py`) hold: a masked step decays
nothing and writes nothing (log decay 0, no key or an input gate of
`LOG_ZERO`); a reset splits a chunk into segments, and a segment that begins
with a reset reads the restart states instead of the state before the chunk;
the held outputs are `sequence.held_outputs`. Any length runs: the last chunk
is filled with masked steps.

The kernel here also runs a `DeltaRuleCell`, whose state is corrected rather
than added to: its chunk algebra is `kernels/delta_rule.py`'s.
"""

from __future__ import annotations

import functools
import math

import keras
from keras import ops

from keras_rnnx.cells.delta import DeltaGates, DeltaRuleCell
from keras_rnnx.cells.matrix import EPSILON, MatrixRecurrentCell
from keras_rnnx.kernels import delta_rule
from keras_rnnx.kernels.chunks import (
    SMALL_HALF,
    Chunks,
    Segments,
    by_chunk,
    decay_per_head,
    read_states,
)
from keras_rnnx.kernels.registry import RecurrentCall, register_kernel
from keras_rnnx.kernels.sequence import (
    LOG_ZERO,
    Recurrence,
    broadcast_flags,
    held_outputs,
    in_processing_order,
)
from keras_rnnx.kernels.traits import traits
from keras_rnnx.types import Tensor

_MAX_PLUS = Recurrence(lambda a, h, b: ops.maximum(a + h, b), lambda a1, a2: a1 + a2)
_LINEAR = Recurrence.linear(ops.multiply)


def chunkwise(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    log_decay: Tensor,
    states: list,
    *,
    log_input: Tensor | None = None,
    mask: Tensor | None = None,
    reset: Tensor | None = None,
    restart_states: list | None = None,
    chunk_size: int | None = None,
):
    """Every step's `o_t` and the final states of the module's recurrence.

    Time on axis 1, in processing order: `query`, `key` `(batch, time, heads,
    key_dim)`, `value` `(batch, time, heads, value_dim)`, `log_decay`
    `(batch, time, heads, 1 or key_dim)`, `log_input` `(batch, time, heads,
    1)` for the normalized (mLSTM) form, with `states` `[C, n, m]`; else
    `states` is `[S]`. `mask` and `reset` are `(batch, time)` booleans;
    `restart_states` are the states a reset row restarts from.

    Returns:
        `(o, final_states)`: `o` `(batch, time, heads, value_dim)` (masked
        steps read the carried state), `final_states` as `states`.
    """
    return _program(chunk_size)(
        query, key, value, log_decay, states, log_input, mask, reset, restart_states
    )


@functools.cache
def _program(chunk_size: int | None):
    """`_chunkwise` for a chunk size, compiled as one program where the
    backend's traits say so (JAX's jit: seconds less for an eager call)."""
    return traits().compile(functools.partial(_chunkwise, chunk_size=chunk_size))


def _chunkwise(
    query, key, value, log_decay, states, log_input, mask, reset, restart_states, *, chunk_size
):
    dtype = query.dtype
    # Decays and stabilisers need float32's range (as fla's and mlstm_kernels'
    # kernels accumulate in float32).
    wide = "float32" if keras.backend.standardize_dtype(dtype) in ("float16", "bfloat16") else dtype
    query, key, value, log_decay = (ops.cast(t, wide) for t in (query, key, value, log_decay))
    states = [ops.cast(s, wide) for s in states]
    normalized = log_input is not None
    # Ints, also where a trace records shapes as tensors (torch's, for an export).
    steps, heads = int(query.shape[1]), int(query.shape[2])
    if restart_states is not None:
        restart_states = [ops.cast(s, wide) for s in restart_states]
    if normalized:
        log_input = ops.cast(log_input, wide)

    if mask is not None:
        valid = broadcast_flags(mask, query)
        log_decay = ops.where(valid, log_decay, ops.zeros_like(log_decay))
        if normalized:
            log_input = ops.where(valid, log_input, ops.full_like(log_input, LOG_ZERO))
        else:
            key = ops.where(valid, key, ops.zeros_like(key))

    layout = Chunks(steps, heads, chunk_size)
    q, v, g = layout.split(query), layout.split(value), layout.split(log_decay)
    # Padded steps are masked steps: no key (or no input) and no decay.
    k = layout.split(key)
    i = None if log_input is None else layout.split(log_input, LOG_ZERO)
    segments = Segments(layout.length, None if reset is None else layout.split(reset, False))

    F = ops.cumsum(g, axis=3)  # (batch, heads, chunks, L, 1 or key_dim)
    G = F - segments.base(F - g)  # log decay since each step's segment began
    restart = restart_states is not None and reset is not None

    if normalized:
        o, n, m_t, final = _normalized(
            q, k, v, F, G, i, states, segments, restart_states if restart else None
        )
        o = o / (ops.maximum(ops.abs(n), ops.exp(-m_t)) + EPSILON)
    else:
        o, final = _plain(
            q, k, v, F, G, states[0], segments, restart_states[0] if restart else None
        )
        final = [final]
    return ops.cast(layout.merge(o), dtype), [ops.cast(s, dtype) for s in final]


def chunk_states(a: Tensor, b: Tensor, s0: Tensor, segments: Segments, restart: Tensor | None):
    """The state before and after each chunk, `S_out = a S_in + b` over chunks;
    a chunk whose last segment began with a reset starts from `restart`
    instead (`b` then holds `a restart`)."""
    opened = segments.opened  # a restart comes with resets, so with segments
    if restart is not None and opened is not None:
        ended_opened = broadcast_flags(opened[..., -1], b)
        b = b + ops.where(ended_opened, ops.zeros_like(b), a * ops.expand_dims(restart, 2))
        a = ops.where(ended_opened, a, ops.zeros_like(a))
    return by_chunk(_LINEAR, a, b, s0)


def _writes(k: Tensor, v: Tensor) -> Tensor:
    """`Σ_j k_j v_jᵀ` over a chunk: `(batch, heads, chunks, key_dim, value_dim)`."""
    return ops.einsum("bhnjk,bhnjv->bhnkv", k, v)


def _scores(q: Tensor, k: Tensor) -> Tensor:
    """`q_t · k_j` within each chunk: `(batch, heads, chunks, L, L)`."""
    return ops.einsum("bhntk,bhnjk->bhntj", q, k)


def _plain(q, k, v, F, G, s0, segments, restart):
    """The unnormalized form: outputs and the final state."""
    decays = int(F.shape[-1])
    last = F[..., -1:, :]
    # The chunk's writes, decayed to its end; only the last segment's count.
    weight = ops.exp(last - F)
    if segments.reset is not None:
        weight = weight * ops.cast(segments.same[..., -1, :], F.dtype)[..., None]
    # `a` broadcasts over values, and over keys for a decay per head.
    a = ops.exp(G[..., -1, :])[..., None]  # (batch, heads, chunks, 1 or key_dim, 1)
    s_in, final = chunk_states(a, _writes(k * weight, v), s0, segments, restart)

    if decays == 1:
        scores = _scores(q, k) * decay_per_head(F)
        scores = ops.where(segments.same, scores, ops.zeros_like(scores))
        within = ops.matmul(scores, v)
    else:
        within = _within_per_key(q, k, v, F, segments)
    return within + read_states(q * ops.exp(G), s_in, segments, restart), final


def _within_per_key(q, k, v, F, segments: Segments):
    """`Σ_{j<=t} (q_t ⊙ exp(F_t - F_j))ᵀ k_j v_j` within each chunk (or
    segment), a decay per key dimension, exactly: `(q_t · k_t) v_t` on the
    diagonal, and the rest by halves (`_halves`). The chunk is filled to a
    power of two steps."""
    length = int(q.shape[3])
    size = 2 ** math.ceil(math.log2(max(length, 1)))
    index = segments.index
    if index is not None:
        index = ops.repeat(index, int(q.shape[1]), axis=1)  # one row per head
    if size != length:
        fill = [(0, 0), (0, 0), (0, 0), (0, size - length), (0, 0)]
        q, k, v = (ops.pad(t, fill) for t in (q, k, v))
        F = ops.concatenate([F, ops.repeat(F[..., -1:, :], size - length, axis=3)], axis=3)
        index = None if index is None else ops.pad(index, fill[:4])
    o = ops.sum(q * k, axis=-1, keepdims=True) * v
    half = size // 2
    while half >= 1:
        o = o + _halves(q, k, v, F, index, half)
        half //= 2
    return o if size == length else o[..., :length, :]


def _halves(q, k, v, F, index, half: int):
    """The part of `_within_per_key` from steps `j` in the first half of a
    block of `2 half` steps to steps `t` in its second half, each factor taken
    from the last step `e` of the first half: `(q_t ⊙ exp(F_t - F_e))ᵀ (k_j ⊙
    exp(F_e - F_j))`, both at most 1 (`j <= e < t`), so none overflows, and
    every pair of halves is one product of `half x half` scores, none wasted."""
    shape = (-1, *v.shape[1:])

    # One leading axis for (batch, heads, chunks, blocks): XLA's CPU compiler
    # crashes on the gradients of einsums of higher rank (jaxlib 0.10.2).
    # `unstack`, not slices: TensorFlow's gradient of a slice is a full-size
    # copy of its own (StridedSliceGrad: 2/3 of a GLA train step).
    def halves(x):
        return ops.unstack(ops.reshape(x, (-1, 2, half, *x.shape[4:])), axis=1)

    F_first, F_second = halves(F)
    end = F_first[:, -1:]
    q = halves(q)[1] * ops.exp(F_second - end)
    k = halves(k)[0] * ops.exp(end - F_first)
    v = halves(v)[0]
    if half <= SMALL_HALF:
        # (x, t, j): products too small for a matmul to pay (torch's CPU
        # matmul loops over a batch of them).
        scores = ops.sum(q[:, :, None] * k[:, None], axis=-1)
    else:
        scores = ops.einsum("xtd,xjd->xtj", q, k)
    if index is not None:
        first, second = halves(index)
        same = ops.equal(second[:, :, None], first[:, None, :])
        scores = ops.where(same, scores, ops.zeros_like(scores))
    if half <= SMALL_HALF:
        o = ops.sum(scores[..., None] * v[:, None], axis=2)
    else:
        o = ops.matmul(scores, v)
    o = ops.stack([ops.zeros_like(o), o], axis=1)
    return ops.reshape(o, shape)


def _normalized(q, k, v, F, G, i, states, segments, restart):
    """The mLSTM form (a decay per head): `o`, the normaliser's `n_tᵀ q_t`
    and the stabiliser `m_t` (both `(batch, heads, chunks, L, 1)`), and the
    final `[C, n, m]`. The normaliser is a matrix state of one value column,
    all ones, kept apart from `C` (sliced from it, its gradient cost
    TensorFlow two full-size copies)."""
    c0, n0, m0 = states
    f, g_since, log_in = F[..., 0], G[..., 0], i[..., 0]  # (batch, heads, chunks, L)
    # The log weight of step j's write at step t: (batch, heads, chunks, L, L).
    pair = f[..., :, None] - f[..., None, :] + log_in[..., None, :]
    pair = ops.where(segments.same, pair, ops.full_like(pair, 2 * LOG_ZERO))
    # `amax`: Keras's torch `max` reads its result's `.values`, which Dynamo
    # cannot trace in a full graph.
    local = ops.amax(pair, axis=-1)  # (batch, heads, chunks, L)

    # The stabiliser at the chunks' ends, then at every step.
    a_m, b_m = g_since[..., -1], local[..., -1]
    if restart is not None:
        m_restart = restart[2][..., None]  # (batch, heads, 1)
        ended_opened = segments.opened[..., -1]
        b_m = ops.where(ended_opened, b_m, ops.maximum(b_m, m_restart + a_m))
        a_m = ops.where(ended_opened, a_m, ops.full_like(a_m, LOG_ZERO))
    m_base, m_final = by_chunk(_MAX_PLUS, a_m, b_m, m0)
    m_base = m_base[..., None]
    if restart is not None:
        m_base = ops.where(segments.opened, m_base, m_restart[..., None])
    m_t = ops.maximum(local, m_base + g_since)

    # Every weight relative to the stabiliser of the step that reads it.
    weights = ops.exp(pair - m_t[..., None])
    carried = ops.exp(m_base + g_since - m_t)[..., None]  # the starting state's factor
    scores = _scores(q, k) * weights
    k = k * weights[..., -1, :, None]  # each write, decayed to the chunk's end
    q = q * carried
    restart_c, restart_n = (None, None) if restart is None else (restart[0], restart[1][..., None])
    a = carried[..., -1, :, None]
    c_in, c_final = chunk_states(a, _writes(k, v), c0, segments, restart_c)
    n_in, n_final = chunk_states(
        a, ops.sum(k, axis=3)[..., None], n0[..., None], segments, restart_n
    )
    o = ops.matmul(scores, v) + read_states(q, c_in, segments, restart_c)
    n = ops.sum(scores, axis=-1, keepdims=True) + read_states(q, n_in, segments, restart_n)
    return o, n, m_t[..., None], [c_final, n_final[..., 0], m_final]


def _records_length(call: RecurrentCall) -> bool:
    """Whether the trace of an export records the length as a tensor whose
    value it has (torch's tracers: the backend's `traces_unroll`)."""
    x = keras.tree.flatten(call.inputs)[0]
    return bool(call.exporting) and traits().traces_unroll and not isinstance(x.shape[1], int)


def loop_is_faster(call: RecurrentCall) -> str | None:
    """Why the step loop beats the chunks for `call`, or `None`: inference of
    a decay per key dimension or of the delta rule, where the backend's
    `loop_beats_chunks` says so (JAX's CPU, bench.py `--layers matrix`); a
    train step gains from the chunks everywhere."""
    if call.training:
        return None
    if isinstance(call.cell, DeltaRuleCell):
        return traits().loop_beats_chunks("the delta rule")
    if call.cell.decay_per_key:
        return traits().loop_beats_chunks("a decay per key dimension")
    return None


class ChunkwiseKernel:
    name = "chunkwise"
    priority = 5
    fused = False
    resets = True

    def why_not(self, call: RecurrentCall) -> str | None:
        if not isinstance(call.cell, MatrixRecurrentCell):
            return f"{type(call.cell).__name__} has no matrix state"
        if call.unroll:
            return "unroll=True asks for the unrolled loop"
        reason = loop_is_faster(call)
        if reason:
            return reason
        inputs = keras.tree.flatten(call.inputs)
        if len(inputs) != 1:
            return "its inputs are a structure, not one tensor"
        if not isinstance(inputs[0].shape[1], int) and not _records_length(call):
            # Chunks are laid out for a length known when traced.
            return "the number of steps is unknown when traced"
        return None

    def run(self, call: RecurrentCall):
        cell = call.cell
        x = keras.tree.flatten(call.inputs)[0]
        if _records_length(call):
            # The artifact is for the traced length, and another is an error in
            # its runtime (a split into these sizes), never a wrong result, as
            # for the reference loop, which unrolls there.
            x = ops.split(x, [int(x.shape[1])], axis=1)[0]
        x, mask, reset = (
            None if f is None else in_processing_order(f, call.go_backwards)
            for f in (x, call.mask, call.reset)
        )
        gates = cell.gates(x)
        restart = None if reset is None else keras.tree.flatten(call.restart_states)
        states = keras.tree.flatten(call.states)
        if isinstance(gates, DeltaGates):
            o, state = delta_rule.delta_rule(
                gates.query,
                gates.key,
                gates.value,
                gates.beta,
                gates.log_decay,
                states[0],
                mask=mask,
                reset=reset,
                restart_state=None if restart is None else restart[0],
                chunk_size=cell.chunk_size,
            )
            states = [state]
        else:
            o, states = chunkwise(
                gates.query,
                gates.key,
                gates.value,
                gates.log_decay,
                states,
                log_input=gates.log_input,
                mask=mask,
                reset=reset,
                restart_states=restart,
                chunk_size=cell.chunk_size,
            )
        outputs = cell.readout(o, x)
        if mask is not None:
            outputs = held_outputs(outputs, mask, reset, call.zero_output_for_mask)
        return outputs[:, -1], outputs, keras.tree.pack_sequence_as(call.states, states)


register_kernel(ChunkwiseKernel())
