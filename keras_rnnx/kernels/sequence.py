"""The rules of a whole sequence, which every kernel keeps: the reference
loop defines them, and the others (the TensorFlow loop, the fused pipeline,
the parallel scan, torch's segments) take them from here rather than write
them again.

* **Order.** `go_backwards` processes the sequence from its end; outputs come
  back in processing order (reversed), as in Keras (`in_processing_order`,
  its own inverse).
* **Masked steps.** At a masked step the states are carried unchanged and the
  output is the previous step's output: zeros before the first valid step, or
  always zeros with `zero_output_for_mask` (`masked_step`). As coefficients
  of a linear recurrence, a masked step is the identity (`identity_at`), and
  the held outputs are a recurrence of their own (`held_outputs`).
* **Resets.** Where a row's `reset` is true, its states go back to the
  restart states and its previous output to zeros before that step runs
  (`restart`), at any step, the first included: a row reset at its first
  step starts from the restart states whatever states it was given or
  carried. `reset` is boolean (`check_reset`); a layer gives it in time order
  and `resets_in_processing_order` shifts it for `go_backwards` (a segment
  processed from its end restarts at its last step).
* **The last output** is the output of the last processed step, after the
  masking above.
* **Masks as lengths**, for kernels that run right-padded rows (the fused
  vendors): `valid_steps_first` moves each row's valid steps, in processing
  order, to the front; the kernel runs the rows as right-padded sequences
  (the padding after the data, so each row's valid outputs are exact);
  `last_valid` and `keep_initial_where_empty` give the final states, and
  `masked_outputs` (or `last_output`) puts back what the reference loop
  outputs at the masked steps.
* **What masked steps hold** reaches no kernel: the layer zeros them
  (`zero_masked_steps`).
"""

from __future__ import annotations

import keras
from keras import ops

from keras_rnnx.kernels.traits import traits
from keras_rnnx.types import Tensor

# log(0) for the identity pair in log space: finite, so that gradients stay
# finite, and far below any float's smallest exponent (also float16's).
LOG_ZERO = -1e4

# Steps per chunk of `Recurrence.states` away from JAX: about 2 x CHUNK
# sequential steps for every factor of CHUNK in the length, each over all
# chunks at once (bench.py `--layers beyond`: 16 to 128 alike at 1024 to
# 16384 steps).
CHUNK = 16


def in_processing_order(x: Tensor, go_backwards: bool, axis: int = 1) -> Tensor:
    """`x` (time on `axis`) in the order its steps are processed: reversed
    for `go_backwards`. Its own inverse, so it also turns outputs in
    processing order back into time order (`in_time_order`)."""
    return ops.flip(x, axis=axis) if go_backwards else x


in_time_order = in_processing_order


def check_reset(reset: Tensor | None, layer_name: str) -> None:
    """Refuse a `reset` that is not boolean: a reset of floats or counts has
    no one meaning (a cast would read 0.3 as "reset").

    Raises:
        ValueError: `reset`'s dtype is not `bool`.
    """
    if reset is None:
        return
    dtype = keras.backend.standardize_dtype(reset.dtype)
    if dtype != "bool":
        raise ValueError(
            f"Layer {layer_name!r} expects `reset` to be a boolean tensor shaped (batch, "
            f"time), true where a row restarts. Received: reset with dtype {dtype}"
        )


def resets_in_processing_order(reset: Tensor | None, go_backwards: bool) -> Tensor | None:
    """A layer's `reset` (time order, true at each segment's first step) as
    the kernels take it: still in time order, but true at the step where the
    processing restarts, which for `go_backwards` is each segment's last
    step, the step before the next segment's first."""
    if reset is None or not go_backwards:
        return reset
    return ops.concatenate([reset[:, 1:], ops.zeros_like(reset[:, :1])], axis=1)


def broadcast_flags(flags: Tensor, like: Tensor) -> Tensor:
    """Flags over the leading axes of `like` (`(batch,)`, `(batch, time)`, ...)
    shaped to broadcast against it (by new axes, not a reshape: the batch may
    be unknown when traced)."""
    for _ in range(len(like.shape) - len(flags.shape)):
        flags = ops.expand_dims(flags, -1)
    return flags


