"""ConvLSTM1D/2D/3D and ConvLSTMCell against keras.layers' ConvLSTM layers:
same weights in, same outputs, final states and gradients out."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import to_numpy
from tests.helpers.oracle import assert_all_close, assert_matches_keras, make_mask, states_for

# Per rank: (batch, time, *spatial, channels) and a kernel size.
SHAPES = {1: ((3, 5, 7, 2), 3), 2: ((3, 4, 6, 5, 2), 3), 3: ((2, 3, 5, 4, 4, 2), 2)}

OPTIONS = {
    "default": {},
    "same_sequences_state": {"padding": "same", "return_sequences": True, "return_state": True},
    "strides_backwards": {"strides": 2, "go_backwards": True, "return_sequences": True},
    "dilation": {"dilation_rate": 2, "return_state": True},
    "channels_first": {"data_format": "channels_first", "return_sequences": True},
    "no_bias_relu": {"use_bias": False, "activation": "relu", "padding": "same"},
    "unroll": {"unroll": True, "return_state": True, "padding": "same"},
    "no_forget_bias": {"unit_forget_bias": False, "bias_initializer": "random_normal"},
}


def _inputs(rank, options, seed=0):
    shape, kernel_size = SHAPES[rank]
    x = np.random.RandomState(seed).randn(*shape).astype("float32")
    if options.get("data_format") == "channels_first":
        x = np.moveaxis(x, -1, 2).copy()
    return x, kernel_size


class _ChannelsFirst(keras.layers.Layer):
    """Keras's channels-last ConvLSTM between transposes: the oracle for
    `channels_first` sequences, which Keras's own cannot run on TensorFlow's
    CPU convolutions without oneDNN (as on AMD CPUs)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def call(self, x):
        return keras.ops.moveaxis(self.inner(keras.ops.moveaxis(x, 2, -1)), -1, 2)


def _twins(rank, x, kernel_size, **options):
    keras_cls = getattr(keras.layers, f"ConvLSTM{rank}D")
    if options.get("data_format") == "channels_first":
        assert options["return_sequences"] and not options.get("return_state")
        last = {**options, "data_format": "channels_last"}
        theirs = _ChannelsFirst(keras_cls(4, kernel_size, **last))
    else:
        theirs = keras_cls(4, kernel_size, **options)
    ours = getattr(keras_rnnx, f"ConvLSTM{rank}D")(4, kernel_size, **options)
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    return ours, theirs


# Every rank with the defaults, and each option set at one rank in turn: the
# rank only picks the convolution, which the options reach alike.
RANKED = [(1 + k % 3, case) for k, case in enumerate(OPTIONS)] + [(2, "default"), (3, "default")]


@pytest.mark.parametrize(("rank", "case"), RANKED)
def test_matches_keras(rank, case):
    x, kernel_size = _inputs(rank, OPTIONS[case])
    ours, theirs = _twins(rank, x, kernel_size, **OPTIONS[case])
    assert_matches_keras(ours, theirs, x)


MASKS = ("right", "left", "holes", "empty_row")


@pytest.mark.skipif(
    keras.backend.backend() == "jax",
    reason="Keras's JAX loop fails on a masked ConvLSTM (it broadcasts the mask over "
    "one trailing axis); test_masks_skip_steps_as_keras_runs_the_valid_steps covers JAX",
)
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("options", ({}, {"go_backwards": True, "zero_output_for_mask": True}))
def test_masks_match_keras(mask_kind, options):
    x, kernel_size = _inputs(2, {})
    ours, theirs = _twins(
        2, x, kernel_size, padding="same", return_sequences=True, return_state=True, **options
    )
    mask = make_mask(mask_kind, batch=x.shape[0], steps=x.shape[1])
    assert_matches_keras(ours, theirs, x, mask=mask)


@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("go_backwards", (False, True))
def test_masks_skip_steps_as_keras_runs_the_valid_steps(mask_kind, go_backwards):
    """A masked row's final output and states are Keras's on that row's valid
    steps alone (zeros for a row without any)."""
    x, kernel_size = _inputs(2, {})
    ours, theirs = _twins(
        2, x, kernel_size, padding="same", return_state=True, go_backwards=go_backwards
    )
    mask = make_mask(mask_kind, batch=x.shape[0], steps=x.shape[1])
    got = [to_numpy(t) for t in ours(x, mask=mask)]
    for row in range(x.shape[0]):
        valid = x[row : row + 1, mask[row]]
        expected = [to_numpy(t) for t in theirs(valid)] if valid.shape[1] else None
        for tensor, want in zip(got, expected or [np.zeros_like(got[0][:1])] * 3):
            np.testing.assert_allclose(tensor[row : row + 1], want, atol=1e-5)


def test_initial_state_matches_keras():
    x, kernel_size = _inputs(2, {})
    ours, theirs = _twins(2, x, kernel_size, return_sequences=True, return_state=True)
    states = states_for(theirs, batch=x.shape[0])
    assert_matches_keras(ours, theirs, x, initial_state=states)


