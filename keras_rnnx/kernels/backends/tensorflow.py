"""TensorFlow's kernels: a `tf.while_loop` over `cell.call` for any cell, and
cuDNN (`CudnnRNNV3`) on a GPU for every cell with an LSTM or GRU fused spec
(`kernels/specs.py`). Imported only on TensorFlow.

The loop runs the reference loop's own step (`cell_step`), but states and the
previous output are plain loop variables; the inputs are read from
`TensorArray`s and the outputs written to them (only when the sequence is
returned), except in an OpenVINO or LiteRT export, which reads and writes
plain tensors (`_ExportedSteps`). Keras's `ops.scan` on TensorFlow routes the carry through a
`TensorArray` each step and stacks it, which made the reference loop up to 1.7x
slower than keras.layers here; indexing the inputs (`x[t]`) made training 2x
slower than keras.layers where gradients flow into the inputs (an epoch of the
masked text model in `benchmarks/fit.py`), as each step's gradient of `x[t]` is a
dense tensor the size of `x`.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from keras_rnnx.kernels.fused import (
    run_fused,
    why_not_exported,
    why_not_fused,
    why_not_fused_cell,
)
from keras_rnnx.kernels.reference import cell_step, zero_outputs
from keras_rnnx.kernels.registry import RecurrentCall, register_kernel
from keras_rnnx.kernels.sequence import in_processing_order
from keras_rnnx.types import Cell, Tensor


class TensorFlowLoopKernel:
    name = "tf-while"
    priority = 1
    fused = False
    resets = True

    def why_not(self, call: RecurrentCall) -> str | None:
        if call.unroll:
            return "unroll=True asks for the unrolled loop"
        return None

    def run(self, call: RecurrentCall):
        with call.dropout_on_cells():
            return self._loop(call)

    def _loop(self, call: RecurrentCall):
        flat_inputs = [tf.convert_to_tensor(x) for x in keras.tree.flatten(call.inputs)]
        xs = [tf.transpose(x, [1, 0, *range(2, len(x.shape))]) for x in flat_inputs]
        mask, reset = (_time_major_flags(m, call.go_backwards) for m in (call.mask, call.reset))
        xs = [in_processing_order(x, call.go_backwards, axis=0) for x in xs]
        steps = tf.shape(xs[0])[0]
        output_structure = zero_outputs(call, tf.shape(xs[0])[1])
        flat_zero = keras.tree.flatten(output_structure)
        one_step = cell_step(call, output_structure)
        # Only a returned sequence is written out, step by step.
        sequences = call.return_sequences
        steps_io = _ExportedSteps if call.exporting in ("openvino", "litert") else _ArraySteps
        inputs, outputs = steps_io.inputs(xs), steps_io.outputs(flat_zero, steps, sequences)

        def body(t, flat_states, flat_prev, outputs):
            mask_t = None if mask is None else mask[t]
            reset_t = None if reset is None else reset[t]
            inputs_t = steps_io.read(inputs, t)
            flat_new, flat_out = one_step(inputs_t, mask_t, flat_states, flat_prev, reset_t)
            return t + 1, flat_new, flat_out, steps_io.write(outputs, t, flat_out)

        _, flat_states, flat_last, outputs = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (tf.constant(0), keras.tree.flatten(call.states), flat_zero, outputs),
            # XLA sizes the gradient's accumulators by it (`jit_compile=True`).
            maximum_iterations=steps,
        )
        if sequences:
            outputs = [
                tf.transpose(steps_io.stack(a), [1, 0, *range(2, len(o.shape) + 1)])
                for a, o in zip(outputs, flat_zero)
            ]
        else:  # the layer returns the last output only
            outputs = [o[:, None] for o in flat_last]
        return (
            keras.tree.pack_sequence_as(output_structure, flat_last),
            keras.tree.pack_sequence_as(output_structure, outputs),
            keras.tree.pack_sequence_as(call.states, flat_states),
        )


def _time_major_flags(flags, go_backwards):
    """A `(batch, time)` mask or reset as `(time, batch)` booleans, in
    processing order; `None` stays `None`."""
    if flags is None:
        return None
    return in_processing_order(tf.transpose(tf.cast(flags, tf.bool)), go_backwards, axis=0)


class _ArraySteps:
    """Steps read from and written to `TensorArray`s: each step's gradient
    of `x[t]` inside the loop would be a dense `x`-sized tensor added up at
    every step, and writing into a carried tensor copies it each step."""

    @staticmethod
    def inputs(xs):
        return [tf.TensorArray(x.dtype, size=tf.shape(x)[0]).unstack(x) for x in xs]

    @staticmethod
    def outputs(flat_zero, steps, sequences):
        return [tf.TensorArray(o.dtype, size=steps) for o in flat_zero] if sequences else []

    @staticmethod
    def read(arrays, t):
        return [a.read(t) for a in arrays]

    @staticmethod
    def write(arrays, t, flat_out):
        return [a.write(t, o) for a, o in zip(arrays, flat_out)]

    @staticmethod
    def stack(array):
        return array.stack()


class _ExportedSteps:
    """Steps gathered from the time-major inputs and scattered into carried
    outputs, for an export: OpenVINO converts no `TensorList` and LiteRT runs
    one only through Flex. Inference only (no gradient is exported), and each
    step copies the carried outputs, as a LiteRT `WHILE` copies its loop
    variables anyway."""

    @staticmethod
    def inputs(xs):
        return xs

    @staticmethod
    def outputs(flat_zero, steps, sequences):
        if not sequences:
            return []
        return [tf.zeros(tf.concat([[steps], tf.shape(o)], 0), o.dtype) for o in flat_zero]

    @staticmethod
    def read(xs, t):
        return [tf.gather(x, t) for x in xs]

    @staticmethod
    def write(buffers, t, flat_out):
        return [tf.tensor_scatter_nd_update(b, [[t]], o[None]) for b, o in zip(buffers, flat_out)]

    @staticmethod
    def stack(buffer):
        return buffer


def on_gpu() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


def cudnn_rnn(x: Tensor, h0: Tensor, c0: Tensor, params, lengths: Tensor | None, rnn_mode):
    """One layer of `CudnnRNNV3`, batch-major, with lengths (a seam for tests).
    An LSTM projects when `h0` is narrower than `c0`.

    Returns `(outputs, h, c)`: outputs are zeros past each row's length, and
    the states are those after its last valid step.
    """
    projection = h0.shape[-1] if h0.shape[-1] != c0.shape[-1] else 0
    y, h, c, _, _ = tf.raw_ops.CudnnRNNV3(
        input=x,
        input_h=h0[:, None],
        input_c=c0[:, None],
        params=params,
        is_training=True,
        rnn_mode=rnn_mode,
        sequence_lengths=lengths,
        num_proj=projection,
        time_major=False,
    )
    return y, h[:, 0], c[:, 0]


def cudnn_params(weights: Any):
    """Vendor-layout weights as cuDNN's flat vector: the spec's vendor layout
    `(w_ih, w_hh, b_ih, b_hh)` raveled (each gate's matrix transposed, input
    matrices then recurrent ones, then input and recurrent biases). A
    projected LSTM's (`w_hr`, a fifth weight) go through cuDNN's own
    conversion, as where cuDNN keeps the projection is not documented."""
    w_ih, w_hh, b_ih, b_hh, *projection = weights
    if b_ih is None:
        b_ih = b_hh = tf.zeros([w_ih.shape[0]], w_ih.dtype)
    if projection:
        return _projected_params(w_ih, w_hh, b_ih, b_hh, projection[0])
    return tf.concat([tf.reshape(w, [-1]) for w in (w_ih, w_hh, b_ih, b_hh)], axis=0)


def params_from_canonical(weights: Any, biases, num_units, input_size, num_proj):
    """`CudnnRNNCanonicalToParamsV2` for one LSTM layer (a seam for tests):
    cuDNN's flat params from its canonical weights and biases, per gate."""
    return tf.raw_ops.CudnnRNNCanonicalToParamsV2(
        num_layers=1,
        num_units=num_units,
        input_size=input_size,
        weights=weights,
        biases=biases,
        num_proj=num_proj,
    )


