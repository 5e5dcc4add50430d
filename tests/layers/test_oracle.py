"""keras_rnnx layers against their keras.layers twins: same weights in, same
outputs, final states and gradients (inputs and weights) out."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import coefficients_for, on_gpu, outputs_and_gradients, to_numpy
from tests.helpers.oracle import (
    BATCH,
    FEATURES,
    MASK_KINDS,
    MIXED_TOLERANCE,
    STEPS,
    UNITS,
    assert_all_close,
    assert_matches_keras,
    make_mask,
    mask_kwargs,
    sequences,
    states_for,
    twins,
)

LAYERS = ("LSTM", "GRU", "SimpleRNN")

OPTIONS = {
    "default": {},
    "sequences": {"return_sequences": True},
    "state": {"return_state": True},
    "sequences_state": {"return_sequences": True, "return_state": True},
    "backwards_sequences": {"go_backwards": True, "return_sequences": True},
    "backwards_state": {"go_backwards": True, "return_state": True},
    "unroll": {"unroll": True, "return_sequences": True, "return_state": True},
    "no_bias": {"use_bias": False, "return_sequences": True},
    "relu": {"activation": "relu", "return_state": True},
    "zero_output": {"zero_output_for_mask": True, "return_sequences": True},
}

EXTRA_OPTIONS = {
    "LSTM": {
        "no_forget_bias": {"unit_forget_bias": False, "bias_initializer": "random_normal"},
        "hard_sigmoid": {"recurrent_activation": "hard_sigmoid", "return_sequences": True},
    },
    "GRU": {
        "reset_before": {"reset_after": False, "return_sequences": True},
        "reset_before_backwards": {"reset_after": False, "go_backwards": True},
        "reset_before_no_bias": {"reset_after": False, "use_bias": False},
        "hard_sigmoid": {"recurrent_activation": "hard_sigmoid", "return_state": True},
    },
    "SimpleRNN": {"linear": {"activation": None, "return_sequences": True}},
}

CASES = [
    (layer, name, options)
    for layer in LAYERS
    for name, options in {**OPTIONS, **EXTRA_OPTIONS[layer]}.items()
]
# Each case unmasked and with two of the four masks, turning with the layer
# and the option, so that every option meets every mask across the layers
# and every layer every mask (not every triple: the suite's time).
MASKED = [kind for kind in MASK_KINDS if kind != "none"]
MASKED_CASES = [
    (*case, kind)
    for layer_index, layer in enumerate(LAYERS)
    for option_index, case in enumerate(c for c in CASES if c[0] == layer)
    for kind in ("none", *(MASKED[(layer_index + option_index + k) % 4] for k in (0, 2)))
]


@pytest.mark.parametrize(
    ("layer", "case", "options", "mask_kind"),
    MASKED_CASES,
    ids=[f"{c[0]}-{c[1]}-{c[3]}" for c in MASKED_CASES],
)
def test_matches_keras(layer, case, options, mask_kind):
    ours, theirs = twins(
        getattr(keras_rnnx, layer),
        getattr(keras.layers, layer),
        (BATCH, STEPS, FEATURES),
        UNITS,
        **options,
    )
    x = sequences()
    assert_matches_keras(
        ours,
        theirs,
        x,
        keras_reverses=_keras_jax_cudnn_reverses(layer, options, mask_kind),
        **mask_kwargs(mask_kind),
    )


def _keras_jax_cudnn_reverses(layer, options, mask_kind):
    """Keras's cuDNN LSTM on JAX (GPU, no mask, default activations, a bias)
    flips a `go_backwards` sequence back to input order; its other paths, and
    every other backend, return it in processing order, as keras_rnnx does."""
    keras_takes_cudnn = mask_kind == "none" and not any(
        k in options for k in ("unroll", "use_bias", "activation", "recurrent_activation")
    )
    backwards_sequence = options.get("go_backwards") and options.get("return_sequences")
    on_jax_gpu = keras.backend.backend() == "jax" and on_gpu()
    return layer == "LSTM" and on_jax_gpu and keras_takes_cudnn and bool(backwards_sequence)


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("mask_kind", ("none", "right", "holes"))
def test_initial_state_matches_keras(layer, mask_kind):
    ours, theirs = twins(
        getattr(keras_rnnx, layer),
        getattr(keras.layers, layer),
        (BATCH, STEPS, FEATURES),
        UNITS,
        return_sequences=True,
        return_state=True,
    )
    states = states_for(theirs)
    mask = make_mask(mask_kind)
    kwargs = {"initial_state": states} | ({} if mask is None else {"mask": mask})
    expected = None
    if mask is not None and keras.backend.backend() == "jax":
        # Keras's JAX loop outputs the initial state h0 at masked steps before
        # a row's first valid step; its TF loop (and keras_rnnx, everywhere)
        # outputs zeros there, since no step has produced an output yet.
        def expected(outputs):
            no_output_yet = (np.cumsum(mask, axis=1) == 0)[..., None]
            return [np.where(no_output_yet, 0.0, outputs[0]), *outputs[1:]]

    assert_matches_keras(ours, theirs, sequences(), expected_outputs=expected, **kwargs)


@pytest.mark.parametrize("layer", LAYERS)
def test_inference_dropout_matches_keras(layer):
    ours, theirs = twins(
        getattr(keras_rnnx, layer),
        getattr(keras.layers, layer),
        (BATCH, STEPS, FEATURES),
        UNITS,
        dropout=0.3,
        recurrent_dropout=0.2,
        return_sequences=True,
    )
    assert_matches_keras(ours, theirs, sequences(), training=False)


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("recurrent_dropout", (0.0, 0.4))
def test_seeded_training_dropout_matches_keras(layer, recurrent_dropout):
    """Same seed, same masks: keras_rnnx draws them exactly as Keras does."""
    ours, theirs = twins(
        getattr(keras_rnnx, layer),
        getattr(keras.layers, layer),
        (BATCH, STEPS, FEATURES),
        UNITS,
        dropout=0.5,
        recurrent_dropout=recurrent_dropout,
        seed=42,
        return_sequences=True,
    )
    x = sequences()
    a = to_numpy(ours(x, training=True))
    b = to_numpy(theirs(x, training=True))
    assert_all_close([a], [b], "training outputs")
    assert not (a == to_numpy(ours(x, training=False))).all(), "dropout had no effect"


@pytest.mark.parametrize("layer", LAYERS)
def test_stateful_matches_keras(layer):
    ours, theirs = twins(
        getattr(keras_rnnx, layer),
        getattr(keras.layers, layer),
        (BATCH, STEPS, FEATURES),
        UNITS,
        stateful=True,
        return_state=True,
    )
    ours.reset_state()
    # What Keras's `reset_state` does; Keras 3.10's own fails on JAX 0.6
    # (`zeros_like` of a Variable).
    for state in theirs.states:
        state.assign(np.zeros(state.shape, state.dtype))
    for seed in range(3):
        x = sequences(seed)
        assert_all_close(
            [to_numpy(t) for t in ours(x)], [to_numpy(t) for t in theirs(x)], f"batch {seed}"
        )
    assert_all_close(
        [to_numpy(v) for v in ours.states], [to_numpy(v) for v in theirs.states], "states"
    )
    ours.reset_state()
    assert all((to_numpy(v) == 0).all() for v in ours.states)


@pytest.mark.parametrize("layer", LAYERS)
def test_weights_and_config_match_keras(layer):
    ours, theirs = twins(
        getattr(keras_rnnx, layer),
        getattr(keras.layers, layer),
        (BATCH, STEPS, FEATURES),
        UNITS,
        name="twin",
        kernel_regularizer="l2",
        bias_constraint="non_neg",
    )
    assert [w.path for w in ours.weights] == [w.path for w in theirs.weights]
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    ours_config, theirs_config = ours.get_config(), theirs.get_config()
    assert ours_config.pop("use_cudnn") == "auto"
    if layer == "SimpleRNN" and "seed" not in theirs_config:
        # Keras's SimpleRNN.get_config drops `seed` before Keras 3.16; keras_rnnx keeps it.
        assert ours_config.pop("seed") is None
    assert ours_config == theirs_config
    assert ours.count_params() == theirs.count_params()


@pytest.mark.parametrize("merge_mode", ("concat", "sum", "mul", "ave", None))
@pytest.mark.parametrize("mask_kind", ("none", "right", "holes"))
@pytest.mark.parametrize("return_state", (False, True))
def test_bidirectional_matches_keras(merge_mode, mask_kind, return_state):
    kwargs = {"return_sequences": True, "return_state": return_state, "name": "lstm"}
    theirs = keras.layers.Bidirectional(
        keras.layers.LSTM(UNITS, **kwargs), merge_mode=merge_mode, name="bi"
    )
    ours = keras_rnnx.Bidirectional(
        keras_rnnx.LSTM(UNITS, **kwargs), merge_mode=merge_mode, name="bi"
    )
    x = sequences()
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    assert [w.path for w in ours.weights] == [w.path for w in theirs.weights]
    assert_matches_keras(ours, theirs, x, **mask_kwargs(mask_kind))


@pytest.mark.parametrize("layer", ("GRU", "SimpleRNN"))
def test_bidirectional_last_output_and_initial_state(layer):
    kwargs = {"return_state": True}
    theirs = keras.layers.Bidirectional(getattr(keras.layers, layer)(UNITS, **kwargs))
    ours = keras_rnnx.Bidirectional(getattr(keras_rnnx, layer)(UNITS, **kwargs))
    x = sequences()
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    states = states_for(theirs.forward_layer) + states_for(theirs.backward_layer, seed=4)
    assert_matches_keras(ours, theirs, x, initial_state=states, mask=make_mask("left"))


@pytest.mark.parametrize("mask_kind", ("none", "left"))
@pytest.mark.parametrize("policy", MIXED_TOLERANCE)
@pytest.mark.parametrize("layer", LAYERS)
def test_mixed_precision_matches_keras(layer, policy, mask_kind):
    tolerance = MIXED_TOLERANCE[policy]
    options = {"dtype": policy, "return_sequences": True, "return_state": True}
    ours, theirs = twins(
        getattr(keras_rnnx, layer),
        getattr(keras.layers, layer),
        (BATCH, STEPS, FEATURES),
        UNITS,
        **options,
    )
    x, kwargs = sequences(), mask_kwargs(mask_kind)
    coefficients = coefficients_for(theirs(x, **kwargs))
    out_ours, grad_ours = outputs_and_gradients(ours, x, coefficients, **kwargs)
    out_theirs, grad_theirs = outputs_and_gradients(theirs, x, coefficients, **kwargs)
    assert_all_close(out_ours, out_theirs, f"{policy} outputs", tolerance, tolerance)
    assert_all_close(grad_ours, grad_theirs, f"{policy} gradients", tolerance, tolerance)
    compute = policy.removeprefix("mixed_")
    dtypes = {keras.backend.standardize_dtype(t.dtype) for t in keras.tree.flatten(ours(x))}
    assert dtypes == {compute}  # Keras's policy: the compute dtype out...
    assert {w.dtype for w in ours.weights} == {"float32"}  # ...float32 variables


@pytest.mark.parametrize("policy", MIXED_TOLERANCE)
def test_mixed_precision_fit_stays_finite(policy):
    model = keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            keras_rnnx.Bidirectional(keras_rnnx.LSTM(8, return_sequences=True, dtype=policy)),
            keras_rnnx.GRU(8, dtype=policy),
            keras.layers.Dense(1),
        ]
    )
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, STEPS, FEATURES)).astype("float32")
    history = model.fit(x, rng.normal(size=(16, 1)), batch_size=8, epochs=3, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize("use_cudnn", ("auto", False))
@pytest.mark.parametrize("mask_kind", ("none", "right"))
def test_bidirectional_directions_of_different_state_counts(use_cudnn, mask_kind):
    # One state forwards, two backwards: `initial_state` is split by each
    # direction's count, as Keras splits it.
    def make(module, **options):
        kwargs = {"return_state": True, "return_sequences": True, **options}
        return module.Bidirectional(
            module.SimpleRNN(UNITS, **kwargs),
            backward_layer=module.LSTM(UNITS, go_backwards=True, **kwargs),
            merge_mode="sum",
        )

    theirs, ours = make(keras.layers), make(keras_rnnx, use_cudnn=use_cudnn)
    x = sequences()
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    states = states_for(theirs.forward_layer) + states_for(theirs.backward_layer, seed=4)
    assert len(states) == 3
    assert_matches_keras(ours, theirs, x, initial_state=states, **mask_kwargs(mask_kind))
    with pytest.raises(ValueError, match=r"1 forward state\(s\) followed by 2 backward"):
        ours(x, initial_state=states[:2])
