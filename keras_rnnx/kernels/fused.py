"""What the fused (cuDNN-style) kernels share: which calls they can run, and
right-padded masks as sequence lengths.

A fused kernel runs the whole sequence with the built-in gate equations, so it
needs a built-in cell with its default activations. A right- or left-padded
mask is a length per row: `valid_steps_first` moves each row's valid steps, in
processing order (`go_backwards` reverses them), to the front; the kernel runs
the rows as if unmasked (the padding comes after the data, so each row's valid
outputs are exact); and `masked_outputs` rebuilds what the reference loop
outputs at the padded steps. Written in `keras.ops`, so every backend's fused
kernel uses the same code.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_rnnx.cells.gru import GRUCell
from keras_rnnx.cells.lstm import LSTMCell
from keras_rnnx.cells.simple_rnn import SimpleRNNCell
from keras_rnnx.kernels.registry import RecurrentCall

TANH, SIGMOID, RELU = (keras.activations.get(n) for n in ("tanh", "sigmoid", "relu"))


def why_not_fused(call: RecurrentCall, cells=(LSTMCell, GRUCell, SimpleRNNCell), dtypes=None):
    """The reason a fused kernel for `cells` cannot run `call`'s cell, or None.

    Covers the cell and the options; the mask and the device are each
    kernel's own business.
    """
    cell = call.cell
    if type(cell) not in cells:
        names = ", ".join(c.__name__ for c in cells)
        return f"no fused kernel for {type(cell).__name__} (fused: {names})"
    if call.unroll:
        return "unroll=True asks for the unrolled loop"
    if isinstance(cell, SimpleRNNCell):
        if cell.activation not in (TANH, RELU):
            return "activation is not tanh or relu"
    elif cell.activation is not TANH or cell.recurrent_activation is not SIGMOID:
        return "activation is not tanh or recurrent_activation is not sigmoid"
    if isinstance(cell, GRUCell) and not cell.reset_after:
        return "reset_after=False"
    if call.training and cell.recurrent_dropout > 0:
        return "recurrent_dropout > 0 in training"
    dtypes = dtypes or ("float32", "float64")
    dtype = keras.backend.standardize_dtype(keras.tree.flatten(call.inputs)[0].dtype)
    if dtype not in dtypes:
        return f"dtype is {dtype}, not {' or '.join(dtypes)}"
    return None


def why_not_one_call(kernel, forward: RecurrentCall, backward: RecurrentCall) -> str | None:
    """The reason `kernel` cannot run a `Bidirectional`'s two directions as one
    bidirectional call, or None (masks are each kernel's own business)."""
    if forward.go_backwards or not backward.go_backwards:
        return "the forward layer has go_backwards=True"
    reason = kernel.why_not(forward) or kernel.why_not(backward)
    if reason is not None:
        return reason
    if _one_call_options(forward.cell) != _one_call_options(backward.cell):
        return "the directions' cells differ in their options"
    if forward.training and forward.cell.dropout > 0:
        return "input dropout in training gives each direction its own inputs"
    return None


def _one_call_options(cell):
    """What a one-call kernel needs the same in both directions (attributes,
    not `get_config`, which torch.compile cannot trace)."""
    return (
        type(cell),
        cell.units,
        cell.use_bias,
        cell.activation,
        getattr(cell, "recurrent_activation", None),
        getattr(cell, "reset_after", None),
        cell.dropout,
        cell.recurrent_dropout,
    )


def dropped_inputs(call: RecurrentCall):
    """The call's single input, with the cell's input dropout mask applied in
    training (a fused kernel runs one mask for the whole sequence, as Keras's
    cell does)."""
    x = keras.tree.flatten(call.inputs)[0]
    if call.training and call.cell.dropout > 0:
        x = x * call.cell.get_dropout_mask(x[:, 0])[:, None, :]
    return x


def keep_initial_where_empty(lengths, state, initial):
    """`state` for rows with a valid step, `initial` for rows with none (which
    a fused kernel ran for one step, as cuDNN wants at least one)."""
    return ops.where((lengths > 0)[:, None], state, initial)


def padded_lengths(mask):
    """`(lengths, right_padded, left_padded)`: each row's count of valid steps,
    and whether every row's valid steps come first, or last (scalar bools)."""
    mask = ops.cast(mask, "bool")
    lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
    steps = ops.arange(ops.shape(mask)[1], dtype="int32")[None, :]
    first = ops.less(steps, lengths[:, None])
    last = ops.greater_equal(steps, ops.shape(mask)[1] - lengths[:, None])
    return lengths, ops.all(ops.equal(mask, first)), ops.all(ops.equal(mask, last))


def _gather_steps(x, index):
    """`x[b, index[b, t]]` for `x` shaped `(batch, time, features)`."""
    return ops.take_along_axis(x, ops.broadcast_to(index[..., None], ops.shape(x)), axis=1)


def valid_steps_first(x, lengths, go_backwards, left_padded=False):
    """Each row's valid steps in processing order, first; padding after them.

    A fused kernel then runs the rows as right-padded. `left_padded`: the
    valid steps are each row's last (else its first).
    """
    time = ops.shape(x)[1]
    steps = ops.arange(time, dtype="int32")[None, :]
    lengths = lengths[:, None]
    if left_padded:
        if go_backwards:
            return ops.flip(x, axis=1)
        return _gather_steps(x, ops.where(steps < lengths, time - lengths + steps, steps))
    if go_backwards:
        return _gather_steps(x, ops.where(steps < lengths, lengths - 1 - steps, steps))
    return x


def masked_outputs(y, h0, lengths, padding_first, zero_output_for_mask):
    """The reference loop's outputs and last `h`, from a run of the valid steps.

    `y` holds each row's outputs for its valid steps first (as
    `valid_steps_first` lays them out); `h0` is the initial `h`, the state of a
    row with no valid step. `padding_first`: in processing order the padding
    comes before the valid steps (a right-padded mask run backwards, or a
    left-padded one run forwards), else after them.
    """
    has_steps = (lengths > 0)[:, None]
    last_index = ops.maximum(lengths - 1, 0)[:, None, None]
    batch, time, units = ops.shape(y)
    last = ops.take_along_axis(y, ops.broadcast_to(last_index, (batch, 1, units)), axis=1)
    last = ops.where(has_steps, last[:, 0], h0)
    steps = ops.arange(time, dtype="int32")[None, :]
    zeros = ops.zeros_like(y)
    if padding_first:
        # Masked steps before the first valid one: nothing output yet.
        shift = time - lengths[:, None]
        y = _gather_steps(y, ops.maximum(steps - shift, 0))
        return ops.where((steps >= shift)[..., None], y, zeros), last
    carried = zeros if zero_output_for_mask else ops.where(has_steps, last, 0)[:, None, :]
    return ops.where((steps >= lengths[:, None])[..., None], carried, y), last
