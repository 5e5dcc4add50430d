"""What the fused (cuDNN-style) kernels share: which calls they can run, and
right-padded masks as sequence lengths.

A fused kernel runs the whole sequence with the built-in gate equations, so it
needs a built-in cell with its default activations. A right-padded mask is a
length per row: the kernel runs the rows as if unmasked (padding comes after
the data, so each row's valid outputs are exact), and `masked_outputs` rebuilds
what the reference loop outputs at the padded steps. `go_backwards` runs each
row's valid prefix reversed (`reverse_prefixes`). Written in `keras.ops`, so
every backend's fused kernel uses the same code.
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
    if forward.cell.get_config() | {"name": None} != backward.cell.get_config() | {"name": None}:
        return "the directions' cells differ in their options"
    if forward.training and forward.cell.dropout > 0:
        return "input dropout in training gives each direction its own inputs"
    return None


def right_padded_lengths(mask):
    """`(lengths, right_padded)`: each row's count of valid steps, and whether
    every row's valid steps come first (a scalar bool tensor)."""
    lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
    steps = ops.arange(ops.shape(mask)[1], dtype="int32")
    prefix = ops.less(steps[None, :], lengths[:, None])
    return lengths, ops.all(ops.equal(ops.cast(mask, "bool"), prefix))


def _gather_steps(x, index):
    """`x[b, index[b, t]]` for `x` shaped `(batch, time, features)`."""
    return ops.take_along_axis(x, ops.broadcast_to(index[..., None], ops.shape(x)), axis=1)


def reverse_prefixes(x, lengths):
    """Reverse each row's first `length` steps, leaving the padding after them."""
    steps = ops.arange(ops.shape(x)[1], dtype="int32")[None, :]
    lengths = lengths[:, None]
    return _gather_steps(x, ops.where(steps < lengths, lengths - 1 - steps, steps))


def masked_outputs(y, h0, lengths, go_backwards, zero_output_for_mask):
    """The reference loop's outputs and last `h`, from a run of the valid steps.

    `y` holds each row's outputs for its valid steps first, in processing
    order (what a fused kernel gives for right-padded or prefix-reversed
    rows); `h0` is the initial `h`, the state of a row with no valid step.
    """
    has_steps = (lengths > 0)[:, None]
    last_index = ops.maximum(lengths - 1, 0)[:, None, None]
    batch, time, units = ops.shape(y)
    last = ops.take_along_axis(y, ops.broadcast_to(last_index, (batch, 1, units)), axis=1)
    last = ops.where(has_steps, last[:, 0], h0)
    steps = ops.arange(time, dtype="int32")[None, :]
    zeros = ops.zeros_like(y)
    if go_backwards:
        # In processing order the padding (masked: nothing output yet) comes
        # first, then the valid steps, which the run produced first.
        shift = time - lengths[:, None]
        y = _gather_steps(y, ops.maximum(steps - shift, 0))
        return ops.where((steps >= shift)[..., None], y, zeros), last
    carried = zeros if zero_output_for_mask else ops.where(has_steps, last, 0)[:, None, :]
    return ops.where((steps >= lengths[:, None])[..., None], carried, y), last
