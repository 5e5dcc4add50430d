"""Shared fixtures for oracle tests: inputs, masks, and twin layers."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.helpers.backend_utils import coefficients_for, on_gpu, outputs_and_gradients

BATCH, STEPS, FEATURES, UNITS = 4, 6, 5, 3


def sequences(seed=0, shape=(BATCH, STEPS, FEATURES)):
    return np.random.RandomState(seed).randn(*shape).astype("float32")


def make_mask(kind, batch=BATCH, steps=STEPS):
    """Masks of each kind the layers must handle: `None` for no mask."""
    if kind == "none":
        return None
    t = np.arange(steps)[None, :]
    lengths = np.array([steps, 4, 1, 3][:batch])[:, None]
    if kind == "right":
        return t < lengths
    if kind == "left":
        return t >= steps - lengths
    if kind == "holes":
        return np.random.RandomState(7).rand(batch, steps) > 0.4
    if kind == "empty_row":
        mask = t < lengths
        mask[1] = False
        return np.broadcast_to(mask, (batch, steps)).copy()
    raise ValueError(kind)


MASK_KINDS = ("none", "right", "left", "holes", "empty_row")

# Layer options a fast kernel must honour, compared with the reference kernel.
KERNEL_OPTIONS = {
    "default": {},
    "sequences_state": {"return_sequences": True, "return_state": True},
    "backwards": {"go_backwards": True, "return_sequences": True, "return_state": True},
    "zero_output": {"zero_output_for_mask": True, "return_sequences": True},
    "zero_output_last": {"zero_output_for_mask": True, "return_state": True},
    "zero_output_backwards": {
        "zero_output_for_mask": True,
        "go_backwards": True,
        "return_sequences": True,
    },
    "no_bias": {"use_bias": False, "return_state": True},
}


def twins(rnnx_cls, keras_cls, input_shape, *args, **kwargs):
    """A keras_rnnx layer and its keras.layers twin, built, with equal weights."""
    theirs = keras_cls(*args, **kwargs)
    ours = rnnx_cls(*args, **kwargs)
    x = np.zeros(input_shape, "float32")
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    return ours, theirs


# On a GPU, cuDNN's and cuBLAS's summation orders differ from the step loop's
# (the first H100 run here missed 1e-5 by rounding in 1-2 elements of 60-120).
TOLERANCE = 1e-4 if on_gpu() else 1e-5


# Mixed precision: the compute dtype's rounding, over a few steps (bfloat16
# keeps 8 significant bits, float16 11), for outputs and gradients alike.
MIXED_TOLERANCE = {"mixed_bfloat16": 5e-2, "mixed_float16": 5e-3}


def assert_all_close(ours, theirs, what, atol=TOLERANCE, rtol=TOLERANCE):
    assert len(ours) == len(theirs), f"{what}: {len(ours)} tensors vs {len(theirs)}"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert (a is None) == (b is None), f"{what}[{i}]: one gradient is missing"
        if a is not None:
            a, b = np.asarray(a, "float32"), np.asarray(b, "float32")
            np.testing.assert_allclose(a, b, atol=atol, rtol=rtol, err_msg=f"{what}[{i}]")


def states_for(layer, seed=3, batch=BATCH):
    """Random initial states shaped as `layer`'s states."""
    rng = np.random.RandomState(seed)
    template = layer.get_initial_state(batch)
    return [
        rng.randn(*tuple(keras.ops.shape(s))).astype("float32")
        for s in keras.tree.flatten(template)
    ]


def fast_and_reference(make, **options):
    """Two built layers from `make(**options)` with equal weights: one free to
    pick a fast kernel, one held to the reference kernel (`use_cudnn=False`)."""
    fast, reference = make(**options), make(use_cudnn=False, **options)
    x = sequences()
    fast(x)
    reference(x)
    reference.set_weights(fast.get_weights())
    return fast, reference


def assert_matches_reference(fast, reference, x, tolerance=TOLERANCE, **call_kwargs):
    """Same outputs, and gradients w.r.t. inputs and weights, as the reference."""
    coefficients = coefficients_for(reference(x, **call_kwargs))
    out_f, grad_f = outputs_and_gradients(fast, x, coefficients, **call_kwargs)
    out_r, grad_r = outputs_and_gradients(reference, x, coefficients, **call_kwargs)
    assert_all_close(out_f, out_r, "outputs", tolerance, tolerance)
    assert_all_close(grad_f, grad_r, "gradients", tolerance, tolerance)


