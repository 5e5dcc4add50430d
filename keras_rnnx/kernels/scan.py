"""The parallel-scan kernel: a linear-recurrence cell over a whole sequence at once.

For a `LinearRecurrentCell`, `h_t = a_t * h_{t-1} + b_t`, and the pairs
`(a_t, b_t)` compose associatively, `(a, b) ∘ (a', b') = (a' a, a' b + b')`:
a chunk of steps is one pair, so a scan can run the chunks side by side
instead of the steps one by one. The rules of a sequence
(`kernels/sequence.py`) carry over as pairs: a masked step is the identity
pair, a reset step the pair from the restart states, and the held outputs a
recurrence of their own, scanned the same way.
"""

from __future__ import annotations

import keras

from keras_rnnx.cells.linear import LinearRecurrentCell
from keras_rnnx.kernels.registry import RecurrentCall, register_kernel
from keras_rnnx.kernels.sequence import (
    Recurrence,
    held_outputs,
    identity_at,
    in_processing_order,
    restart_pairs,
)
from keras_rnnx.kernels.traits import traits


def loop_is_faster() -> str | None:
    """Why the step loop beats the scan here, or `None` (the backend's
    `loop_beats_scan`: on JAX's CPU its compiled loop costs less than the
    scan's passes over the sequence, bench.py `--layers beyond`)."""
    return traits().loop_beats_scan()


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
        reason = loop_is_faster()
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
        x, mask, reset = (
            None if f is None else in_processing_order(f, call.go_backwards)
            for f in (x, call.mask, call.reset)
        )
        (h0,) = keras.tree.flatten(call.states)
        a, b = cell.coefficients(x)
        log = cell.log_space
        if mask is not None:
            a, b = identity_at(mask, a, b, log=log, one=None if log else cell.one(a))
        if reset is not None:
            (s,) = keras.tree.flatten(call.restart_states)
            a, b = restart_pairs(reset, a, b, s, cell.multiply, log=log)
        if log:
            h = Recurrence.log().log_states(a, b, h0)
        else:
            h = Recurrence.linear(cell.multiply).states(a, b, h0)
        outputs = cell.readout(h, x)
        if mask is not None:
            outputs = held_outputs(outputs, mask, reset, call.zero_output_for_mask)
        states = keras.tree.pack_sequence_as(call.states, [h[:, -1]])
        return outputs[:, -1], outputs, states


register_kernel(ParallelScanKernel())
