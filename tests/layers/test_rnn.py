"""`keras_rnnx.RNN` with custom, nested and stacked cells."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from keras import ops

import keras_rnnx
from tests.helpers.backend_utils import KERAS_VERSION, to_numpy
from tests.helpers.custom_cells import NestedCell
from tests.helpers.oracle import (
    BATCH,
    FEATURES,
    MASK_KINDS,
    STEPS,
    assert_all_close,
    make_mask,
    sequences,
)


@keras_rnnx.register_cell(package="rnnx_tests")
class ScaledOutputCell(keras.layers.Layer):
    """h_t = tanh(x W + h_{t-1}); output 2 h_t: its output is not states[0]."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")

    def call(self, inputs, states):
        h = ops.tanh(ops.matmul(inputs, self.kernel) + states[0])
        return 2.0 * h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def numpy_masked_loop(x, mask, kernel, go_backwards, zero_output_for_mask):
    """The masking semantics, written out: carry states, repeat (or zero) outputs."""
    batch, steps, _ = x.shape
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    h = np.zeros((batch, kernel.shape[1]), "float32")
    prev = np.zeros_like(h)
    outputs = []
    for t in order:
        valid = np.ones(batch, bool) if mask is None else mask[:, t]
        new_h = np.tanh(x[:, t] @ kernel + h)
        out = 2.0 * new_h
        h = np.where(valid[:, None], new_h, h)
        prev = np.where(valid[:, None], out, 0.0 if zero_output_for_mask else prev)
        outputs.append(prev)
    return np.stack(outputs, axis=1), h


@pytest.mark.parametrize("mask_kind", MASK_KINDS)
@pytest.mark.parametrize("go_backwards", (False, True))
@pytest.mark.parametrize("zero_output_for_mask", (False, True))
@pytest.mark.parametrize("unroll", (False, True))
def test_masked_outputs_repeat_the_previous_output(
    mask_kind, go_backwards, zero_output_for_mask, unroll
):
    layer = keras_rnnx.RNN(
        ScaledOutputCell(3),
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
        zero_output_for_mask=zero_output_for_mask,
        unroll=unroll,
    )
    x = sequences()
    mask = make_mask(mask_kind)
    outputs, h = layer(x, mask=mask)
    expected_outputs, expected_h = numpy_masked_loop(
        x, mask, to_numpy(layer.cell.kernel), go_backwards, zero_output_for_mask
    )
    assert_all_close([to_numpy(outputs), to_numpy(h)], [expected_outputs, expected_h], "loop")
    last = layer.__class__.from_config(layer.get_config())
    last.return_sequences = False
    last(x)
    last.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_numpy(last(x, mask=mask)[0]), expected_outputs[:, -1], atol=1e-5)


def _nested_inputs(batch=BATCH, steps=STEPS):
    rng = np.random.RandomState(0)
    return (
        rng.rand(batch, steps, 4).astype("float32"),
        rng.rand(batch, steps, 3, 2).astype("float32"),
    )


@pytest.mark.parametrize("mask_kind", ("none", "right", "holes"))
@pytest.mark.parametrize("go_backwards", (False, True))
def test_nested_cell_states_accumulate_valid_steps(mask_kind, go_backwards):
    layer = keras_rnnx.RNN(NestedCell(5, 2, 3), return_state=True, go_backwards=go_backwards)
    x1, x2 = _nested_inputs()
    mask = make_mask(mask_kind)
    (out_1, out_2), s1, s2 = layer((x1, x2), mask=mask)
    valid = np.ones(x1.shape[:2]) if mask is None else mask.astype("float32")
    k1, k23 = to_numpy(layer.cell.kernel_1), to_numpy(layer.cell.kernel_2_3)
    expected_s1 = np.einsum("bt,bti,ij->bj", valid, x1, k1)
    expected_s2 = np.einsum("bt,btij,ijkl->bkl", valid, x2, k23)
    assert out_1.shape == (BATCH, 5) and out_2.shape == (BATCH, 2, 3)
    assert_all_close([to_numpy(s1), to_numpy(s2)], [expected_s1, expected_s2], "states", 1e-4)