def mask_kwargs(kind, **shape):
    """`{"mask": make_mask(kind)}`, or `{}` for no mask."""
    mask = make_mask(kind, **shape)
    return {} if mask is None else {"mask": mask}


def only_on(backend, what):
    """A test module's skip marker: `what` runs on `backend` only."""
    return pytest.mark.skipif(
        keras.backend.backend() != backend, reason=f"{what} runs on the {backend} backend only"
    )


def stand_in_off_gpu(monkeypatch, kernel_module, seam, stand_in):
    """`kernel_module` as the tests drive it: on a GPU as it is; elsewhere told
    it has one, with its device op (`seam`) replaced by `stand_in`."""
    if not kernel_module.on_gpu():
        monkeypatch.setattr(kernel_module, "on_gpu", lambda: True)
        monkeypatch.setattr(kernel_module, seam, stand_in)
    return kernel_module


def assert_declined(layer, kernel, reason, ran):
    """`layer` last ran the kernel `ran`, and `explain` shows `kernel` passed
    over with a reason that contains `reason`."""
    import keras_rnnx

    selection = keras_rnnx.explain(layer)
    assert selection.kernel_name == ran
    assert any(name == kernel and reason in why for name, why in selection.passed_over)


# What a plugin registers to run its GRU or LSTM variant on the fused kernels.
PLUGIN_SPECS = {
    "LSTM": {"mode": "lstm", "options": {"activation": "tanh", "recurrent_activation": "sigmoid"}},
    "GRU": {
        "mode": "gru",
        "gate_order": (1, 0, 2),  # Keras's (z, r, h) as cuDNN's (r, z, n)
        "bias": "two",
        "options": {"activation": "tanh", "recurrent_activation": "sigmoid", "reset_after": True},
    },
    "SimpleRNN": {"mode": "rnn_tanh", "options": {"activation": "tanh"}},
}


def plugin_cell(layer, with_spec=True):
    """A plugin's cell class: the built-in `layer`'s cell equations and
    weights in a class of its own, with the fused spec a plugin registers
    (`PLUGIN_SPECS`; for this test only)."""
    import keras_rnnx

    base = getattr(keras_rnnx, f"{layer}Cell")
    cell = type(f"Plugin{base.__name__}", (base,), {})
    if with_spec:
        spec = dict(PLUGIN_SPECS[layer])
        spec["options"] = {
            k: keras.activations.get(v) if isinstance(v, str) else v
            for k, v in spec["options"].items()
        }
        keras_rnnx.register_fused_spec(keras_rnnx.FusedSpec(cell, **spec))
    return cell


def assert_plugin_cell_runs(layer, kernel, mask_kind):
    """A plugin's variant of `layer`'s cell, with its fused spec, runs `kernel`
    and matches the reference loop."""
    import keras_rnnx

    cell = plugin_cell(layer)
    make = lambda **kw: keras_rnnx.RNN(cell(UNITS), return_sequences=True, **kw)  # noqa: E731
    fused, reference = fast_and_reference(make, return_state=True)
    assert_matches_reference(fused, reference, sequences(), **mask_kwargs(mask_kind))
    assert keras_rnnx.explain(fused).kernel_name == kernel


def assert_plugin_cell_declined(layer, kernel, ran, with_spec=True):
    """A plugin's variant of `layer`'s cell runs `ran`, `kernel` declining it."""
    import keras_rnnx

    cell = plugin_cell(layer, with_spec)
    rnn = keras_rnnx.RNN(cell(UNITS))
    rnn(sequences())
    assert_declined(rnn, kernel, f"no fused kernel for Plugin{layer}Cell", ran=ran)


