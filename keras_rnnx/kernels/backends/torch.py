"""torch's fused RNN kernels (ATen/oneDNN on CPU, cuDNN on CUDA) for every
cell with a fused spec (`kernels/specs.py`): all four vendor modes. Imported
only on the torch backend.

Weights are the spec's vendor layout, which is torch's (`weight_ih`,
`weight_hh`, `bias_ih`, `bias_hh`).

A mask (right- or left-padded, as `keras.utils.pad_sequences` pads by
default, or with holes) runs the full-length kernel with each row's valid
steps moved first (see `kernels/fused.py`). No mask value is read on the host,
so masked calls compile whole under `torch.compile` too; only eager inference
of a masked GRU or SimpleRNN reads the lengths, to run packed sequences, and
an eager call with per-sample resets reads where its segments start
(`kernels/backends/torch_segments.py`).

Under `torch.compile` Inductor decomposes torch's LSTM, and on a CPU it picks
oneDNN's inference kernel whenever the input needs no gradient, even when the
weights do (then training fails, "expected Tensor() for op
mkldnn_rnn_layer"); so there the input is tied to the weights (`+ 0 * w`),
which makes Inductor pick its training decomposition.

An LSTM's final `c` is never output, so the kernel gets one more input
feature, 1 at padded steps, weighted -1e4 into the input gate and +1e4 into
the forget gate: there σ saturates to exactly i = 0 and f = 1 (σ' = 0), so `c`
passes through the padding unchanged, in value and in gradient. Packed
sequences trained a masked LSTM 2x slower here (benchmarks/README.md).
"""

from __future__ import annotations

import torch

from keras_rnnx.kernels.backends.torch_segments import run_segments, why_not_segments
from keras_rnnx.kernels.fused import (
    run_fused,
    run_fused_bidirectional,
    why_not_fused,
    why_not_fused_bidirectional,
)
from keras_rnnx.kernels.registry import RecurrentCall, register_kernel
from keras_rnnx.kernels.traits import Traits, register_traits

# The vendor call of each mode; each has a padded and a packed overload.
_OPS = {
    "lstm": torch._VF.lstm,
    "gru": torch._VF.gru,
    "rnn_tanh": torch._VF.rnn_tanh,
    "rnn_relu": torch._VF.rnn_relu,
}


def _params(weights):
    """The vendor-layout weights as torch's flat list `[w_ih, w_hh, (b_ih,
    b_hh), (w_hr)]`, dense, as cuDNN needs them."""
    return [w.contiguous() for w in weights if w is not None]


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


def _vendor(call, spec, weights, x, lengths, states):
    """One layer through torch's fused kernel (see `run_fused`)."""
    states = [s[None] for s in states]  # (1, B, H)
    params, has_biases = _params(weights), weights[2] is not None
    if lengths is not None and _packs(call, spec, weights):
        y, final = _packed(spec, x, states, params, has_biases, lengths)
    else:
        if lengths is not None and spec.mode == "lstm":
            x, params = _hold_cell_state_in_padding(x, params, lengths)
        x = _inductor_trains(call, spec, x, params)
        y, final = _fused(call, spec, x, states, params, has_biases)
    return y, [s[0] for s in final]


class TorchFusedKernel:
    name = "torch-fused"
    priority = 10
    fused = True
    resets = True  # as segments (`kernels/backends/torch_segments.py`)

    def why_not(self, call: RecurrentCall) -> str | None:
        reason = why_not_fused(call, projects=True)
        if reason is None and call.reset is not None:
            return why_not_segments(call)
        return reason

    def run(self, call: RecurrentCall):
        if call.reset is not None:
            return run_segments(call, lambda segments: run_fused(segments, _vendor))
        return run_fused(call, _vendor)

    def why_not_bidirectional(self, forward: RecurrentCall, backward: RecurrentCall):
        if forward.mask is not None:
            return "a mask: one call would run the backward direction over the padding"
        return why_not_fused_bidirectional(self, forward, backward)

    def run_bidirectional(self, forward: RecurrentCall, backward: RecurrentCall):
        """Both directions in one call of the fused kernel (cuDNN runs them
        concurrently)."""
        return run_fused_bidirectional(forward, backward, _bidirectional_vendor)


