"""The parallel-scan kernel: a linear-recurrence cell over a whole sequence at once.

For a `LinearRecurrentCell`, `h_t = a_t * h_{t-1} + b_t`, so every state is
`h_t = A_t * h_0 + B_t`, where `(A_t, B_t)` is the prefix of the pairs
`(a_s, b_s)` under `(a, b) ∘ (a', b') = (a' a, a' b + b')`, an associative
operator: a parallel scan computes all prefixes in `O(log T)` sequential
steps of `O(T)` work, where a loop takes `T`. The reference loop's semantics
carry over as pairs:

* a masked step is the identity pair `(1, 0)`: the state is carried;
* a reset step starts from the reset states `s`: `(0, a s + b)`;
* the outputs at masked steps repeat the last valid output (zeros before
  it, or always with `zero_output_for_mask`): that too is a linear
  recurrence, `o_t = (1 - m_t) o_{t-1} + m_t y_t`, scanned the same way.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_rnnx.cells.linear import LinearRecurrentCell
from keras_rnnx.kernels.registry import RecurrentCall, register_kernel

# log(0) for the identity pair in log space: finite, so that gradients stay
# finite, and far below any float's smallest exponent (also float16's).
LOG_ZERO = -1e4


def loop_is_faster(call: RecurrentCall) -> str | None:
    """Why the step loop beats the scan for `call`, or `None`: on a CPU,
    JAX's compiled loop costs less than the scan's passes over the sequence
    (bench.py, `--layers beyond`: the scan 2-7x slower)."""
    if call.backend == "jax":
        import jax

        if jax.default_backend() == "cpu":
            return "on JAX's CPU the compiled step loop is faster"
    return None


def associative_scan(combine, elems):
    """All prefixes of `elems` (a list of tensors, time on axis 1) under `combine`."""
    if keras.backend.backend() == "jax":
        return ops.associative_scan(combine, elems, axis=1)  # lax.associative_scan
    # Keras's torch scan interleaves in `torch.zeros` buffers of the default
    # device and dtype (CPU, float32): wrong for CUDA and float64. Its
    # TensorFlow scan branches on runtime lengths (`tf.cond`), which loses
    # the outputs' rank in a traced train step and ran slower than the loop.
    return _odd_even_scan(combine, elems)


def _odd_even_scan(combine, elems):
    """The odd-even parallel prefix (as `jax.lax.associative_scan`), in `keras.ops`.

    Steps pair up by a reshape, `(batch, time / 2, 2, ...)`, not by strided
    slices: a strided slice's gradient writes a whole-sequence buffer at
    every level, which made TensorFlow's train step 3x slower.
    """
    steps = elems[0].shape[1]
    if steps < 2:
        return elems
    pairs = steps // 2
    last = [e[:, 2 * pairs :] for e in elems] if steps % 2 else None
    head = [e[:, : 2 * pairs] for e in elems] if steps % 2 else elems
    split = [ops.unstack(ops.reshape(e, (-1, pairs, 2, *e.shape[2:])), 2, axis=2) for e in head]
    evens, odds = [s[0] for s in split], [s[1] for s in split]
    # The pairs' prefixes are the prefixes at odd steps; an even step's is
    # the odd step's before it and the step itself.
    odd = _odd_even_scan(combine, combine(evens, odds))
    even = combine([o[:, :-1] for o in odd], [e[:, 1:] for e in evens])
    even = [ops.concatenate([e[:, :1], f], axis=1) for e, f in zip(evens, even)]
    prefixes = [
        ops.reshape(ops.stack([e, o], axis=2), (-1, 2 * pairs, *e.shape[2:]))
        for e, o in zip(even, odd)
    ]
    if last:
        tail = combine([o[:, -1:] for o in odd], last)
        prefixes = [ops.concatenate([p, t], axis=1) for p, t in zip(prefixes, tail)]
    return prefixes


def _linear_combine(multiply):
    def combine(first, second):
        (a1, b1), (a2, b2) = first, second
        return [multiply(a2, a1), multiply(a2, b1) + b2]

    return combine


def _log_combine(first, second):
    (la1, lb1), (la2, lb2) = first, second
    return [la1 + la2, ops.logaddexp(la2 + lb1, lb2)]


def _expand(flags, like):
    """`(batch, time)` flags as a tensor that broadcasts against `like`."""
    return ops.reshape(flags, (*flags.shape[:2], *([1] * (len(like.shape) - 2))))


def scanned_states(a, b, h0, multiply):
    """Every `h_t = a_t * h_{t-1} + b_t` from `h0`, by the parallel scan."""
    prefix_a, prefix_b = associative_scan(_linear_combine(multiply), [a, b])
    return multiply(prefix_a, ops.expand_dims(h0, 1)) + prefix_b


class ParallelScanKernel:
    name = "parallel-scan"
    priority = 5
    fused = False
    resets = True

    def why_not(self, call: RecurrentCall) -> str | None:
        if not isinstance(call.cell, LinearRecurrentCell):
            return f"{type(call.cell).__name__} is not a linear recurrence"
        if call.unroll:
            return "unroll=True asks for the unrolled loop"
        reason = loop_is_faster(call)
        if reason:
            return reason
        if call.exporting:
            # Its strided slices and interleaves do not convert to exporters'
            # loops; the step loop exports.
            return f"exporting ({call.exporting}): the step loop exports"
        inputs = keras.tree.flatten(call.inputs)
        if len(inputs) != 1:
            return "its inputs are a structure, not one tensor"
        if not isinstance(inputs[0].shape[1], int):
            # The scan's tree of steps is laid out for a length known when
            # traced (JAX's shape inference gives a symbolic one).
            return "the number of steps is unknown when traced"
        return None

    def run(self, call: RecurrentCall):
        cell = call.cell
        x = keras.tree.flatten(call.inputs)[0]
        mask, reset = call.mask, call.reset
        if call.go_backwards:
            x = ops.flip(x, axis=1)
            mask, reset = (None if f is None else ops.flip(f, axis=1) for f in (mask, reset))
        (h0,) = keras.tree.flatten(call.states)
        a, b = cell.coefficients(x)
        log = cell.log_space
        # The identity pair, for masked steps.
        one = ops.zeros_like(a) if log else cell.one(a)
        zero = ops.full_like(b, LOG_ZERO) if log else ops.zeros_like(b)
        if mask is not None:
            valid = _expand(mask, a)
            a, b = ops.where(valid, a, one), ops.where(valid, b, zero)
        if reset is not None:
            # From the reset states s instead: (0, a s + b).
            (s,) = keras.tree.flatten(call.reset_states)
            starts = _expand(reset, a)
            if log:
                a_s = ops.exp(a) * ops.expand_dims(s, 1)
                b = ops.where(starts, ops.log(ops.exp(b) + a_s), b)
                a = ops.where(starts, ops.full_like(a, LOG_ZERO), a)
            else:
                b = ops.where(starts, cell.multiply(a, ops.expand_dims(s, 1)) + b, b)
                a = ops.where(starts, ops.zeros_like(a), a)
        if log:
            prefix_a, prefix_b = associative_scan(_log_combine, [a, b])
            h = ops.exp(prefix_a) * ops.expand_dims(h0, 1) + ops.exp(prefix_b)
        else:
            h = scanned_states(a, b, h0, cell.multiply)
        outputs = cell.readout(h, x)
        if mask is not None:
            outputs = self._hold_masked_outputs(call, outputs, mask, reset)
        states = keras.tree.pack_sequence_as(call.states, [h[:, -1]])
        return outputs[:, -1], outputs, states

    @staticmethod
    def _hold_masked_outputs(call, y, mask, reset):
        """At masked steps, the last valid output (zeros before it, or always)."""
        valid = _expand(mask, y)
        y = ops.where(valid, y, ops.zeros_like(y))
        if call.zero_output_for_mask:
            return y
        keep = ops.logical_not(valid)
        if reset is not None:
            keep = ops.logical_and(keep, ops.logical_not(_expand(reset, y)))
        keep = ops.cast(ops.broadcast_to(keep, ops.shape(y)), y.dtype)
        return scanned_states(keep, y, ops.zeros_like(y[:, 0]), lambda p, q: p * q)


register_kernel(ParallelScanKernel())
