"""torch's fused RNN kernels (ATen/oneDNN on CPU, cuDNN on CUDA) for the
built-in cells. Imported only on the torch backend.

Weights are Keras's, viewed in torch's layout: `weight_ih = kernel.T`,
`weight_hh = recurrent_kernel.T`; LSTM gates (i, f, c, o) are torch's (i, f, g,
o); GRU gates (z, r, h) are reordered to torch's (r, z, n), and its
`reset_after=True` bias `(2, 3H)` is torch's (b_ih, b_hh). Keras has one bias
where torch adds two: the second is zeros.

Right-padded masks run the full-length kernel: padding comes after the data,
so each row's valid outputs are exact; the final `h` is the output at the
row's last valid step, and outputs at padded steps repeat it (or are zeros),
as the reference loop defines. `go_backwards` reverses each row's valid
prefix. An LSTM's final `c` is never output, so the kernel gets one more input
feature, 1 at padded steps, weighted -1e4 into the input gate and +1e4 into
the forget gate: there σ saturates to exactly i = 0 and f = 1 (σ' = 0), so `c`
passes through the padding unchanged, in value and in gradient.
"""

from __future__ import annotations

import keras
import torch

from keras_rnnx.cells.gru import GRUCell
from keras_rnnx.cells.lstm import LSTMCell
from keras_rnnx.cells.simple_rnn import SimpleRNNCell
from keras_rnnx.kernels.registry import RecurrentCall, register_kernel

_TANH, _SIGMOID, _RELU = (keras.activations.get(n) for n in ("tanh", "sigmoid", "relu"))


def _gru_to_torch(w, axis):
    """Keras's (z, r, h) gate blocks as torch's (r, z, n)."""
    z, r, h = torch.chunk(w, 3, dim=axis)
    return torch.cat([r, z, h], dim=axis)


def _params(cell):
    """`[w_ih, w_hh, (b_ih, b_hh)]` in torch's layout, differentiable."""
    kernel, recurrent = cell.kernel.value, cell.recurrent_kernel.value
    if isinstance(cell, GRUCell):
        kernel, recurrent = _gru_to_torch(kernel, 1), _gru_to_torch(recurrent, 1)
    params = [kernel.T, recurrent.T]
    if cell.bias is not None:
        bias = cell.bias.value
        if isinstance(cell, GRUCell):
            params += [_gru_to_torch(bias[0], 0), _gru_to_torch(bias[1], 0)]
        else:
            params += [bias, torch.zeros_like(bias)]
    return params


def _right_padded_lengths(mask):
    """Each row's length if `mask` is right-padded (valid steps first), else None."""
    lengths = mask.sum(dim=1)
    steps = torch.arange(mask.shape[1], device=mask.device)
    if bool((mask == (steps[None, :] < lengths[:, None])).all()):
        return lengths
    return None


def _reverse_prefixes(x, lengths):
    """Reverse each row's first `length` steps, leaving the padding after them."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :]
    index = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
    return torch.gather(x, 1, index[..., None].expand_as(x)), index


_SATURATE = 1e4


def _hold_cell_state_in_padding(x, params, lengths):
    """Add the padding feature that pins i = 0, f = 1 at padded steps."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :]
    padding = (steps >= lengths[:, None]).to(x.dtype)[..., None]
    w_ih = params[0]
    units = w_ih.shape[0] // 4
    column = torch.zeros((4 * units, 1), dtype=w_ih.dtype, device=w_ih.device)
    column[:units] = -_SATURATE
    column[units : 2 * units] = _SATURATE
    return torch.cat([x, padding], dim=-1), [torch.cat([w_ih, column], dim=1), *params[1:]]


class TorchFusedKernel:
    name = "torch-fused"
    priority = 10
    fused = True

    def why_not(self, call: RecurrentCall) -> str | None:
        cell = call.cell
        if type(cell) not in (LSTMCell, GRUCell, SimpleRNNCell):
            return f"no fused kernel for {type(cell).__name__} (custom or stacked cell)"
        if call.unroll:
            return "unroll=True asks for the unrolled loop"
        if isinstance(cell, SimpleRNNCell):
            if cell.activation not in (_TANH, _RELU):
                return "activation is not tanh or relu"
        elif cell.activation is not _TANH or cell.recurrent_activation is not _SIGMOID:
            return "activation is not tanh or recurrent_activation is not sigmoid"
        if isinstance(cell, GRUCell) and not cell.reset_after:
            return "reset_after=False"
        if call.training and cell.recurrent_dropout > 0:
            return "recurrent_dropout > 0 in training"
        if keras.tree.flatten(call.inputs)[0].dtype not in (torch.float32, torch.float64):
            return "dtype is not float32 or float64"
        if call.mask is not None:
            if _right_padded_lengths(call.mask) is None:
                return "mask is not right-padded"
        return None

    def run(self, call: RecurrentCall):
        cell = call.cell
        x = keras.tree.flatten(call.inputs)[0]
        if call.training and cell.dropout > 0:
            x = x * cell.get_dropout_mask(x[:, 0])[:, None, :]
        states = [s[None] for s in keras.tree.flatten(call.states)]  # (1, B, H)
        lengths = None if call.mask is None else _right_padded_lengths(call.mask)
        if call.go_backwards:
            if lengths is None:
                x = torch.flip(x, dims=[1])
            else:
                x, _ = _reverse_prefixes(x, lengths)

        params = _params(cell)
        flags = (cell.bias is not None, 1, 0.0, call.training, False, True)
        if isinstance(cell, LSTMCell):
            if lengths is not None:
                x, params = _hold_cell_state_in_padding(x, params, lengths)
            y, h, c = torch._VF.lstm(x, tuple(states), params, *flags)
            final = [h[0], c[0]]
        else:
            fn = torch._VF.gru if isinstance(cell, GRUCell) else None
            if fn is None:
                fn = torch._VF.rnn_relu if cell.activation is _RELU else torch._VF.rnn_tanh
            y, h = fn(x, states[0], params, *flags)
            final = [h[0]]
        if lengths is not None:
            y, last_h = self._apply_lengths(y, states[0][0], lengths, call)
            final = [last_h, *final[1:]]
        packed = keras.tree.pack_sequence_as(call.states, final)
        return y[:, -1], y, packed

    @staticmethod
    def _apply_lengths(y, h0, lengths, call):
        """Outputs and final state of the masked loop, from a full-length run."""
        batch, steps, units = y.shape
        rows = torch.arange(batch, device=y.device)
        last = torch.where(
            (lengths > 0)[:, None], y[rows, (lengths - 1).clamp(min=0)], h0
        )  # the state after each row's last valid step
        t = torch.arange(steps, device=y.device)[None, :]
        if call.go_backwards:
            # Processing order: the padding (masked, nothing output yet) comes
            # first, then the valid steps, which the run produced first.
            shift = steps - lengths[:, None]
            index = (t - shift).clamp(min=0)
            y = torch.gather(y, 1, index[..., None].expand(batch, steps, units))
            y = torch.where((t >= shift)[..., None], y, torch.zeros_like(y))
        else:
            padded = (t >= lengths[:, None])[..., None]
            carried = torch.zeros_like(y) if call.zero_output_for_mask else last[:, None, :]
            carried = torch.where((lengths > 0)[:, None, None], carried, torch.zeros_like(y))
            y = torch.where(padded, carried.expand_as(y), y)
        return y, last


register_kernel(TorchFusedKernel())
