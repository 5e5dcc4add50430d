"""cuDNN's LSTM through `jax.experimental.rnn` on a JAX GPU. Imported only on
the JAX backend.

Keras's JAX backend runs cuDNN only for an unmasked LSTM (and then returns a
`go_backwards` sequence flipped, unlike its other paths). `jax.experimental.rnn`
runs the `"lstm"` mode only, so this kernel runs every cell with an LSTM fused
spec (`kernels/specs.py`); it takes one flat weight vector, the spec's vendor
layout `(W_ih, W_hh, b_ih, b_hh)` raveled, and float32 only: under a mixed
precision policy the kernel runs in float32 and casts its results to the
compute dtype (the variables are float32 already).

A mask, right- or left-padded or with holes, becomes `seq_lengths` (see
`kernels/fused.py`), with no `lax.cond`: under `jax.jit` the compiled call
holds the cuDNN run alone.

A `Bidirectional` runs in one bidirectional cuDNN call when unmasked. Measured
on an H100 (jax 0.11.2, cuDNN through jax-cuda13): with sequence lengths, the
outputs were exact but the input gradients were wrong under `jax.jit` for the
bidirectional call and for a forward run with `zero_output_for_mask` (which
`Bidirectional` sets when returning sequences); with `jax.disable_jit` they were
right, so the fault sits between XLA and the cuDNN custom call (compare
jax-ml/jax#15183). Those two cases decline with a reason. Every other masked
case (forward, go_backwards with or without zero outputs, last output only,
final states, `fit`) matched the reference loop.
"""

from __future__ import annotations

from typing import Any

import jax
from jax import numpy as jnp
from jax.experimental import rnn

from keras_rnnx.kernels.fused import (
    run_fused,
    run_fused_bidirectional,
    why_not_exported,
    why_not_fused,
    why_not_fused_bidirectional,
)
from keras_rnnx.kernels.registry import RecurrentCall, register_kernel
from keras_rnnx.kernels.traits import Traits, register_traits
from keras_rnnx.types import Tensor

WRONG_GRADIENTS = (
    "a mask with zero_output_for_mask (cuDNN's input gradients came out wrong here under "
    "jax.jit on an H100)"
)


def on_gpu() -> bool:
    return jax.default_backend() in ("gpu", "cuda")


def cudnn_lstm(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    weights: Any,
    seq_lengths,
    *,
    input_size,
    hidden_size,
    bidirectional,
):
    """One cuDNN LSTM layer, batch-major (a seam for tests)."""
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
        bidirectional=bidirectional,
    )


MODES = ("lstm",)  # all that `jax.experimental.rnn` runs
DTYPES = ("float32",)  # the others run in float32, cast back


def cudnn_weights(*directions: Any):
    """Vendor-layout weights (one `[w_ih, w_hh, b_ih, b_hh]` per direction)
    as cuDNN's flat vector: every direction's matrices, then every
    direction's biases."""
    matrices, biases = [], []
    for w_ih, w_hh, b_ih, b_hh in directions:
        if b_ih is None:
            b_ih = b_hh = jnp.zeros(w_ih.shape[0], w_ih.dtype)
        matrices += [w_ih.ravel(), w_hh.ravel()]
        biases += [b_ih, b_hh]
    return jnp.concatenate(matrices + biases)


def _vendor(call, spec, weights, x, lengths, states):
    """One layer through cuDNN's LSTM (see `run_fused`)."""
    h0, c0 = states
    if lengths is None:
        lengths = jnp.full((x.shape[0],), x.shape[1], "int32")
    # cuDNN wants every row to have a step; `run_fused` gives a row with none
    # its initial states back.
    y, h, c = cudnn_lstm(
        x,
        h0[None],
        c0[None],
        cudnn_weights(weights),
        jnp.maximum(lengths, 1),
        input_size=x.shape[-1],
        hidden_size=h0.shape[-1],
        bidirectional=False,
    )
    return y, [h[0], c[0]]


class JaxCudnnLstmKernel:
    name = "jax-cudnn"
    priority = 10
    fused = True

    def why_not(self, call: RecurrentCall) -> str | None:
        reason = why_not_fused(call, modes=MODES) or why_not_exported(call)
        if reason is None and not on_gpu():
            return "no GPU (cuDNN's LSTM runs on a CUDA device only)"
        if reason is None and call.mask is not None and call.zero_output_for_mask:
            if not call.go_backwards:
                return WRONG_GRADIENTS
        return reason

    def run(self, call: RecurrentCall):
        return run_fused(call, _vendor, dtypes=DTYPES)

    def why_not_bidirectional(self, forward: RecurrentCall, backward: RecurrentCall):
        if forward.mask is not None:
            # Each direction alone is exact with lengths; see the module docstring.
            return "a mask: JAX's bidirectional cuDNN call gets input gradients wrong with lengths"
        return why_not_fused_bidirectional(self, forward, backward)

    def run_bidirectional(self, forward: RecurrentCall, backward: RecurrentCall):
        """Both directions in one cuDNN call (unmasked)."""
        return run_fused_bidirectional(forward, backward, _bidirectional_vendor, dtypes=DTYPES)


def _bidirectional_vendor(call, spec, weights, x, states):
    """Both directions through one cuDNN LSTM (see `run_fused_bidirectional`)."""
    (hf, cf), (hb, cb) = states
    y, h, c = cudnn_lstm(
        x,
        jnp.stack([hf, hb]),
        jnp.stack([cf, cb]),
        cudnn_weights(*weights),
        jnp.full((x.shape[0],), x.shape[1], "int32"),
        input_size=x.shape[-1],
        hidden_size=hf.shape[-1],
        bidirectional=True,
    )
    return y, ([h[0], c[0]], [h[1], c[1]])


def _loop_beats_scan() -> str | None:
    # bench.py `--layers beyond`: the scan 2-7x slower than the compiled loop.
    return (
        "on JAX's CPU the compiled step loop is faster" if jax.default_backend() == "cpu" else None
    )


def _loop_beats_chunks(what: str) -> str | None:
    # bench.py `--layers matrix`: GLA's inference 1.3-1.7x faster by the
    # compiled loop, Gated DeltaNet's 1.2x (XLA's CPU batched matmuls run at
    # a third of its large ones' speed); their train steps 1.7-2x slower, a
    # decay per head's no faster.
    if jax.default_backend() != "cpu":
        return None
    return f"on JAX's CPU the compiled step loop infers {what} faster"


register_kernel(JaxCudnnLstmKernel())
register_traits(
    "jax",
    Traits(
        associative_scan=True,
        compiled_scan=True,
        loop_beats_scan=_loop_beats_scan,
        loop_beats_chunks=_loop_beats_chunks,
        compile=jax.jit,
    ),
)