def canonical_from_params(params, num_units, input_size, num_proj):
    """`CudnnRNNParamsToCanonicalV2`, the inverse of `params_from_canonical`
    (a seam for tests): `(weights, biases)`."""
    return tf.raw_ops.CudnnRNNParamsToCanonicalV2(
        num_layers=1,
        num_units=num_units,
        input_size=input_size,
        params=params,
        num_params_weights=9,
        num_params_biases=8,
        num_proj=num_proj,
    )


def _projected_params(w_ih, w_hh, b_ih, b_hh, w_hr):
    """A projected LSTM's flat params, differentiable: TensorFlow has no
    gradient for the conversion, which only places each canonical weight in
    the flat vector, so its gradient takes each weight's gradient back out."""
    sizes = {
        "num_units": w_ih.shape[0] // 4,
        "input_size": w_ih.shape[1],
        "num_proj": w_hr.shape[0],
    }
    canonical = [*tf.split(w_ih, 4), *tf.split(w_hh, 4), w_hr, *tf.split(b_ih, 4)]
    canonical += tf.split(b_hh, 4)

    @tf.custom_gradient
    def convert(*tensors):
        params = params_from_canonical(list(tensors[:9]), list(tensors[9:]), **sizes)

        def gradient(upstream):
            weights, biases = canonical_from_params(upstream, **sizes)
            return [*weights, *biases]

        return params, gradient

    return convert(*canonical)


