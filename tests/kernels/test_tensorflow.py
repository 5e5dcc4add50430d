"""The tf.while_loop kernel against the reference kernel, for built-in,
custom, stacked and nested cells, in eager mode and inside tf.function."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import to_numpy
from tests.helpers.custom_cells import NestedCell
from tests.helpers.oracle import (
    KERNEL_OPTIONS,
    UNITS,
    assert_all_close,
    assert_matches_reference,
    fast_and_reference,
    make_mask,
    mask_kwargs,
    only_on,
    sequences,
    states_for,
)

pytestmark = only_on("tensorflow", "the tf.while_loop kernel")

OPTIONS = {k: KERNEL_OPTIONS[k] for k in ("default", "sequences_state", "backwards", "zero_output")}
MAKERS = {
    "LSTM": lambda **kw: keras_rnnx.LSTM(UNITS, **kw),
    "GRU-reset_before": lambda **kw: keras_rnnx.GRU(UNITS, reset_after=False, **kw),
    "SimpleRNN": lambda **kw: keras_rnnx.SimpleRNN(UNITS, **kw),
    "stacked": lambda **kw: keras_rnnx.RNN(
        [keras_rnnx.LSTMCell(4), keras_rnnx.GRUCell(UNITS)], **kw
    ),
}
CASES = [(m, o, k) for m in MAKERS for o in OPTIONS for k in ("none", "right", "holes")]


def _pair(maker, **options):
    return fast_and_reference(MAKERS[maker], **options)


@pytest.mark.parametrize(("maker", "case", "mask_kind"), CASES, ids=["-".join(c) for c in CASES])
def test_loop_matches_reference(maker, case, mask_kind):
    loop, reference = _pair(maker, **OPTIONS[case])
    assert_matches_reference(loop, reference, sequences(), **mask_kwargs(mask_kind))
    assert keras_rnnx.explain(loop).kernel_name == "tf-while"


def test_loop_in_tf_function_with_unknown_batch_and_steps():
    import tensorflow as tf

    loop, reference = _pair("LSTM", return_sequences=True, return_state=True)
    states = states_for(reference, batch=2)
    graph = tf.function(
        lambda x, h, c: loop(x, initial_state=[h, c]),
        input_signature=[tf.TensorSpec((None, None, 5))] + [tf.TensorSpec((None, UNITS))] * 2,
    )
    x = sequences(shape=(2, 9, 5))
    got = [to_numpy(t) for t in graph(x, *states)]
    want = [to_numpy(t) for t in reference(x, initial_state=states)]
    assert_all_close(got, want, "tf.function")


def test_unroll_declines():
    layer = keras_rnnx.GRU(UNITS, unroll=True)
    layer(sequences())
    selection = keras_rnnx.explain(layer)
    assert selection.kernel_name == "reference"
    assert ("tf-while", "unroll=True asks for the unrolled loop") in selection.passed_over


def test_nested_cell_runs_in_the_loop():

    x = (np.random.rand(2, 4, 4).astype("float32"), np.random.rand(2, 4, 3, 2).astype("float32"))
    loop = keras_rnnx.RNN(NestedCell(5, 2, 3), return_sequences=True, return_state=True)
    reference = keras_rnnx.RNN(
        NestedCell(5, 2, 3), return_sequences=True, return_state=True, use_cudnn=False
    )
    loop(x)
    reference(x)
    reference.set_weights(loop.get_weights())
    mask = make_mask("holes", batch=2, steps=4)
    got = [to_numpy(t) for t in keras.tree.flatten(loop(x, mask=mask))]
    want = [to_numpy(t) for t in keras.tree.flatten(reference(x, mask=mask))]
    assert_all_close(got, want, "nested")
    assert keras_rnnx.explain(loop).kernel_name == "tf-while"


def test_loop_compiles_with_xla():
    import tensorflow as tf

    loop, reference = _pair("GRU-reset_before", return_sequences=True, return_state=True)
    x, mask = sequences(), make_mask("holes")
    compiled = tf.function(lambda x, m: loop(x, mask=m), jit_compile=True)
    got = [to_numpy(t) for t in compiled(x, mask)]
    want = [to_numpy(t) for t in reference(x, mask=mask)]
    assert_all_close(got, want, "jit_compile")
    assert keras_rnnx.explain(loop).kernel_name == "tf-while"