def test_nested_cell_initial_state_stateful_and_symbolic_shapes():
    x1, x2 = _nested_inputs()
    s1 = np.ones((BATCH, 5), "float32")
    s2 = np.ones((BATCH, 2, 3), "float32")
    plain = keras_rnnx.RNN(NestedCell(5, 2, 3), return_state=True)
    _, f1, f2 = plain((x1, x2), initial_state=[s1, s2])
    _, z1, z2 = plain((x1, x2))
    np.testing.assert_allclose(to_numpy(f1) - to_numpy(z1), s1, atol=1e-5)
    np.testing.assert_allclose(to_numpy(f2) - to_numpy(z2), s2, atol=1e-5)

    stateful = keras_rnnx.RNN(NestedCell(5, 2, 3), stateful=True, return_state=True)
    stateful((x1, x2))
    stateful.set_weights(plain.get_weights())
    stateful.reset_state()
    stateful((x1, x2))
    _, a1, _ = stateful((x1, x2))
    np.testing.assert_allclose(to_numpy(a1), 2 * to_numpy(z1), atol=1e-4)

    i1, i2 = keras.Input((None, 4)), keras.Input((None, 3, 2))
    outputs = keras_rnnx.RNN(NestedCell(5, 2, 3), return_sequences=True)((i1, i2))
    assert [tuple(o.shape) for o in outputs] == [(None, None, 5), (None, None, 2, 3)]


def test_guide_nested_cell_model_compiles_and_fits():
    """The guide's NestedCell model: Keras 3.15 itself fails here (keras-io#2142)."""
    unit_1, unit_2, unit_3, i1, i2, i3 = 10, 20, 30, 32, 64, 32
    batch_size, num_batches, timestep = 8, 2, 5
    cell = NestedCell(unit_1, unit_2, unit_3)
    rnn = keras_rnnx.RNN(cell)
    input_1 = keras.Input((None, i1))
    input_2 = keras.Input((None, i2, i3))
    outputs = rnn((input_1, input_2))
    model = keras.models.Model([input_1, input_2], outputs)
    model.compile(optimizer="adam", loss="mse", metrics=["mae", "mae"])
    n = batch_size * num_batches
    rng = np.random.RandomState(0)
    input_data = [rng.random((n, timestep, i1)), rng.random((n, timestep, i2, i3))]
    target_data = [rng.random((n, unit_1)), rng.random((n, unit_2, unit_3))]
    history = model.fit(input_data, target_data, batch_size=batch_size, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize("mask_kind", ("none", "right", "holes"))
def test_stacked_cells_match_keras_stacked_cells(mask_kind):
    theirs = keras.layers.RNN(
        [keras.layers.LSTMCell(4), keras.layers.GRUCell(3)], return_state=True, name="s"
    )
    ours = keras_rnnx.RNN(
        [keras_rnnx.LSTMCell(4), keras_rnnx.GRUCell(3)], return_state=True, name="s"
    )
    x = sequences()
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    mask = make_mask(mask_kind)
    a = keras.tree.flatten(ours(x, mask=mask))
    b = keras.tree.flatten(theirs(x, mask=mask))
    assert_all_close([to_numpy(t) for t in a], [to_numpy(t) for t in b], "stacked")

    def paths(layer):  # auto-named cells get a per-process counter suffix
        return [re.sub(r"_\d+(?=/)", "", w.path) for w in layer.weights]

    assert paths(ours) == paths(theirs)


def test_stacked_cells_take_flat_or_nested_initial_states():
    layer = keras_rnnx.RNN([keras_rnnx.LSTMCell(4), keras_rnnx.GRUCell(3)], return_state=True)
    x = sequences()
    rng = np.random.RandomState(1)
    h1, c1 = rng.randn(BATCH, 4).astype("float32"), rng.randn(BATCH, 4).astype("float32")
    h2 = rng.randn(BATCH, 3).astype("float32")
    flat = keras.tree.flatten(layer(x, initial_state=[h1, c1, h2]))
    nested = keras.tree.flatten(layer(x, initial_state=[[h1, c1], [h2]]))
    assert_all_close([to_numpy(t) for t in flat], [to_numpy(t) for t in nested], "initial")


def test_keras_cells_run_in_keras_rnnx_rnn():
    theirs = keras.layers.RNN(keras.layers.GRUCell(3), return_sequences=True, name="r")
    ours = keras_rnnx.RNN(keras.layers.GRUCell(3), return_sequences=True, name="r")
    x = sequences()
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    mask = make_mask("holes")
    assert_all_close([to_numpy(ours(x, mask=mask))], [to_numpy(theirs(x, mask=mask))], "cell")


def test_functional_encoder_decoder_with_symbolic_initial_state():
    encoder_input = keras.Input(shape=(None,))
    embedded = keras.layers.Embedding(input_dim=100, output_dim=8)(encoder_input)
    output, state_h, state_c = keras_rnnx.LSTM(6, return_state=True, name="encoder")(embedded)
    decoder_input = keras.Input(shape=(None,))
    decoder_embedded = keras.layers.Embedding(input_dim=200, output_dim=8)(decoder_input)
    decoder_output = keras_rnnx.LSTM(6, name="decoder")(
        decoder_embedded, initial_state=[state_h, state_c]
    )
    model = keras.Model([encoder_input, decoder_input], keras.layers.Dense(3)(decoder_output))
    a = np.random.RandomState(0).randint(1, 100, (2, 7))
    b = np.random.RandomState(1).randint(1, 200, (2, 4))
    assert tuple(model.predict([a, b], verbose=0).shape) == (2, 3)
    assert model.get_layer("encoder").count_params() == 4 * (8 * 6 + 6 * 6 + 6)


def test_embedding_mask_zero_is_used():
    model = keras.Sequential(
        [keras.layers.Embedding(10, 4, mask_zero=True), keras_rnnx.GRU(3, return_sequences=True)]
    )
    x = np.array([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0]])
    out = to_numpy(model(x))
    np.testing.assert_allclose(out[0, 3], out[0, 2])
    np.testing.assert_allclose(out[1, 4], out[1, 1])