def _bidirectional_vendor(call, spec, weights, x, states):
    """Both directions through torch's fused kernel (see `run_fused_bidirectional`)."""
    forward, backward = states
    params = _params(weights[0]) + _params(weights[1])
    x = _inductor_trains(call, spec, x, params)
    stacked = [torch.stack([f, b]) for f, b in zip(forward, backward)]  # (2, B, H)
    has_biases = weights[0][2] is not None
    y, final = _fused(call, spec, x, stacked, params, has_biases, bidirectional=True)
    return y, ([s[0] for s in final], [s[1] for s in final])


def _inductor_trains(call, spec, x, params):
    """`x`, tied to the weights when Inductor would otherwise decompose an
    LSTM to oneDNN's inference kernel in training (see the module docstring)."""
    if (
        spec.mode == "lstm"
        and call.compiling
        and torch.is_grad_enabled()
        and params[0].requires_grad
        and not x.requires_grad
    ):
        return x + 0.0 * params[0][0, 0]
    return x


def _packs(call, spec, weights):
    """Whether a masked call runs packed sequences: eager inference of a cell
    with one state or of a projected LSTM, which oneDNN does not run
    (packing reads the lengths on the host, which a trace would record as
    constants); and an ONNX export, where packed sequences become the
    `sequence_lens` of ONNX's own `LSTM`/`GRU`/`RNN` ops."""
    if call.exporting == "onnx":
        return True
    return (
        (spec.states == 1 or len(weights) == 5)
        and not torch.is_grad_enabled()
        and not call.compiling
        and not call.jit_tracing
    )


def _packed(spec, x, states, params, has_biases, lengths):
    """`_fused` over the valid steps only (they come first), as packed sequences.

    Measured here, that is faster in inference for GRU, SimpleRNN and a
    projected LSTM, and slower for LSTM (on oneDNN) and in training
    (benchmarks/README.md).
    """
    pack = torch.nn.utils.rnn.pack_padded_sequence(
        x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
    )  # a row with no valid step runs one, undone by `run_fused`
    order, unorder = pack.sorted_indices, pack.unsorted_indices
    hx = [s[:, order] for s in states]
    hx = tuple(hx) if spec.states == 2 else hx[0]
    flags = _flags(has_biases=has_biases, train=False, bidirectional=False)
    y, *final = _OPS[spec.mode](pack.data, pack.batch_sizes, hx, params, *flags)
    y, _ = torch.nn.utils.rnn.pad_packed_sequence(
        torch.nn.utils.rnn.PackedSequence(y, pack.batch_sizes, order, unorder),
        batch_first=True,
        total_length=x.shape[1],
    )
    return y, [s[:, unorder] for s in final]


def _flags(*, has_biases, train, bidirectional, batch_first=None):
    """The trailing flags of torch's `_VF` RNN ops, in their order: one
    layer, no dropout (`batch_first` only in the padded overload)."""
    flags = (has_biases, 1, 0.0, train, bidirectional)
    return flags if batch_first is None else (*flags, batch_first)


def _fused(call, spec, x, states, params, has_biases, bidirectional=False):
    """`(outputs, [h, (c)])` from torch's fused kernel; states `(directions, B, H)`
    (an LSTM projects when `h` is smaller than `c`, as torch reads it)."""
    # `train` keeps cuDNN's reserve space for the backward pass (dropout is
    # 0 here), so it follows autograd, not the layer's `training`; a trace is
    # for inference (`torch.jit.trace` checks its trace without autograd).
    train = torch.is_grad_enabled() and not call.jit_tracing
    flags = _flags(
        has_biases=has_biases, train=train, bidirectional=bidirectional, batch_first=True
    )
    if spec.states == 2:
        y, h, c = _OPS[spec.mode](x, tuple(states), params, *flags)
        return y, [h, c]
    y, h = _OPS[spec.mode](x, states[0], params, *flags)
    return y, [h]


register_kernel(TorchFusedKernel())
register_traits("torch", Traits(traces_unroll=True))
