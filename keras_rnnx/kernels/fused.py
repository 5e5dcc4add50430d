"""What the fused (cuDNN-style) kernels share: which calls they can run, and
`run_fused`, the path they all run.

A fused kernel runs the whole sequence with a vendor's gate equations, so it
runs a cell with a fused spec (`kernels/specs.py`) that matches its options.
Any mask becomes a length per row, by the rules of a sequence
(`kernels/sequence.py`: `valid_steps_first`, then `masked_outputs`), so the
vendor runs right-padded rows. No mask value is read on the host, so this
traces whole under `jax.jit`, `tf.function` and `torch.compile`. `run_fused`
is that path, written in `keras.ops`: a backend's fused kernel supplies only
its vendor call.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_rnnx.cells.dropout import own_masks
from keras_rnnx.cells.stacked import cells_of
from keras_rnnx.kernels.registry import Kernel, RecurrentCall
from keras_rnnx.kernels.sequence import (
    in_processing_order,
    keep_initial_where_empty,
    last_output,
    last_valid,
    masked_outputs,
    valid_steps_first,
)
from keras_rnnx.kernels.specs import MODES, find_spec, fused_spec, spec_of
from keras_rnnx.types import Cell, Structure, Tensor

FLOATS = ("float32", "float64", "bfloat16", "float16")


def why_not_fused(
    call: RecurrentCall, modes: tuple[str, ...] = MODES, dtypes=FLOATS, projects=False
):
    """The reason a fused kernel that runs `modes` cannot run `call`'s cell,
    or None.

    Covers the cell's spec (see `kernels/specs.py`; for a stack, each cell's),
    its projection (`projects`: whether the vendor runs a projected LSTM, its
    weights then with `w_hr`) and the call's options; the mask and the device
    are each kernel's own business.
    """
    reason = why_not_fused_cell(call.cell, call.unroll, modes, projects)
    if reason is not None:
        return reason
    for cell in cells_of(call.cell):
        if call.training and getattr(cell, "recurrent_dropout", 0) > 0:
            return (
                "recurrent_dropout > 0 in training (recurrent_kernel_dropout, DropConnect "
                "on the recurrent kernel, regularises and keeps the fused kernel)"
            )
    dtype = keras.backend.standardize_dtype(keras.tree.flatten(call.inputs)[0].dtype)
    if dtype not in dtypes:
        return f"dtype is {dtype}, not {' or '.join(dtypes)}"
    return None


def why_not_fused_cell(
    cell: Cell, unroll: bool, modes: tuple[str, ...] = MODES, projects=False
) -> str | None:
    """What of `why_not_fused` is known when a layer is made: its cell's
    spec and projection, and `unroll`."""
    for inner in cells_of(cell):
        spec, reason = find_spec(inner, modes)
        if spec is None:
            return reason
        if not projects and spec.projects(inner):
            return "proj_size is set: this vendor's LSTM has no projection"
    if unroll:
        return "unroll=True asks for the unrolled loop"
    return None


def why_not_exported(call: RecurrentCall) -> str | None:
    """Why a vendor op that runs on CUDA only declines a call traced for an
    export, or None: no exporter converts it, and the artifact may be served
    on a CPU (torch's fused op exports as ATen's, which runs anywhere)."""
    if call.exporting:
        return (
            f"traced for export ({call.exporting}): this vendor's op runs on CUDA only, "
            "and no exporter converts it"
        )
    return None


def why_not_fused_bidirectional(
    kernel: Kernel, forward: RecurrentCall, backward: RecurrentCall
) -> str | None:
    """The reason `kernel` cannot run a `Bidirectional`'s two directions as one
    bidirectional call, or None (masks are each kernel's own business)."""
    if forward.go_backwards or not backward.go_backwards:
        return "the forward layer has go_backwards=True"
    if len(cells_of(forward.cell)) > 1:
        return "stacked cells run each direction on its own"
    reason = kernel.why_not(forward) or kernel.why_not(backward)
    if reason is not None:
        return reason
    if _bidirectional_options(forward.cell) != _bidirectional_options(backward.cell):
        return "the directions' cells differ in their options"
    if forward.training and getattr(forward.cell, "dropout", 0) > 0:
        return "input dropout in training gives each direction its own inputs"
    if forward.training and getattr(forward.cell, "recurrent_kernel_dropout", 0) > 0:
        return "recurrent_kernel_dropout in training gives each direction its own weights"
    return None


def _bidirectional_options(cell):
    """What a kernel running both directions at once needs the same in each (attributes,
    not `get_config`, which torch.compile cannot trace)."""
    return (
        fused_spec(cell),
        cell.units,
        getattr(cell, "bias", None) is None,
        getattr(cell, "dropout", 0),
        getattr(cell, "recurrent_dropout", 0),
    )


def dropped_inputs(call: RecurrentCall, x: Tensor = None, cell: Cell = None):
    """`x` (default: the call's single input) with `cell`'s (default: the
    call's cell's) input dropout mask applied in training: a fused kernel runs
    one mask for the whole sequence, as Keras's cell does."""
    x = keras.tree.flatten(call.inputs)[0] if x is None else x
    masks = own_masks(call.dropout_masks, call.cell if cell is None else cell)
    if call.training and masks is not None and masks.inputs is not None:
        x = x * ops.cast(masks.inputs, x.dtype)[:, None, :]
    return x


def in_vendor_dtype(x: Tensor, states: Structure, dtypes):
    """`(x, states, compute dtype)`: `x` and `states` in float32 unless their
    dtype is one of `dtypes`, those a vendor op takes."""
    compute = keras.backend.standardize_dtype(x.dtype)
    if compute not in dtypes:
        x, states = ops.cast(x, "float32"), [ops.cast(s, "float32") for s in states]
    return x, states, compute


def run_fused(call: RecurrentCall, vendor, dtypes=FLOATS):
    """Run `call` through a vendor's fused kernel: the path every backend shares.

    `vendor(call, spec, weights, x, lengths, states) -> (outputs,
    final_states)` runs one layer (`call` for what it learned of its
    surroundings: a vendor function reads trace, compile and export facts
    there, never from the backend): the cell of `spec` with `weights` (`[w_ih, w_hh, b_ih,
    b_hh]` in the vendor layout and `x`'s dtype, DropConnect applied in
    training; biases `None` without a bias; and `w_hr` for a projected LSTM,
    when the kernel's `why_not_fused` allows one) over batch-major `x` in
    processing order, rows right-padded to `lengths` (None when unmasked),
    from the flat initial `states`; it returns every step's output and the
    flat final states. With lengths, the outputs past a row's length and its
    final `h` may be anything (they are put right here), its other states
    must be those after its last valid step. A stack of cells runs one layer
    after another, each on the one before's outputs, with the valid steps
    kept first throughout.

    The vendor runs in `x`'s dtype: one of `dtypes`, the dtypes the vendor op
    takes; inputs of another float dtype (bfloat16 where cuDNN has no
    bfloat16 RNN) run in float32, and the results are cast back. Returns what
    `Kernel.run` returns. A call traced for an exporter lays masks out
    without a sort or integer gathers (see `valid_steps_first`).
    """
    cells = cells_of(call.cell)
    flat_states = keras.tree.flatten(call.states)
    x, flat_states, compute = in_vendor_dtype(
        dropped_inputs(call, cell=cells[0]), flat_states, dtypes
    )
    exporting = bool(call.exporting)
    if call.mask is None:
        x, counts, lengths = in_processing_order(x, call.go_backwards), None, None
    else:
        x, counts = valid_steps_first(
            x, call.mask, go_backwards=call.go_backwards, sort=not exporting, exporting=exporting
        )
        lengths = counts[:, -1]
    final = []
    for k, cell in enumerate(cells):
        spec = spec_of(cell)
        states, flat_states = _split(flat_states, spec.states)
        if k > 0:
            x = dropped_inputs(call, x, cell)
        masks = own_masks(call.dropout_masks, cell)
        kernel_mask = masks.recurrent_kernel if call.training and masks is not None else None
        weights = spec.vendor_weights(cell, x.dtype, kernel_mask)
        x, layer_final = vendor(call, spec, weights, x, lengths, states)
        if lengths is not None:
            layer_final = [last_valid(x, lengths, states[0], exporting)] + [
                keep_initial_where_empty(lengths, s, s0)
                for s, s0 in zip(layer_final[1:], states[1:])
            ]
        final += layer_final
    y = x
    if counts is not None and call.return_sequences:
        y = masked_outputs(y, counts, call.zero_output_for_mask, exporting)
    elif counts is not None:  # the layer reads the last output only: the last h's
        y = last_output(layer_final[0], counts, call.zero_output_for_mask)[:, None]
    y, final = ops.cast(y, compute), [ops.cast(s, compute) for s in final]
    return y[:, -1], y, keras.tree.pack_sequence_as(call.states, final)


def run_fused_bidirectional(
    forward: RecurrentCall, backward: RecurrentCall, vendor, dtypes=FLOATS
) -> list:
    """Run both directions of a `Bidirectional` through one call of a vendor's
    bidirectional kernel (unmasked, one cell each, as
    `why_not_fused_bidirectional` accepted).

    `vendor(call, spec, weights, x, states) -> (outputs, final_states)`
    takes the forward call and a pair of each: the forward and backward
    cells' weights (as for `run_fused`) and flat initial states, and returns
    both directions' outputs side by side `(batch, time, 2 * units)` in input
    order, and a pair of flat final
    states. Dtypes as for `run_fused`. Returns one `Kernel.run` result per
    direction, each in its own processing order.
    """
    flat = [keras.tree.flatten(d.states) for d in (forward, backward)]
    x, states, compute = in_vendor_dtype(dropped_inputs(forward), flat[0] + flat[1], dtypes)
    spec = spec_of(forward.cell)
    weights = tuple(spec.vendor_weights(d.cell, x.dtype) for d in (forward, backward))
    y, finals = vendor(forward, spec, weights, x, (states[: len(flat[0])], states[len(flat[0]) :]))
    units = y.shape[-1] // 2
    # The backward half comes in time order; the backward call's is reversed.
    outputs = (y[..., :units], in_processing_order(y[..., units:], backward.go_backwards))
    results = []
    for call, y_d, final in zip((forward, backward), outputs, finals):
        y_d, final = ops.cast(y_d, compute), [ops.cast(s, compute) for s in final]
        results.append((y_d[:, -1], y_d, keras.tree.pack_sequence_as(call.states, final)))
    return results


def _split(items, n):
    return list(items[:n]), items[n:]