def test_compute_output_shape_and_mask():
    layer = keras_rnnx.LSTM(4, return_sequences=True, return_state=True)
    shapes = layer.compute_output_shape((2, 7, 3))
    assert [tuple(s) for s in shapes] == [(2, 7, 4), (2, 4), (2, 4)]
    mask = np.ones((2, 7), bool)
    out_mask = layer.compute_mask(None, mask)
    assert out_mask[0] is mask and out_mask[1:] == [None, None]
    bi = keras_rnnx.Bidirectional(keras_rnnx.GRU(4, return_state=True), merge_mode=None)
    assert [tuple(s) for s in bi.compute_output_shape((2, 7, 3))] == [(2, 4)] * 4


def test_explain_reports_the_kernel_and_why_faster_ones_declined():
    layer = keras_rnnx.RNN(ScaledOutputCell(3))
    with pytest.raises(ValueError, match="has not run yet"):
        keras_rnnx.explain(layer)
    layer(sequences())
    selection = keras_rnnx.explain(layer)
    assert f"kernel: {selection.kernel_name}" in str(selection)
    ranked = {k.name: k for k in keras_rnnx.registered_kernels()}
    assert not ranked[selection.kernel_name].fused  # no fused kernel for a custom cell
    faster = [n for n, k in ranked.items() if k.priority > ranked[selection.kernel_name].priority]
    assert [name for name, _ in selection.passed_over] == faster
    assert all("ScaledOutputCell" in why for _, why in selection.passed_over)
    bi = keras_rnnx.Bidirectional(keras_rnnx.GRU(3, use_cudnn=False))
    bi(sequences())
    assert {k: v.kernel_name for k, v in keras_rnnx.explain(bi).items()} == {
        "forward": "reference",
        "backward": "reference",
    }
    report = str(keras_rnnx.explain(bi))  # one readable report, both directions
    forward, backward = (str(keras_rnnx.explain(d)) for d in (bi.forward_layer, bi.backward_layer))
    indent = lambda text: "\n".join("  " + line for line in text.splitlines())  # noqa: E731
    assert report == f"forward:\n{indent(forward)}\nbackward:\n{indent(backward)}"
    assert "Selection(" not in report
    with pytest.raises(ValueError, match="keras_rnnx recurrent layer"):
        keras_rnnx.explain(keras.layers.Dense(2))