def where_flags(flags: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """`new` where `flags` (`(batch,)` or `(batch, time)`) is true, else `old`."""
    return ops.where(broadcast_flags(flags, new), new, old)


def restart(reset_t: Tensor, restart_states: list, states: list, previous: list | None = None):
    """The states (and previous outputs) a step starts from, where `reset_t`
    marks the rows that restart: the restart states and zero outputs there.

    Returns:
        `states` alone, or `(states, previous)` when `previous` is given.
    """
    states = [where_flags(reset_t, s0, s) for s0, s in zip(restart_states, states)]
    if previous is None:
        return states
    return states, [where_flags(reset_t, ops.zeros_like(p), p) for p in previous]


def masked_step(mask_t, new_states, states, outputs, previous, zero_output_for_mask: bool):
    """`(states, outputs)` after one step, on flat lists: at a masked row the
    states carried and the output held (or zeros with
    `zero_output_for_mask`)."""
    if mask_t is None:
        return list(new_states), list(outputs)
    return (
        [where_flags(mask_t, n, s) for n, s in zip(new_states, states)],
        [
            where_flags(mask_t, o, ops.zeros_like(o) if zero_output_for_mask else p)
            for o, p in zip(outputs, previous)
        ],
    )


def identity_at(mask: Tensor, a: Tensor, b: Tensor, *, log: bool, one: Tensor):
    """A linear recurrence's coefficients `(a, b)` (`h_t = a_t h_{t-1} +
    b_t`, time on axis 1) with the identity pair `(one, 0)` at masked steps,
    where the state is carried; in log space `(log a, log b)`, the identity
    is `(0, LOG_ZERO)`."""
    zero = ops.full_like(b, LOG_ZERO) if log else ops.zeros_like(b)
    one = ops.zeros_like(a) if log else one
    return where_flags(mask, a, one), where_flags(mask, b, zero)


def restart_pairs(reset: Tensor, a: Tensor, b: Tensor, restart_state: Tensor, multiply, *, log):
    """The coefficients with a restart where `reset` is true: a step from the
    restart state `s` is the pair `(0, a s + b)`, whatever came before."""
    s = ops.expand_dims(restart_state, 1)
    if log:
        b = where_flags(reset, ops.log(ops.exp(b) + ops.exp(a) * s), b)
        return where_flags(reset, ops.full_like(a, LOG_ZERO), a), b
    return where_flags(reset, ops.zeros_like(a), a), where_flags(reset, multiply(a, s) + b, b)


def held_outputs(y: Tensor, mask: Tensor, reset: Tensor | None, zero_output_for_mask: bool):
    """Every step's outputs `y` (time on axis 1) as the reference loop gives
    them: at masked steps, the last valid output (zeros before it, or always
    zeros with `zero_output_for_mask`; a reset clears it). Held outputs are
    the linear recurrence `o_t = (1 - m_t) o_{t-1} + m_t y_t`."""
    valid = broadcast_flags(mask, y)
    y = ops.where(valid, y, ops.zeros_like(y))
    if zero_output_for_mask:
        return y
    keep = ops.logical_not(valid)
    if reset is not None:
        keep = ops.logical_and(keep, ops.logical_not(broadcast_flags(reset, y)))
    keep = ops.cast(ops.broadcast_to(keep, ops.shape(y)), y.dtype)
    return Recurrence.linear(ops.multiply).states(keep, y, ops.zeros_like(y[:, 0]))


def zero_masked_steps(x: Tensor, mask: Tensor) -> Tensor:
    """`x` with zeros at the steps `mask` (batch, time) marks invalid: NaN or
    sentinel padding (`Masking(mask_value=...)`) reaches no state and no
    gradient."""
    return ops.where(broadcast_flags(mask, x), x, ops.zeros_like(x))


def keep_initial_where_empty(lengths: Tensor, state: Tensor, initial):
    """`state` for rows with a valid step, `initial` for rows with none (which
    a fused kernel ran for one step, as cuDNN wants at least one)."""
    return ops.where((lengths > 0)[:, None], state, initial)


def _gather_steps(x, index, exporting=False):
    """`x[b, index[b, t]]` for `x` shaped `(batch, time, features)` and
    `index` `(batch, steps)`. For an export, as a product with the one-hot
    `index` (exact: one term each; `O(time**2)`): LiteRT's torch converter
    fails on the int64 indices Keras's torch `take` makes."""
    if exporting:
        time = ops.shape(x)[1]
        picks = ops.equal(index[:, :, None], ops.arange(time, dtype=index.dtype)[None, None, :])
        return ops.einsum("bst,btf->bsf", ops.cast(picks, x.dtype), x)
    batch, time, features = ops.shape(x)
    rows = ops.arange(batch, dtype="int32")[:, None] * time
    # One row index per step: `take_along_axis` would take one per value (and
    # ONNX's exporter has no `take_along_dim`).
    steps = ops.take(ops.reshape(x, (-1, features)), ops.reshape(rows + index, (-1,)), axis=0)
    return ops.reshape(steps, (batch, ops.shape(index)[1], features))


def valid_steps_first(
    x: Tensor,
    mask: Tensor | None,
    *,
    go_backwards: bool,
    sort: bool = True,
    exporting: bool = False,
):
    """`(x, counts)`: `x` in processing order (`go_backwards` reverses it) with
    each row's valid steps first and its masked steps after them, and
    `counts[b, t]`, how many valid steps row `b` has run by step `t` of its
    processing order (`counts[:, -1]` are the rows' lengths).

    Any mask: right- and left-padded ones and masks with holes alike. A fused
    kernel then runs the rows as right-padded, so each row's valid outputs and
    states are exact; `masked_outputs` puts the outputs back in place.
    `sort=False` finds the new order without sorting, in `O(time**2)` per
    row, for exporters that have no (stable) sort; `exporting` gathers the
    steps as `_gather_steps` does for an export.
    """
    x, mask = (in_processing_order(t, go_backwards) for t in (x, ops.cast(mask, "bool")))
    time = ops.shape(x)[1]
    steps = ops.arange(time, dtype="int32")[None, :]
    # int32 throughout (torch sums and cumsums integers as int64, which
    # LiteRT's torch converter then mismatches with its int32).
    counts = ops.cast(ops.cumsum(ops.cast(mask, "int32"), axis=1), "int32")
    if sort:  # valid steps keep their order, ahead of every masked one
        order = ops.argsort(ops.where(mask, steps, steps + time), axis=-1)
    else:  # where each step goes, inverted: the step that lands at each place
        lengths = counts[:, -1:]
        place = ops.where(mask, counts - 1, lengths + steps - counts)
        lands = ops.cast(ops.equal(place[:, :, None], steps[:, None, :]), "int32")
        order = ops.cast(ops.sum(lands * steps[:, :, None], axis=1), "int32")
    return _gather_steps(x, order, exporting), counts


def last_valid(y, lengths: Tensor, h0: Tensor, exporting=False):
    """Each row's output at its last valid step of right-padded `y`, or `h0`
    for a row with none."""
    last = _gather_steps(y, ops.maximum(lengths - 1, 0)[:, None], exporting)[:, 0]
    return keep_initial_where_empty(lengths, last, h0)


def masked_outputs(y, counts, zero_output_for_mask: bool, exporting=False):
    """The reference loop's outputs, from a run of the valid steps.

    `y` holds each row's outputs for its valid steps first, and `counts` says
    where each step's output is, as `valid_steps_first` lays them out. A
    masked step repeats the previous valid step's output (zeros before the
    first one, or always zeros with `zero_output_for_mask`).
    """
    shown = _valid_steps(counts) if zero_output_for_mask else counts > 0
    y = _gather_steps(y, ops.maximum(counts - 1, 0), exporting)
    return ops.where(shown[..., None], y, ops.zeros_like(y))


def last_output(last, counts, zero_output_for_mask: bool):
    """`masked_outputs(...)[:, -1]`, the last step's output, from `last`,
    each row's output at its last valid step (as `last_valid` gives it):
    zeros for a row with none, or when its last step is masked and
    `zero_output_for_mask`."""
    shown = _valid_steps(counts)[:, -1] if zero_output_for_mask else counts[:, -1] > 0
    return ops.where(shown[:, None], last, ops.zeros_like(last))


def _valid_steps(counts):
    """Whether each step is valid, from the running counts of valid steps."""
    previous = ops.concatenate([ops.zeros_like(counts[:, :1]), counts[:, :-1]], axis=1)
    return counts > previous


class Recurrence:
    """`h_t = a_t ⊗ h_{t-1} ⊕ b_t`, given as `step(a, h, b)` and the
    composition of coefficients, `compose(a, a')` (`a` first).

    The pairs `(a_t, b_t)` compose associatively, `(a, b) ∘ (a', b') = (a' a,
    a' b + b')`: a chunk of steps is one pair, so a scan can run the chunks
    side by side instead of the steps one by one.
    """

    def __init__(self, step, compose):
        self.step, self.compose = step, compose

    @classmethod
    def linear(cls, multiply):
        return cls(lambda a, h, b: multiply(a, h) + b, lambda a1, a2: multiply(a2, a1))

    @classmethod
    def log(cls):
        """The same in log space: `log h_t = logaddexp(log a_t + log h_{t-1}, log b_t)`."""
        return cls(lambda a, h, b: ops.logaddexp(a + h, b), lambda a1, a2: a1 + a2)

    def states(self, a: Tensor, b, h0: Tensor) -> Tensor:
        """Every `h_t` from `h0` (time on axis 1 of `a` and `b`): by
        `ops.associative_scan` where the backend's traits say so (JAX's,
        log-depth), else by chunks of steps in `keras.ops`."""
        if traits().associative_scan:

            def combine(first, second):
                (a1, b1), (a2, b2) = first, second
                return [self.compose(a1, a2), self.step(a2, b1, b2)]

            prefix_a, prefix_b = ops.associative_scan(combine, [a, b], axis=1)
            return self.step(prefix_a, ops.expand_dims(h0, 1), prefix_b)
        # Keras's torch scan builds its buffers with `torch.zeros` on the
        # default device and dtype (CPU, float32); its TensorFlow scan
        # branches on runtime lengths (`tf.cond`), which loses the rank in a
        # traced train step. Chunks in keras.ops, differentiated as they run,
        # took 3-4x less time for the states and their gradient than an
        # odd-even scan in keras.ops did on both (4096 steps).
        return self._chunked(a, b, h0)

    def states_before(self, a: Tensor, b: Tensor, h0: Tensor) -> tuple[Tensor, Tensor]:
        """The state before each step (time on axis 1), from `h0`, and the
        state after the last: by slices of `states` where the backend scans
        (JAX's), else stacked step by step (TensorFlow's gradient of a slice
        is a full-size copy of its own; JAX's of each of `T` pieces is one)."""
        after = self.states(a, b, h0)
        if traits().associative_scan:
            return ops.concatenate([ops.expand_dims(h0, 1), after[:, :-1]], axis=1), after[:, -1]
        after = ops.unstack(after, axis=1)
        return ops.stack([h0, *after[:-1]], axis=1), after[-1]

    def log_states(self, a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
        """`h_t` of a recurrence given as `(log a, log b)` (a `log()`
        recurrence), from a real `h0`: `h_t = exp(Σ log a) h0 + exp(log B_t)`,
        `B` scanned from zero."""
        from_zero = self.states(a, b, ops.full_like(h0, LOG_ZERO))
        return ops.exp(ops.cumsum(a, axis=1)) * ops.expand_dims(h0, 1) + ops.exp(from_zero)

    def _chunked(self, a, b, h0):
        """Each chunk's pair, the states at the chunks' ends from those
        (recursively), then each chunk's steps from the state before it."""
        steps = a.shape[1]
        if steps <= CHUNK:
            return self._loop(a, b, h0)
        chunks = steps // CHUNK
        length = chunks * CHUNK

        def split(x):
            x = x[:, :length] if steps % CHUNK else x
            return ops.unstack(ops.reshape(x, (-1, chunks, CHUNK, *x.shape[2:])), axis=2)

        a_steps, b_steps = split(a), split(b)
        total_a, total_b = a_steps[0], b_steps[0]
        for a_t, b_t in zip(a_steps[1:], b_steps[1:]):
            total_a, total_b = self.compose(total_a, a_t), self.step(a_t, total_b, b_t)
        ends = self._chunked(total_a, total_b, h0)
        starts = ops.concatenate([ops.expand_dims(h0, 1), ends[:, :-1]], axis=1)
        states = self._steps(a_steps, b_steps, starts)
        # The states are shaped as `b` (`a` may broadcast against them).
        states = ops.reshape(ops.stack(states, axis=2), (-1, length, *b.shape[2:]))
        if steps % CHUNK:
            rest = self._loop(a[:, length:], b[:, length:], ends[:, -1])
            states = ops.concatenate([states, rest], axis=1)
        return states

    def _loop(self, a, b, h):
        return ops.stack(self._steps(ops.unstack(a, axis=1), ops.unstack(b, axis=1), h), axis=1)

    def _steps(self, a_steps, b_steps, h):
        """The states after each of the steps, from `h`."""
        states = []
        for a_t, b_t in zip(a_steps, b_steps):
            h = self.step(a_t, h, b_t)
            states.append(h)
        return states