def test_stateful_matches_keras():
    x, kernel_size = _inputs(1, {})
    ours, theirs = _twins(1, x, kernel_size, stateful=True, padding="same")
    ours.reset_state()
    theirs.reset_state()
    for seed in range(3):
        x, _ = _inputs(1, {}, seed)
        assert_all_close([to_numpy(ours(x))], [to_numpy(theirs(x))], f"batch {seed}")
    assert_all_close(
        [to_numpy(v) for v in ours.states], [to_numpy(v) for v in theirs.states], "states"
    )


@pytest.mark.parametrize("recurrent_dropout", (0.0, 0.3))
def test_seeded_dropout_matches_keras(recurrent_dropout):
    """Same seed, same weights and masks (one per gate, as Keras's cell)."""
    x, kernel_size = _inputs(2, {})
    layers = []
    for module in (keras_rnnx, keras.layers):
        keras.utils.set_random_seed(0)
        layer = module.ConvLSTM2D(
            4, kernel_size, dropout=0.4, recurrent_dropout=recurrent_dropout, seed=3
        )
        layers.append((layer, to_numpy(layer(x, training=True))))
    (ours, a), (theirs, b) = layers
    for w_ours, w_theirs in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(w_ours, w_theirs)
    assert_all_close([a], [b], "training outputs")
    assert not np.allclose(a, to_numpy(ours(x))), "dropout had no effect"


@pytest.mark.parametrize("rank", (1, 2, 3))
def test_weights_and_config_match_keras(rank):
    x, kernel_size = _inputs(rank, {})
    options = {"strides": 1, "padding": "same", "return_state": True, "name": "conv"}
    ours, theirs = _twins(rank, x, kernel_size, **options)
    assert [w.path for w in ours.weights] == [w.path for w in theirs.weights]
    assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights]
    assert ours.get_config() == theirs.get_config()
    # A file Keras can read: its class loads our config.
    clone = getattr(keras.layers, f"ConvLSTM{rank}D").from_config(ours.get_config())
    assert clone.get_config() == theirs.get_config()


def test_bidirectional_matches_keras():
    x, kernel_size = _inputs(1, {})
    theirs = keras.layers.Bidirectional(
        keras.layers.ConvLSTM1D(3, kernel_size, padding="same", return_sequences=True)
    )
    ours = keras_rnnx.Bidirectional(
        keras_rnnx.ConvLSTM1D(3, kernel_size, padding="same", return_sequences=True)
    )
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    assert_matches_keras(ours, theirs, x)


def test_cell_in_rnn_and_stacked_cells_runs_as_the_layer():
    x, kernel_size = _inputs(2, {})
    layer = keras_rnnx.ConvLSTM2D(4, kernel_size, padding="same", return_sequences=True)
    expected = to_numpy(layer(x))
    cell = keras_rnnx.ConvLSTMCell(2, 4, kernel_size, padding="same")
    rnn = keras_rnnx.RNN(cell, return_sequences=True)
    rnn(x)
    rnn.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_numpy(rnn(x)), expected, atol=1e-6)
    stacked = keras_rnnx.RNN(
        [keras_rnnx.ConvLSTMCell(2, 4, 3, padding="same"), keras_rnnx.ConvLSTMCell(2, 2, 3)],
        return_state=True,
    )
    output, *states = stacked(x)
    assert tuple(output.shape) == (3, 4, 3, 2)
    assert [tuple(s.shape) for s in keras.tree.flatten(states)] == [
        (3, 6, 5, 4),
        (3, 6, 5, 4),
        (3, 4, 3, 2),
        (3, 4, 3, 2),
    ]


def test_cell_config_round_trips_with_its_rank():
    cell = keras_rnnx.ConvLSTMCell(3, 2, (1, 2, 3), strides=(1, 2, 1), data_format="channels_first")
    clone = keras_rnnx.ConvLSTMCell.from_config(cell.get_config())
    assert clone.get_config() == cell.get_config()
    assert (clone.rank, clone.kernel_size, clone.strides) == (3, (1, 2, 3), (1, 2, 1))


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    (
        ({"rank": 4}, "rank"),
        ({"filters": 0}, "filters"),
        ({"kernel_size": (3, 3, 3)}, "kernel_size"),
        ({"strides": 0}, "strides"),
        ({"strides": 2, "dilation_rate": 2}, "dilation_rate"),
        ({"padding": "causal"}, "padding"),
        ({"data_format": "channels_middle"}, "data_format"),
        ({"dropout": 1.5}, "dropout"),
    ),
)
def test_bad_arguments_name_the_argument(kwargs, argument):
    arguments = {"rank": 2, "filters": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=f"`{argument}"):
        keras_rnnx.ConvLSTMCell(**arguments)


def test_layers_reject_a_rank_and_inputs_of_another_rank():
    with pytest.raises(ValueError, match="no `rank` argument"):
        keras_rnnx.ConvLSTM2D(4, 3, rank=3)
    with pytest.raises(ValueError, match="expected ndim=5"):
        keras_rnnx.ConvLSTM2D(4, 3)(np.zeros((2, 3, 4, 4), "float32"))
    with pytest.raises(ValueError, match="only support static input shapes for the spatial"):
        keras_rnnx.ConvLSTM1D(4, 3)(keras.Input((5, None, 2)))
