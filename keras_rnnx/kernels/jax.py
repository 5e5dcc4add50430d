"""cuDNN's LSTM through `jax.experimental.rnn` on a JAX GPU. Imported only on
the JAX backend.

Keras's JAX backend has no fused RNN at all. cuDNN's LSTM takes one flat weight
vector laid out as `(W_ih, W_hh, b_ih, b_hh)`, torch's gate order (i, f, g, o),
which is Keras's (i, f, c, o): `W_ih = kernel.T`, `W_hh = recurrent_kernel.T`,
`b_ih = bias` and `b_hh = 0`. It takes float32 only.

A mask becomes `seq_lengths` (see `kernels/fused.py`). Under `jax.jit` the mask's
values are unknown when the kernel is chosen, so the compiled call holds both
the cuDNN run and the reference loop, and `lax.cond` runs the loop for a batch
whose mask is not right-padded.
"""

from __future__ import annotations

import jax
import keras
from jax import numpy as jnp
from jax.experimental import rnn

from keras_rnnx.cells.lstm import LSTMCell
from keras_rnnx.kernels.fused import (
    masked_outputs,
    reverse_prefixes,
    right_padded_lengths,
    why_not_fused,
)
from keras_rnnx.kernels.reference import ReferenceKernel
from keras_rnnx.kernels.registry import RecurrentCall, register_kernel


def on_gpu() -> bool:
    return jax.default_backend() == "gpu"


def cudnn_lstm(x, h0, c0, weights, seq_lengths, *, input_size, hidden_size):
    """One unidirectional cuDNN LSTM layer, batch-major (a seam for tests)."""
    return rnn.lstm(
        x,
        h0,
        c0,
        weights,
        seq_lengths,
        input_size=input_size,
        hidden_size=hidden_size,
        num_layers=1,
        dropout=0.0,
        bidirectional=False,
    )


def cudnn_weights(cell):
    """The cell's weights as cuDNN's flat vector (differentiable)."""
    kernel, recurrent = cell.kernel.value, cell.recurrent_kernel.value
    bias = cell.bias.value if cell.bias is not None else jnp.zeros(kernel.shape[1], kernel.dtype)
    return jnp.concatenate([kernel.T.ravel(), recurrent.T.ravel(), bias, jnp.zeros_like(bias)])


class JaxCudnnLstmKernel:
    name = "jax-cudnn"
    priority = 10
    fused = True

    def why_not(self, call: RecurrentCall) -> str | None:
        reason = why_not_fused(call, cells=(LSTMCell,), dtypes=("float32",))
        if reason is None and not on_gpu():
            return "no GPU (cuDNN's LSTM runs on a CUDA device only)"
        return reason

    def run(self, call: RecurrentCall):
        cell = call.cell
        x = keras.tree.flatten(call.inputs)[0]
        if call.training and cell.dropout > 0:
            x = x * cell.get_dropout_mask(x[:, 0])[:, None, :]
        if call.mask is None:
            lengths = jnp.full((x.shape[0],), x.shape[1], "int32")
            return self._run(call, x, lengths, masked=False)
        lengths, right_padded = right_padded_lengths(call.mask)
        return jax.lax.cond(
            right_padded,
            lambda: self._run(call, x, lengths, masked=True),
            lambda: ReferenceKernel().run(call),
        )

    @staticmethod
    def _run(call, x, lengths, masked):
        cell = call.cell
        h0, c0 = keras.tree.flatten(call.states)
        if call.go_backwards:
            x = reverse_prefixes(x, lengths) if masked else jnp.flip(x, axis=1)
        # cuDNN wants every row to have a step; a row with none keeps its
        # initial states, restored below.
        y, h, c = cudnn_lstm(
            x,
            h0[None],
            c0[None],
            cudnn_weights(cell),
            jnp.maximum(lengths, 1),
            input_size=x.shape[-1],
            hidden_size=cell.units,
        )
        h, c = h[0], c[0]
        if masked:
            y, h = masked_outputs(y, h0, lengths, call.go_backwards, call.zero_output_for_mask)
            c = jnp.where((lengths > 0)[:, None], c, c0)
        states = keras.tree.pack_sequence_as(call.states, [h, c])
        return y[:, -1], y, states


register_kernel(JaxCudnnLstmKernel())
