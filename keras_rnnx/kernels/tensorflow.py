"""A `tf.while_loop` over `cell.call` for any cell. Imported only on TensorFlow.

It runs the reference loop's own step (`masked_step`), but states and the
previous output are plain loop variables and only the outputs go to a
`TensorArray` (only when the sequence is returned). Keras's `ops.scan` on
TensorFlow routes the carry through a `TensorArray` each step and stacks it,
which made the reference loop up to 1.7x slower than keras.layers here.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_rnnx.kernels.reference import masked_step, zero_outputs
from keras_rnnx.kernels.registry import RecurrentCall, register_kernel


class TensorFlowLoopKernel:
    name = "tf-while"
    priority = 1
    fused = False

    def why_not(self, call: RecurrentCall) -> str | None:
        if call.unroll:
            return "unroll=True asks for the unrolled loop"
        return None

    def run(self, call: RecurrentCall):
        flat_inputs = [tf.convert_to_tensor(x) for x in keras.tree.flatten(call.inputs)]
        xs = [tf.transpose(x, [1, 0, *range(2, len(x.shape))]) for x in flat_inputs]
        mask = None if call.mask is None else tf.transpose(tf.cast(call.mask, tf.bool))
        if call.go_backwards:
            xs = [tf.reverse(x, [0]) for x in xs]
            mask = None if mask is None else tf.reverse(mask, [0])
        steps = tf.shape(xs[0])[0]
        output_structure = zero_outputs(call, tf.shape(xs[0])[1])
        flat_zero = keras.tree.flatten(output_structure)
        cell_step = masked_step(call, output_structure)
        outputs_ta = [
            tf.TensorArray(o.dtype, size=steps if call.return_sequences else 1) for o in flat_zero
        ]

        def body(t, flat_states, flat_prev, arrays):
            mask_t = None if mask is None else mask[t]
            flat_new, flat_out = cell_step([x[t] for x in xs], mask_t, flat_states, flat_prev)
            index = t if call.return_sequences else 0
            arrays = [a.write(index, o) for a, o in zip(arrays, flat_out)]
            return t + 1, flat_new, flat_out, arrays

        _, flat_states, flat_last, arrays = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (tf.constant(0), keras.tree.flatten(call.states), flat_zero, outputs_ta),
        )
        outputs = [
            tf.transpose(a.stack(), [1, 0, *range(2, len(o.shape) + 1)])
            for a, o in zip(arrays, flat_zero)
        ]
        return (
            keras.tree.pack_sequence_as(output_structure, flat_last),
            keras.tree.pack_sequence_as(output_structure, outputs),
            keras.tree.pack_sequence_as(call.states, flat_states),
        )


register_kernel(TensorFlowLoopKernel())