def test_use_cudnn_true_explains_why_no_fused_kernel_runs():
    layer = keras_rnnx.RNN(ScaledOutputCell(3), use_cudnn=True)
    with pytest.raises(ValueError, match="No fused kernel can run this call"):
        layer(sequences())


def test_unused_feature_dims_do_not_matter_for_stacked_output_size():
    layer = keras_rnnx.RNN(
        keras_rnnx.StackedRNNCells([keras_rnnx.SimpleRNNCell(5), keras_rnnx.LSTMCell(2)]),
        return_sequences=True,
    )
    assert tuple(layer(sequences()).shape) == (BATCH, STEPS, 2)
    assert layer.cell.state_size == [5, [2, 2]]
    assert FEATURES == layer.cell.cells[0].kernel.shape[0]


@pytest.mark.parametrize("layer_name", ("LSTM", "GRU"))
def test_stateful_layer_carries_states_through_compiled_predict_and_fit(layer_name):
    """predict() and fit() run compiled steps (tf.function, jax.jit); the
    states must still carry over from batch to batch, and training must work
    (on torch, Keras's own stateful layers fail in backward: keras#23462)."""
    batch, steps = 2, 4
    layer = getattr(keras_rnnx, layer_name)(3, stateful=True, return_sequences=True)
    model = keras.Sequential([keras.Input((steps, FEATURES), batch_size=batch), layer])
    chunks = [sequences(seed, (batch, steps, FEATURES)) for seed in range(3)]
    outputs = [model.predict(chunk, batch_size=batch, verbose=0) for chunk in chunks]
    whole = getattr(keras_rnnx, layer_name)(3, return_sequences=True)
    joined = np.concatenate(chunks, axis=1)
    whole(joined)
    whole.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), to_numpy(whole(joined)), atol=1e-5)

    layer.reset_state()
    model.compile(optimizer="sgd", loss="mse")
    x = np.concatenate(chunks, axis=0)
    history = model.fit(x, np.zeros((6, steps, 3)), batch_size=batch, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert any(np.abs(to_numpy(s)).sum() > 0 for s in layer.states)


def test_bidirectional_weights_argument_and_backward_layer():
    x = sequences()
    source = keras_rnnx.Bidirectional(keras_rnnx.GRU(3))
    source(x)
    copy = keras_rnnx.Bidirectional(keras_rnnx.GRU(3), weights=source.get_weights())
    np.testing.assert_allclose(to_numpy(copy(x)), to_numpy(source(x)), atol=1e-6)

    backward = keras_rnnx.SimpleRNN(2, go_backwards=True)
    mixed = keras_rnnx.Bidirectional(keras_rnnx.GRU(3), backward_layer=backward)
    assert tuple(mixed(x).shape) == (BATCH, 5)
    assert mixed.backward_layer is backward


def test_bidirectional_stateful_states_and_reset():
    layer = keras_rnnx.Bidirectional(keras_rnnx.LSTM(3, stateful=True))
    layer(sequences())
    assert len(layer.states) == 4
    assert any(np.abs(to_numpy(s)).sum() > 0 for s in layer.states)
    layer.reset_states()
    assert all((to_numpy(s) == 0).all() for s in layer.states)


@pytest.mark.parametrize("name", ("LSTM", "GRU", "SimpleRNN", "Bidirectional"))
def test_mask_propagation_follows_the_installed_keras(name):
    # Keras 3.16 stopped passing the mask on from recurrent layers (its pull
    # request 23235): the twins do as the Keras they run with.
    propagates = KERAS_VERSION < (3, 16)
    tokens = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(10, 3, mask_zero=True)(tokens)
    for mod in (keras.layers, keras_rnnx):
        layer = (
            mod.Bidirectional(mod.LSTM(2, return_sequences=True))
            if name == "Bidirectional"
            else getattr(mod, name)(2, return_sequences=True)
        )
        output = layer(embedded)
        assert layer.supports_masking is propagates, mod.__name__
        assert (getattr(output, "_keras_mask", None) is not None) is propagates, mod.__name__
