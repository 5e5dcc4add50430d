"""Sequences as chunks, for the chunkwise kernels (`kernels/chunkwise.py`,
`kernels/delta_rule.py`): the layout `(batch, heads, chunks, L, ...)`, the
segments that resets split a chunk into, the recurrence between chunks, and
the decays within one."""

from __future__ import annotations

import math

from keras import ops

from keras_rnnx.kernels.sequence import LOG_ZERO, Recurrence, broadcast_flags
from keras_rnnx.types import Tensor

# Steps per chunk unless a cell or a call sets it: the chunk's `L x L` scores
# cost `L` per step, and the recurrence between chunks `T / L` steps
# (bench.py `--layers matrix`: 32 to 128 within 10% at 1024 to 16384 steps).
CHUNK = 64

# Halves of blocks this short or shorter multiply elementwise.
SMALL_HALF = 4
# A short sequence's chunk: its length rounded up to this many steps.
ROUND = 16


def chunk_length(steps: int, chunk_size: int | None) -> int:
    """The steps per chunk: `chunk_size`, or `CHUNK`, or for a shorter
    sequence its length rounded up to `ROUND` steps."""
    if chunk_size:
        return chunk_size
    return min(CHUNK, ROUND * math.ceil(steps / ROUND))


class Chunks:
    """A sequence of `steps` steps as `count` chunks of `length` steps, the
    last filled with `padding` steps (which the kernels make masked steps)."""

    def __init__(self, steps: int, heads: int, chunk_size: int | None):
        self.steps, self.heads = steps, heads
        self.length = chunk_length(steps, chunk_size)
        self.count = -(-steps // self.length)
        self.padding = self.count * self.length - steps

    def split(self, x: Tensor, fill: float | bool = 0.0) -> Tensor:
        """`(batch, heads, chunks, L, ...)` from `(batch, time, heads, ...)`
        (or `(batch, chunks, L)` from `(batch, time)`), filled with `fill`:
        head-major, so that every product in a chunk is a batched matmul with
        no copy of its operands."""
        if self.padding:
            pad = ops.full_like(x[:, :1], fill)
            x = ops.concatenate([x, ops.repeat(pad, self.padding, axis=1)], axis=1)
        if len(x.shape) == 2:
            return ops.reshape(x, (-1, self.count, self.length))
        x = ops.swapaxes(x, 1, 2)
        return ops.reshape(x, (-1, self.heads, self.count, self.length, *x.shape[3:]))

    def merge(self, o: Tensor) -> Tensor:
        """`(batch, time, heads, dim)` from every step's `o` by chunks, the
        filled steps dropped."""
        dim = int(o.shape[-1])
        o = ops.swapaxes(ops.reshape(o, (-1, self.heads, self.count * self.length, dim)), 1, 2)
        return o[:, : self.steps] if self.padding else o


class Segments:
    """Where each step's segment of its chunk began: at the chunk's start, or
    at a reset in the chunk. A step reads writes of its own segment only, and
    the state before the chunk only if its segment began with the chunk
    (`opened`). Flags are `(batch, 1, chunks, L, ...)`: the same for every
    head."""

    def __init__(self, length: int, reset: Tensor | None):
        steps = ops.arange(length)
        self.causal = steps[None, :] <= steps[:, None]  # (L, L): j <= t
        self.reset = reset
        if reset is None:
            self.same = self.causal[None, None, None]  # (1, 1, 1, L, L)
            self.opened = self.index = None
            return
        self.reset = reset = ops.expand_dims(reset, 1)  # (batch, 1, chunks, L)
        # Each step's segment, counted from the chunk's start.
        self.index = index = ops.cumsum(ops.cast(reset, "int32"), axis=3)
        self.same = ops.logical_and(
            self.causal, ops.equal(index[..., :, None], index[..., None, :])
        )  # (batch, 1, chunks, L, L)
        self.opened = ops.equal(index, 0)

    def base(self, before: Tensor) -> Tensor:
        """Each step's `before` value (per step of a chunk) at its segment's
        first step: zeros for segments the chunk opens."""
        if self.reset is None:
            return ops.zeros_like(before)
        starts = ops.logical_and(self.same, self.reset[..., None, :])
        return ops.matmul(ops.cast(starts, before.dtype), before)

    def pick(self, opened: Tensor, restarted: Tensor) -> Tensor:
        """`opened` where a step's segment began with the chunk, else
        `restarted` (time on axis 3)."""
        if self.opened is None:
            return opened
        return ops.where(broadcast_flags(self.opened, opened), opened, restarted)


def by_chunk(recurrence: Recurrence, a: Tensor, b: Tensor, h0: Tensor):
    """`recurrence`'s state before each chunk (axis 2 of `(batch, heads,
    chunks, ...)`) and after the last, each head a row of its own."""
    heads, chunks = int(b.shape[1]), int(b.shape[2])

    def rows(x):
        return ops.reshape(x, (-1, *x.shape[2:]))

    before, last = recurrence.states_before(rows(a), rows(b), rows(h0))
    return (
        ops.reshape(before, (-1, heads, chunks, *b.shape[3:])),
        ops.reshape(last, (-1, heads, *b.shape[3:])),
    )


def read_states(q: Tensor, s_in: Tensor, segments: Segments, restart: Tensor | None):
    """`q_tᵀ S` for each step's starting state: the chunk's or the restart
    states."""
    opened = ops.matmul(q, s_in)
    if restart is None:
        return opened
    return segments.pick(opened, ops.matmul(q, ops.expand_dims(restart, 2)))


def decay_per_head(F):
    """`exp(F_t - F_j)` for `j <= t` (else 0), a decay per head:
    `(batch, heads, chunks, L, L)`."""
    f = F[..., 0]
    log = f[..., :, None] - f[..., None, :]
    length = int(f.shape[-1])
    causal = ops.arange(length)[None, :] <= ops.arange(length)[:, None]
    return ops.exp(ops.where(causal, log, ops.full_like(log, LOG_ZERO)))
