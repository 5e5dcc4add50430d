"""What masked steps hold never matters: NaN or sentinel padding (as
`Masking(mask_value=...)` leaves it) changes no output, state or gradient, on
every kernel, for every cell and every shape of mask."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_rnnx
from tests.helpers.backend_utils import coefficients_for, on_gpu, outputs_and_gradients
from tests.helpers.custom_cells import MinimalCell
from tests.helpers.oracle import MASK_KINDS, assert_all_close, make_mask, sequences

PADDING = {
    "nan": lambda shape, rng: np.full(shape, np.nan, "float32"),
    "plus_1e6": lambda shape, rng: np.full(shape, 1e6, "float32"),
    "minus_1e6": lambda shape, rng: np.full(shape, -1e6, "float32"),
    "random": lambda shape, rng: (100 * rng.randn(*shape)).astype("float32"),
}

LAYERS = {
    "LSTM": lambda **kw: keras_rnnx.LSTM(3, **kw),
    "GRU": lambda **kw: keras_rnnx.GRU(3, **kw),
    "SimpleRNN": lambda **kw: keras_rnnx.SimpleRNN(3, **kw),
    "custom": lambda **kw: keras_rnnx.RNN(MinimalCell(3), **kw),
    "stacked": lambda **kw: keras_rnnx.RNN([keras_rnnx.GRUCell(4), keras_rnnx.LSTMCell(3)], **kw),
    "Bidirectional": lambda use_cudnn, **kw: keras_rnnx.Bidirectional(
        keras_rnnx.LSTM(3, use_cudnn=use_cudnn, **kw)
    ),
}


# On a JAX CPU the fastest kernel is the reference loop: it runs once.
KERNELS = {"fastest": "auto", "reference": False}
if keras.backend.backend() == "jax" and not on_gpu():
    del KERNELS["fastest"]


# Every layer with every mask, each pair with one padding, turning, so that
# every layer and every mask meets every padding (not every triple).
MASKS = [k for k in MASK_KINDS if k != "none"]
CASES = [
    (layer, kind, list(PADDING)[(i + j) % len(PADDING)])
    for i, layer in enumerate(LAYERS)
    for j, kind in enumerate(MASKS)
]


@pytest.mark.parametrize(("layer_name", "mask_kind", "padding"), CASES)
@pytest.mark.parametrize("use_cudnn", KERNELS.values(), ids=KERNELS.keys())
def test_values_at_masked_steps_change_nothing(layer_name, use_cudnn, mask_kind, padding):
    mask = make_mask(mask_kind)
    clean = np.where(mask[..., None], sequences(), 0.0).astype("float32")
    padded = clean.copy()
    padded[~mask] = PADDING[padding](
        (int((~mask).sum()), clean.shape[-1]), np.random.RandomState(5)
    )
    for go_backwards in (False, True):
        layer = LAYERS[layer_name](
            use_cudnn=use_cudnn,
            return_sequences=True,
            return_state=layer_name != "Bidirectional",
            go_backwards=go_backwards,
        )
        coefficients = coefficients_for(layer(clean, mask=mask))
        out_clean, grad_clean = outputs_and_gradients(layer, clean, coefficients, mask=mask)
        out_padded, grad_padded = outputs_and_gradients(layer, padded, coefficients, mask=mask)
        assert_all_close(out_padded, out_clean, f"outputs, go_backwards={go_backwards}")
        assert_all_close(grad_padded, grad_clean, f"gradients, go_backwards={go_backwards}")


@pytest.mark.parametrize("go_backwards", (False, True))
@pytest.mark.parametrize("mask_kind", MASK_KINDS[1:])
def test_the_sort_free_layout_of_valid_steps_is_the_sorted_one(mask_kind, go_backwards):
    # The layout fused kernels trace for exporters without a sort.
    from keras_rnnx.kernels.sequence import valid_steps_first

    x, mask = sequences(), make_mask(mask_kind)
    sorted_x, counts = valid_steps_first(x, mask, go_backwards=go_backwards)
    free_x, free_counts = valid_steps_first(x, mask, go_backwards=go_backwards, sort=False)
    to_numpy = keras.ops.convert_to_numpy
    assert_all_close([to_numpy(free_x)], [to_numpy(sorted_x)], "steps", atol=0, rtol=0)
    np.testing.assert_array_equal(to_numpy(free_counts), to_numpy(counts))
