"""The reference kernel: a `keras.ops` time loop over `cell.call`.

It runs every cell on every backend, step by step, by the rules of a
sequence (`kernels/sequence.py`: order, masked steps, resets, the last
output), which the fast kernels must reproduce.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_rnnx.cells.base import output_shapes, zeros_for
from keras_rnnx.kernels.registry import RecurrentCall, register_kernel
from keras_rnnx.kernels.sequence import in_processing_order, masked_step, restart
from keras_rnnx.kernels.traits import traits
from keras_rnnx.types import Cell


def check_structure(expected, received, what, cell: Cell):
    if len(keras.tree.flatten(expected)) != len(keras.tree.flatten(received)):
        raise ValueError(
            f"The cell {cell.name!r} returned {what} that do not match its "
            f"declared `{'state_size' if what == 'states' else 'output_size'}`: "
            f"expected {len(keras.tree.flatten(expected))} tensor(s) structured as "
            f"{keras.tree.map_structure(lambda s: tuple(s.shape), expected)}, "
            f"received {keras.tree.map_structure(lambda s: tuple(s.shape), received)}."
        )


def cell_step(call: RecurrentCall, output_structure):
    """One step of `call.cell` by the rules of a sequence (`kernels/sequence.py`).

    Returns `step(inputs_t, mask_t, flat_states, flat_prev, reset_t=None) ->
    (flat_states, flat_outputs)`, on flat lists; `mask_t` and `reset_t` are
    `(batch,)` or `None`. Loops on any backend share it, so they agree by
    construction.
    """
    cell, state_structure = call.cell, call.states
    arguments = call.step_arguments()
    flat_restart = keras.tree.flatten(call.restart_states) if call.reset is not None else []

    def step(inputs_t, mask_t, flat_states, flat_prev, reset_t=None):
        if reset_t is not None:
            flat_states, flat_prev = restart(reset_t, flat_restart, flat_states, flat_prev)
        inputs_t = keras.tree.pack_sequence_as(call.inputs, list(inputs_t))
        states = keras.tree.pack_sequence_as(state_structure, list(flat_states))
        output, new_states = cell(inputs_t, states, **arguments)
        if not isinstance(new_states, (list, tuple, dict)) and isinstance(state_structure, list):
            new_states = [new_states]
        check_structure(state_structure, new_states, "states", cell)
        check_structure(output_structure, output, "outputs", cell)
        return masked_step(
            mask_t,
            keras.tree.flatten(new_states),
            flat_states,
            keras.tree.flatten(output),
            flat_prev,
            call.zero_output_for_mask,
        )

    return step


def zero_outputs(call: RecurrentCall, batch):
    """The cell's output structure, as zeros: the output before the first step."""
    cell = call.cell
    dtype = getattr(cell, "compute_dtype", None) or keras.backend.floatx()
    return zeros_for(output_shapes(cell), batch, dtype)


class ReferenceKernel:
    name = "reference"
    priority = 0
    fused = False
    resets = True

    def why_not(self, call: RecurrentCall) -> str | None:
        return None

    def run(self, call: RecurrentCall):
        with call.dropout_on_cells():
            return self._loop(call)

    def _loop(self, call: RecurrentCall):
        flat_inputs = keras.tree.flatten(call.inputs)
        xs = [ops.moveaxis(x, 1, 0) for x in flat_inputs]  # time-major
        extras = [m for m in (call.mask, call.reset) if m is not None]
        xs += [ops.transpose(ops.cast(m, "bool")) for m in extras]
        xs = [in_processing_order(x, call.go_backwards, axis=0) for x in xs]
        output_structure = zero_outputs(call, ops.shape(flat_inputs[0])[0])
        one_step = cell_step(call, output_structure)
        n_inputs = len(flat_inputs)

        def step(carry, x_t):
            mask_t = x_t[n_inputs] if call.mask is not None else None
            reset_t = x_t[-1] if call.reset is not None else None
            new_carry = one_step(x_t[:n_inputs], mask_t, *carry, reset_t)
            return new_carry, new_carry

        init = (keras.tree.flatten(call.states), keras.tree.flatten(output_structure))
        # Where a trace records a scan's steps as that many indexed reads
        # (torch's), the exported model would repeat them for inputs of any
        # length, silently wrong; unrolled, the input is split into as many
        # steps, and another length is an error in the exported model.
        if call.unroll or (call.exporting and traits().traces_unroll):
            carry, ys = init, []
            for x_t in zip(*(ops.unstack(x, axis=0) for x in xs)):
                carry, y = step(carry, list(x_t))
                ys.append(y)
            ys = keras.tree.map_structure(lambda *a: ops.stack(a), *ys)
        else:
            carry, ys = ops.scan(step, init, xs)
        flat_states, flat_last = carry
        outputs = [ops.moveaxis(y, 0, 1) for y in ys[1]]
        return (
            keras.tree.pack_sequence_as(output_structure, flat_last),
            keras.tree.pack_sequence_as(output_structure, outputs),
            keras.tree.pack_sequence_as(call.states, flat_states),
        )


REFERENCE = register_kernel(ReferenceKernel())
