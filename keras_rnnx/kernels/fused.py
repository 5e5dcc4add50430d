"""What the fused (cuDNN-style) kernels share: which calls they can run, and
masks as sequence lengths.

A fused kernel runs the whole sequence with a vendor's gate equations, so it
runs a cell with a fused spec (`kernels/specs.py`) that matches its options.
Any mask becomes a length
per row: `valid_steps_first` moves each row's valid steps, in processing order
(`go_backwards` reverses them), to the front; the kernel runs the rows as
right-padded sequences (the padding comes after the data, so each row's valid
outputs are exact); and `masked_outputs` puts back what the reference loop
outputs at the masked steps. No mask value is read on the host, so this
traces whole under `jax.jit`, `tf.function` and `torch.compile`. `run_fused`
is that path, written in `keras.ops`: a backend's fused kernel supplies only
its vendor call.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_rnnx.cells.stacked import StackedRNNCells
from keras_rnnx.kernels.registry import Kernel, RecurrentCall
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


def cells_of(cell: Cell) -> list:
    """The cells a fused kernel runs one after another: `cell`, or a stack's
    cells in order (nested stacks flattened)."""
    if isinstance(cell, StackedRNNCells):
        return [inner for c in cell.cells for inner in cells_of(c)]
    return [cell]


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
    masks = cell_masks(call, call.cell if cell is None else cell)
    if call.training and masks is not None and masks.inputs is not None:
        x = x * ops.cast(masks.inputs, x.dtype)[:, None, :]
    return x


def cell_masks(call: RecurrentCall, cell: Cell):
    """`cell`'s `CellMasks` in `call.dropout_masks`, or None."""
    return next((m for m in call.dropout_masks if m.cell is cell), None)


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
    x: Tensor, mask: Tensor | None, go_backwards: bool, sort=True, exporting=False
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
    mask = ops.cast(mask, "bool")
    if go_backwards:
        x, mask = ops.flip(x, axis=1), ops.flip(mask, axis=1)
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


def in_vendor_dtype(x: Tensor, states: Structure, dtypes):
    """`(x, states, compute dtype)`: `x` and `states` in float32 unless their
    dtype is one of `dtypes`, those a vendor op takes."""
    compute = keras.backend.standardize_dtype(x.dtype)
    if compute not in dtypes:
        x, states = ops.cast(x, "float32"), [ops.cast(s, "float32") for s in states]
    return x, states, compute


def run_fused(call: RecurrentCall, vendor, dtypes=FLOATS):
    """Run `call` through a vendor's fused kernel: the path every backend shares.

    `vendor(spec, weights, x, lengths, states) -> (outputs, final_states)`
    runs one layer: the cell of `spec` with `weights` (`[w_ih, w_hh, b_ih,
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
        x, counts, lengths = (ops.flip(x, axis=1) if call.go_backwards else x), None, None
    else:
        x, counts = valid_steps_first(x, call.mask, call.go_backwards, not exporting, exporting)
        lengths = counts[:, -1]
    final = []
    for k, cell in enumerate(cells):
        spec = spec_of(cell)
        states, flat_states = _split(flat_states, spec.states)
        if k > 0:
            x = dropped_inputs(call, x, cell)
        masks = cell_masks(call, cell)
        kernel_mask = masks.recurrent_kernel if call.training and masks is not None else None
        weights = spec.vendor_weights(cell, x.dtype, kernel_mask)
        x, layer_final = vendor(spec, weights, x, lengths, states)
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

    `vendor(spec, weights, x, states) -> (outputs, final_states)` takes a pair
    of each: the forward and backward cells' weights (as for `run_fused`) and
    flat initial states, and returns both directions' outputs side by side
    `(batch, time, 2 * units)` in input order, and a pair of flat final
    states. Dtypes as for `run_fused`. Returns one `Kernel.run` result per
    direction, each in its own processing order.
    """
    flat = [keras.tree.flatten(d.states) for d in (forward, backward)]
    x, states, compute = in_vendor_dtype(dropped_inputs(forward), flat[0] + flat[1], dtypes)
    spec = spec_of(forward.cell)
    weights = tuple(spec.vendor_weights(d.cell, x.dtype) for d in (forward, backward))
    y, finals = vendor(spec, weights, x, (states[: len(flat[0])], states[len(flat[0]) :]))
    units = y.shape[-1] // 2
    # The backward half comes in input order; its own order is reversed.
    outputs = (y[..., :units], ops.flip(y[..., units:], axis=1))
    results = []
    for call, y_d, final in zip((forward, backward), outputs, finals):
        y_d, final = ops.cast(y_d, compute), [ops.cast(s, compute) for s in final]
        results.append((y_d[:, -1], y_d, keras.tree.pack_sequence_as(call.states, final)))
    return results


def _split(items, n):
    return list(items[:n]), items[n:]
