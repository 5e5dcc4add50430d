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
"""

from __future__ import annotations

import functools
import math

import keras
from keras import ops

from keras_rnnx.cells.matrix import EPSILON, MatrixRecurrentCell
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

# Steps per chunk unless a cell or a call sets it: the chunk's `L x L` scores
# cost `L` per step, and the recurrence between chunks `T / L` steps
# (bench.py `--layers matrix`: 32 to 128 within 10% at 1024 to 16384 steps).
CHUNK = 64

# Halves of blocks this short or shorter multiply elementwise (`_halves`).
SMALL_HALF = 4
# A short sequence's chunk: its length rounded up to this many steps.
ROUND = 16

_MAX_PLUS = Recurrence(lambda a, h, b: ops.maximum(a + h, b), lambda a1, a2: a1 + a2)
_LINEAR = Recurrence.linear(ops.multiply)


def chunk_length(steps: int, chunk_size: int | None) -> int:
    """The steps per chunk: `chunk_size`, or `CHUNK`, or for a shorter
    sequence its length rounded up to `ROUND` steps."""
    if chunk_size:
        return chunk_size
    return min(CHUNK, ROUND * math.ceil(steps / ROUND))


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
    steps, heads, value_dim = (int(d) for d in (query.shape[1], query.shape[2], value.shape[-1]))
    if normalized:
        log_input = ops.cast(log_input, wide)
        # The normaliser is one more column of values, all ones.
        value = ops.concatenate([value, ops.ones_like(value[..., :1])], axis=-1)
        states = [ops.concatenate([states[0], states[1][..., None]], axis=-1), states[2]]
        if restart_states is not None:
            c, n, m = (ops.cast(s, wide) for s in restart_states)
            restart_states = [ops.concatenate([c, n[..., None]], axis=-1), m]
    elif restart_states is not None:
        restart_states = [ops.cast(s, wide) for s in restart_states]

    if mask is not None:
        valid = broadcast_flags(mask, query)
        log_decay = ops.where(valid, log_decay, ops.zeros_like(log_decay))
        if normalized:
            log_input = ops.where(valid, log_input, ops.full_like(log_input, LOG_ZERO))
        else:
            key = ops.where(valid, key, ops.zeros_like(key))

    length = chunk_length(steps, chunk_size)
    chunks = -(-steps // length)
    padding = chunks * length - steps

    def chunked(x, fill=0.0):
        if padding:
            pad = ops.full_like(x[:, :1], fill)
            x = ops.concatenate([x, ops.repeat(pad, padding, axis=1)], axis=1)
        return ops.reshape(x, (-1, chunks, length, *x.shape[2:]))

    q, v, g = chunked(query), chunked(value), chunked(log_decay)
    # Padded steps are masked steps: no key (or no input) and no decay.
    k = chunked(key)
    i = None if log_input is None else chunked(log_input, LOG_ZERO)
    segments = _Segments(length, None if reset is None else chunked(reset, False))

    F = ops.cumsum(g, axis=2)  # (batch, chunks, L, heads, 1 or key_dim)
    G = F - segments.base(F - g)  # log decay since each step's segment began
    restart = restart_states is not None and reset is not None

    if normalized:
        o, m_t, (c, m) = _normalized(
            q, k, v, F, G, i, states, segments, restart_states if restart else None
        )
        numerator, denominator = o[..., :value_dim], o[..., value_dim:]
        o = numerator / (ops.maximum(ops.abs(denominator), ops.exp(-m_t)) + EPSILON)
        final = [c[..., :value_dim], c[..., value_dim], m]
    else:
        o, final = _plain(
            q, k, v, F, G, states[0], segments, restart_states[0] if restart else None
        )
        final = [final]
    o = ops.reshape(o, (-1, chunks * length, heads, value_dim))
    if padding:
        o = o[:, :steps]
    return ops.cast(o, dtype), [ops.cast(s, dtype) for s in final]


class _Segments:
    """Where each step's segment of its chunk began: at the chunk's start, or
    at a reset in the chunk. A step reads writes of its own segment only, and
    the state before the chunk only if its segment began with the chunk
    (`opened`)."""

    def __init__(self, length: int, reset: Tensor | None):
        steps = ops.arange(length)
        self.causal = steps[None, :] <= steps[:, None]  # (L, L): j <= t
        self.reset = reset
        if reset is None:
            self.same = self.causal[None, None]  # (1, 1, L, L)
            self.opened = self.index = None
            return
        # Each step's segment, counted from the chunk's start.
        self.index = index = ops.cumsum(ops.cast(reset, "int32"), axis=2)  # (batch, chunks, L)
        self.same = ops.logical_and(
            self.causal, ops.equal(index[..., :, None], index[..., None, :])
        )  # (batch, chunks, L, L)
        self.opened = ops.equal(index, 0)

    def base(self, before: Tensor) -> Tensor:
        """Each step's `before` value (per step of a chunk) at its segment's
        first step: zeros for segments the chunk opens."""
        if self.reset is None:
            return ops.zeros_like(before)
        starts = ops.logical_and(self.same, self.reset[..., None, :])
        return ops.einsum("bntj,bnjhg->bnthg", ops.cast(starts, before.dtype), before)

    def pick(self, opened: Tensor, restarted: Tensor) -> Tensor:
        """`opened` where a step's segment began with the chunk, else
        `restarted` (time on axis 2)."""
        if self.opened is None:
            return opened
        flags = self.opened
        for _ in range(len(opened.shape) - 3):
            flags = ops.expand_dims(flags, -1)
        return ops.where(flags, opened, restarted)


def _chunk_states(a: Tensor, b: Tensor, s0: Tensor, segments: _Segments, restart: Tensor | None):
    """The state before and after each chunk, `S_out = a S_in + b` over chunks;
    a chunk whose last segment began with a reset starts from `restart`
    instead (`b` then holds `a restart`)."""
    opened = segments.opened  # a restart comes with resets, so with segments
    if restart is not None and opened is not None:
        ended_opened = opened[:, :, -1]
        for _ in range(len(b.shape) - 2):
            ended_opened = ops.expand_dims(ended_opened, -1)
        b = b + ops.where(ended_opened, ops.zeros_like(b), a * ops.expand_dims(restart, 1))
        a = ops.where(ended_opened, a, ops.zeros_like(a))
    after = _LINEAR.states(a, b, s0)
    before = ops.concatenate([ops.expand_dims(s0, 1), after[:, :-1]], axis=1)
    return before, after[:, -1]


def _read_states(q: Tensor, s_in: Tensor, segments: _Segments, restart: Tensor | None):
    """`q_tᵀ S` for each step's starting state: the chunk's or the restart
    states."""
    opened = ops.einsum("bnthk,bnhkv->bnthv", q, s_in)
    if restart is None:
        return opened
    return segments.pick(opened, ops.einsum("bnthk,bhkv->bnthv", q, restart))


def _plain(q, k, v, F, G, s0, segments, restart):
    """The unnormalized form: outputs and the final state."""
    decays = int(F.shape[-1])
    last = F[:, :, -1:]
    # The chunk's writes, decayed to its end; only the last segment's count.
    weight = ops.exp(last - F)
    if segments.reset is not None:
        same = ops.cast(segments.same[:, :, -1], F.dtype)[..., None, None]
        weight = weight * same
    writes = ops.einsum("bnjhk,bnjhv->bnhkv", k * weight, v)
    # `a` broadcasts over values, and over keys for a decay per head.
    a = ops.exp(G[:, :, -1])[..., None]  # (batch, chunks, heads, 1 or key_dim, 1)
    s_in, final = _chunk_states(a, writes, s0, segments, restart)

    if decays == 1:
        scores = _scores_per_head(q, k, F)
        scores = ops.where(segments.same[:, :, None], scores, ops.zeros_like(scores))
        within = ops.einsum("bnhtj,bnjhv->bnthv", scores, v)
    else:
        within = _within_per_key(q, k, v, F, segments)
    return within + _read_states(q * ops.exp(G), s_in, segments, restart), final


def _scores_per_head(q, k, F):
    """`(q_t · k_j) exp(F_t - F_j)` for `j <= t` (else 0), a decay per head:
    `(batch, chunks, heads, L, L)`."""
    f = ops.transpose(F[..., 0], (0, 1, 3, 2))  # (batch, chunks, heads, L)
    log = f[..., :, None] - f[..., None, :]
    length = int(f.shape[-1])
    causal = ops.arange(length)[None, :] <= ops.arange(length)[:, None]
    decay = ops.exp(ops.where(causal, log, ops.full_like(log, LOG_ZERO)))
    return ops.einsum("bnthk,bnjhk->bnhtj", q, k) * decay


def _within_per_key(q, k, v, F, segments: _Segments):
    """`Σ_{j<=t} (Σ_d q_td k_jd exp(F_td - F_jd)) v_j` over each step's
    segment, a decay per key dimension, exactly: `(q_t · k_t) v_t` on the
    diagonal, and the rest by halves (`_halves`). The chunk is filled to a
    power of two steps."""
    length = int(q.shape[2])
    size = 2 ** math.ceil(math.log2(max(length, 1)))
    index = segments.index
    if size != length:
        fill = size - length
        q, k, v = (ops.pad(t, [(0, 0), (0, 0), (0, fill), (0, 0), (0, 0)]) for t in (q, k, v))
        F = ops.concatenate([F, ops.repeat(F[:, :, -1:], fill, axis=2)], axis=2)
        index = None if index is None else ops.pad(index, [(0, 0), (0, 0), (0, fill)])
    o = ops.sum(q * k, axis=-1, keepdims=True) * v
    half = size // 2
    while half >= 1:
        o = o + _halves(q, k, v, F, index, half)
        half //= 2
    return o[:, :, :length]


def _halves(q, k, v, F, index, half: int):
    """The part of `_within_per_key` from steps `j` in the first half of a
    block of `2 half` steps to steps `t` in its second half, each factor taken
    from the last step `e` of the first half: `(q_t ⊙ exp(F_t - F_e))ᵀ (k_j ⊙
    exp(F_e - F_j))`, both at most 1 (`j <= e < t`), so none overflows, and
    every pair of halves is one product of `half x half` scores, none wasted."""
    chunks, size, heads, key_dim = (int(d) for d in q.shape[1:])
    value_dim = int(v.shape[-1])

    # One leading axis for (batch, chunks, blocks): XLA's CPU compiler crashes
    # on the gradients of einsums of higher rank (jaxlib 0.10.2).
    def halves(x):
        x = ops.reshape(x, (-1, 2, half, *x.shape[3:]))
        return x[:, 0], x[:, 1]

    F_first, F_second = halves(F)
    end = F_first[:, -1:]
    q = halves(q)[1] * ops.exp(F_second - end)
    k = halves(k)[0] * ops.exp(end - F_first)
    v = halves(v)[0]
    if half <= SMALL_HALF:
        # (x, t, j, heads): products too small for a matmul to pay (torch's
        # CPU matmul loops over a batch of them).
        scores = ops.sum(q[:, :, None] * k[:, None], axis=-1)
    else:
        scores = ops.einsum("xthd,xjhd->xtjh", q, k)
    if index is not None:
        first, second = halves(index)
        same = ops.equal(second[:, :, None], first[:, None, :])
        scores = ops.where(same[..., None], scores, ops.zeros_like(scores))
    if half <= SMALL_HALF:
        o = ops.sum(scores[..., None] * v[:, None], axis=2)
    else:
        o = ops.einsum("xtjh,xjhv->xthv", scores, v)
    o = ops.stack([ops.zeros_like(o), o], axis=1)
    return ops.reshape(o, (-1, chunks, size, heads, value_dim))


def _normalized(q, k, v, F, G, i, states, segments, restart):
    """The mLSTM form (a decay per head): `o` with its last value column the
    normaliser's `n_tᵀ q_t`, the stabiliser `m_t` `(batch, chunks, L, heads,
    1)`, and the final `[C | n, m]`."""
    c0, m0 = states
    f, g_since, log_in = (ops.transpose(t[..., 0], (0, 1, 3, 2)) for t in (F, G, i))
    same = segments.same[:, :, None]
    # The log weight of step j's write at step t: (batch, chunks, heads, L, L).
    pair = f[..., :, None] - f[..., None, :] + log_in[..., None, :]
    pair = ops.where(same, pair, ops.full_like(pair, 2 * LOG_ZERO))
    # `amax`: Keras's torch `max` reads its result's `.values`, which Dynamo
    # cannot trace in a full graph.
    local = ops.amax(pair, axis=-1)  # (batch, chunks, heads, L)

    # The stabiliser at the chunks' ends, then at every step.
    a_m, b_m = g_since[..., -1], local[..., -1]
    m_base = None
    if restart is not None:
        m_restart = restart[1][:, None]  # (batch, 1, heads)
        ended_opened = segments.opened[:, :, -1, None]
        b_m = ops.where(ended_opened, b_m, ops.maximum(b_m, m_restart + a_m))
        a_m = ops.where(ended_opened, a_m, ops.full_like(a_m, LOG_ZERO))
    m_after = _MAX_PLUS.states(a_m, b_m, m0)
    m_base = ops.concatenate([ops.expand_dims(m0, 1), m_after[:, :-1]], axis=1)[..., None]
    if restart is not None:
        opened = ops.expand_dims(segments.opened, 2)
        m_base = ops.where(opened, m_base, m_restart[..., None])
    m_t = ops.maximum(local, m_base + g_since)

    # Every weight relative to the stabiliser of the step that reads it.
    weights = ops.exp(pair - m_t[..., None])
    carried = ops.exp(m_base + g_since - m_t)  # the starting state's factor
    writes = ops.einsum("bnhj,bnjhk,bnjhv->bnhkv", weights[..., -1, :], k, v)
    restart_c = None if restart is None else restart[0]
    c_in, c_final = _chunk_states(carried[..., -1, None, None], writes, c0, segments, restart_c)
    scores = ops.einsum("bnthk,bnjhk->bnhtj", q, k) * weights
    within = ops.einsum("bnhtj,bnjhv->bnthv", scores, v)
    carried = ops.expand_dims(ops.transpose(carried, (0, 1, 3, 2)), -1)
    o = within + _read_states(q * carried, c_in, segments, restart_c)
    m_t = ops.expand_dims(ops.transpose(m_t, (0, 1, 3, 2)), -1)
    return o, m_t, [c_final, m_after[:, -1]]


def _records_length(call: RecurrentCall) -> bool:
    """Whether the trace of an export records the length as a tensor whose
    value it has (torch's tracers: the backend's `traces_unroll`)."""
    x = keras.tree.flatten(call.inputs)[0]
    return bool(call.exporting) and traits().traces_unroll and not isinstance(x.shape[1], int)


def loop_is_faster(call: RecurrentCall) -> str | None:
    """Why the step loop beats the chunks for `call`, or `None`: inference of
    a decay per key dimension, where the backend's `loop_beats_chunks` says
    so (JAX's CPU, bench.py `--layers matrix`); a train step gains from the
    chunks everywhere."""
    if call.training or not call.cell.decay_per_key:
        return None
    return traits().loop_beats_chunks()


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
        o, states = chunkwise(
            gates.query,
            gates.key,
            gates.value,
            gates.log_decay,
            keras.tree.flatten(call.states),
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