# Stacks of fused-family cells, as `RNN(cells)` takes them.
STACKS = {
    "LSTM-LSTM": lambda: [_cell("LSTMCell", 4), _cell("LSTMCell", UNITS)],
    "GRU-LSTM": lambda: [_cell("GRUCell", 4), _cell("LSTMCell", UNITS)],
    "LSTM-GRU": lambda: [_cell("LSTMCell", 4), _cell("GRUCell", UNITS)],
    "nested-SimpleRNN": lambda: [
        _stacked([_cell("GRUCell", 4), _cell("SimpleRNNCell", 4)]),
        _cell("SimpleRNNCell", UNITS, activation="relu"),
    ],
    # Projected LSTMs, where the vendor projects (torch; TF's cuDNN).
    "LSTMP-LSTMP": lambda: [
        _cell("LSTMCell", 4, proj_size=3),
        _cell("LSTMCell", UNITS, proj_size=2),
    ],
}
STACK_OPTIONS = ("default", "sequences_state", "backwards", "zero_output")


def _cell(name, units, **options):
    import keras_rnnx

    return getattr(keras_rnnx, name)(units, **options)


def _stacked(cells):
    import keras_rnnx

    return keras_rnnx.StackedRNNCells(cells)


def assert_stack_runs(stack, kernel, mask_kind, **options):
    """`RNN` over the stack `stack` (a `STACKS` key) runs `kernel` and
    matches the reference loop."""
    import keras_rnnx

    make = lambda **kw: keras_rnnx.RNN(STACKS[stack](), **kw)  # noqa: E731
    fused, reference = fast_and_reference(make, **options)
    assert_matches_reference(fused, reference, sequences(), **mask_kwargs(mask_kind))
    assert keras_rnnx.explain(fused).kernel_name == kernel


def assert_drop_connect_runs(layer, kernel, mask_kind="none", **layer_options):
    """`layer` (a built-in layer's name) with `recurrent_kernel_dropout` runs
    `kernel` in training, with the reference loop's seeded masks."""
    import keras_rnnx

    options = {"recurrent_kernel_dropout": 0.4, "seed": 3, "return_sequences": True}
    options.update(layer_options)
    make = lambda **kw: getattr(keras_rnnx, layer)(UNITS, **options, **kw)  # noqa: E731
    fused, reference = fast_and_reference(make)
    x, kwargs = sequences(), mask_kwargs(mask_kind)
    # Both seed generators draw alike: the same calls, in the same order.
    coefficients = coefficients_for(fused(x, **kwargs))
    reference(x, **kwargs)
    out_f, grad_f = outputs_and_gradients(fused, x, coefficients, training=True, **kwargs)
    out_r, grad_r = outputs_and_gradients(reference, x, coefficients, training=True, **kwargs)
    assert_all_close(out_f, out_r, "outputs in training")
    assert_all_close(grad_f, grad_r, "gradients in training")
    assert keras_rnnx.explain(fused).kernel_name == kernel
    inference = outputs_and_gradients(fused, x, coefficients, **kwargs)[0]
    assert not np.allclose(out_f[0], inference[0])  # the mask applies in training only


def numpy_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def numpy_steps(step, x, states):
    """A NumPy implementation's outputs over `x` (batch, time, ...) and its
    final states: `step(x_t, states) -> (output, states)`."""
    outputs = []
    for t in range(x.shape[1]):
        y, states = step(x[:, t], states)
        outputs.append(y)
    return np.stack(outputs, axis=1), states


def assert_matches_keras(
    ours, theirs, x, expected_outputs=None, keras_reverses=False, **call_kwargs
):
    """`ours` and `theirs` (a Keras layer) give the same outputs and
    gradients on `x`. `keras_reverses`: Keras returns the sequence (the first output) in input
    order where keras_rnnx returns it in processing order; the comparison flips
    it, and its loss coefficients, so outputs and gradients still match."""
    probe = theirs(x, **call_kwargs)
    coefficients = coefficients_for(probe)
    theirs_coefficients = list(coefficients)
    if keras_reverses:
        theirs_coefficients[0] = np.flip(coefficients[0], axis=1)
    out_ours, grad_ours = outputs_and_gradients(ours, x, coefficients, **call_kwargs)
    out_theirs, grad_theirs = outputs_and_gradients(theirs, x, theirs_coefficients, **call_kwargs)
    if keras_reverses:
        out_theirs[0] = np.flip(out_theirs[0], axis=1)
    if expected_outputs is not None:
        out_theirs = expected_outputs(out_theirs)
    assert_all_close(out_ours, out_theirs, "outputs")
    assert_all_close(grad_ours, grad_theirs, "gradients")
