"""The parallel-scan kernel: a linear-recurrence cell over a whole sequence at once.

For a `LinearRecurrentCell`, `h_t = a_t * h_{t-1} + b_t`, and the pairs
`(a_t, b_t)` compose associatively, `(a, b) ∘ (a', b') = (a' a, a' b + b')`:
a chunk of steps is one pair, so a scan can run the chunks side by side
instead of the steps one by one. The reference loop's semantics carry over
as pairs:

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
from keras_rnnx.kernels.traits import traits
from keras_rnnx.types import Structure, Tensor

# log(0) for the identity pair in log space: finite, so that gradients stay
# finite, and far below any float's smallest exponent (also float16's).
LOG_ZERO = -1e4

# Steps per chunk: the scan runs about 2 x CHUNK sequential steps for every
# factor of CHUNK in the length, each over all chunks at once (bench.py
# `--layers beyond`: 16 to 128 alike at 1024 to 16384 steps).
CHUNK = 16


def loop_is_faster(call: RecurrentCall) -> str | None:
    """Why the step loop beats the scan for `call`, or `None` (the backend's
    `loop_beats_scan`: on JAX's CPU its compiled loop costs less than the
    scan's passes over the sequence, bench.py `--layers beyond`)."""
    return traits().loop_beats_scan()


class Recurrence:
    """`h_t = a_t ⊗ h_{t-1} ⊕ b_t`, given as `step(a, h, b)` and the
    composition of coefficients, `compose(a, a')` (`a` first)."""

    def __init__(self, step, compose):
        self.step, self.compose = step, compose

    @classmethod
    def linear(cls, multiply):
        return cls(lambda a, h, b: multiply(a, h) + b, lambda a1, a2: multiply(a2, a1))

    @classmethod
    def log(cls):
        """The same in log space: `log h_t = logaddexp(log a_t + log h_{t-1}, log b_t)`."""
        return cls(lambda a, h, b: ops.logaddexp(a + h, b), lambda a1, a2: a1 + a2)

    def states(self, a: Tensor, b, h0: Tensor) -> Structure | None:
        """Every `h_t` from `h0` (time on axis 1 of `a` and `b`)."""
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
        states = ops.reshape(ops.stack(states, axis=2), (-1, length, *a.shape[2:]))
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


def _expand(flags, like):
    """`(batch, time)` flags as a tensor that broadcasts against `like`."""
    return ops.reshape(flags, (*flags.shape[:2], *([1] * (len(like.shape) - 2))))


def _log_states(a, b, h0):
    """`h_t` of the recurrence given as `(log a, log b)`, from a real `h0`:
    `h_t = exp(Σ log a) h0 + exp(log B_t)`, `B` scanned from zero."""
    from_zero = Recurrence.log().states(a, b, ops.full_like(h0, LOG_ZERO))
    return ops.exp(ops.cumsum(a, axis=1)) * ops.expand_dims(h0, 1) + ops.exp(from_zero)


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
            # Its unrolled chunks would export as thousands of ops; the step
            # loop exports as a loop.
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
            (s,) = keras.tree.flatten(call.restart_states)
            starts = _expand(reset, a)
            if log:
                a_s = ops.exp(a) * ops.expand_dims(s, 1)
                b = ops.where(starts, ops.log(ops.exp(b) + a_s), b)
                a = ops.where(starts, ops.full_like(a, LOG_ZERO), a)
            else:
                b = ops.where(starts, cell.multiply(a, ops.expand_dims(s, 1)) + b, b)
                a = ops.where(starts, ops.zeros_like(a), a)
        if log:
            h = _log_states(a, b, h0)
        else:
            h = Recurrence.linear(cell.multiply).states(a, b, h0)
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
        return Recurrence.linear(ops.multiply).states(keep, y, ops.zeros_like(y[:, 0]))


register_kernel(ParallelScanKernel())