# CudnnRNNV3 runs all four, but Keras runs cuDNN for LSTM and GRU only, and
# no TensorFlow GPU build could be installed here to check the simple RNNs.
MODES = ("lstm", "gru")
# CudnnRNNV3's types; bfloat16 runs in float32, cast back.
DTYPES = ("float16", "float32", "float64")


def _cudnn_vendor(call, spec, weights, x, lengths, states):
    """One layer through `CudnnRNNV3` (see `run_fused`)."""
    h0 = states[0]
    c0 = states[1] if spec.states == 2 else tf.zeros_like(h0)
    if lengths is None:
        lengths = tf.fill([tf.shape(x)[0]], tf.shape(x)[1])
    # cuDNN wants every row to have a step; `run_fused` gives a row with none
    # its initial states back.
    params = cudnn_params(weights)
    y, h, c = cudnn_rnn(x, h0, c0, params, tf.maximum(lengths, 1), spec.mode)
    return y, [h, c][: spec.states]


NO_GPU = "no GPU (CudnnRNNV3 runs on a CUDA device only)"


class TensorFlowCudnnKernel:
    """cuDNN's LSTM and GRU (`CudnnRNNV3`) on a TensorFlow GPU.

    Masks become sequence lengths, as in Keras, but left-padded masks and
    masks with holes are converted (each row's valid steps moved first, see
    `kernels/fused.py`) rather than rejected.
    """

    name = "tf-cudnn"
    priority = 10
    fused = True
    xla = False  # CudnnRNNV3 has no XLA kernel

    def why_not(self, call: RecurrentCall) -> str | None:
        reason = why_not_fused(call, modes=MODES, projects=True) or why_not_exported(call)
        if reason is None and not on_gpu():
            return NO_GPU
        return reason

    def why_not_cell(self, cell: Cell, unroll: bool) -> str | None:
        """What `why_not` knows before a call: the cell, `unroll`, the device."""
        reason = why_not_fused_cell(cell, unroll, modes=MODES, projects=True)
        if reason is None and not on_gpu():
            return NO_GPU
        return reason

    def run(self, call: RecurrentCall):
        return run_fused(call, _cudnn_vendor, dtypes=DTYPES)


register_kernel(TensorFlowLoopKernel())
register_kernel(TensorFlowCudnnKernel())
