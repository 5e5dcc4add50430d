"""torch's recurrent modules in and out: `from_torch` and `to_torch`.

`torch.nn.LSTM`, `GRU` and `RNN` compute the equations of the built-in cells'
fused specs (`kernels/specs.py`), and their parameters are those specs'
vendor layout, so both directions go through the spec: `to_torch` writes
`FusedSpec.vendor_weights`, `from_torch` its inverse,
`FusedSpec.set_vendor_weights`. Either works on every Keras backend; torch is
needed only to make or read the module.
"""

from __future__ import annotations

from typing import Any

import keras

from keras_rnnx.cells.gru import GRUCell
from keras_rnnx.cells.lstm import LSTMCell
from keras_rnnx.cells.simple_rnn import SimpleRNNCell
from keras_rnnx.cells.stacked import cells_of
from keras_rnnx.kernels.specs import find_spec, spec_of
from keras_rnnx.layers.bidirectional import Bidirectional
from keras_rnnx.layers.gru import GRU
from keras_rnnx.layers.lstm import LSTM
from keras_rnnx.layers.rnn import RNN
from keras_rnnx.layers.simple_rnn import SimpleRNN

# torch's `mode` -> (cell, layer, cell options); and the vendor mode back.
_FROM_TORCH = {
    "LSTM": (LSTMCell, LSTM, {}),
    "GRU": (GRUCell, GRU, {}),
    "RNN_TANH": (SimpleRNNCell, SimpleRNN, {"activation": "tanh"}),
    "RNN_RELU": (SimpleRNNCell, SimpleRNN, {"activation": "relu"}),
}
_TO_TORCH = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN", "rnn_relu": "RNN"}
# A torch layer's parameters, in the vendor layout's order (`weight_hr` only
# when it projects).
_PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


def from_torch(module: Any, **layer_options: Any) -> keras.layers.Layer:
    """A keras-rnnx layer with the weights of a `torch.nn.LSTM`, `GRU` or `RNN`.

    One layer gives `LSTM`, `GRU` or `SimpleRNN`; `num_layers > 1` an `RNN`
    over stacked cells; `bidirectional=True` a `Bidirectional` (concatenated
    outputs, as torch's), and with several layers a `keras.Sequential` of
    them, as torch feeds each layer both directions' outputs. The layer takes
    `(batch, time, features)` whatever the module's `batch_first`, and
    returns the sequence unless told otherwise; torch's dropout between
    layers becomes the next cell's input `dropout` (active in training only,
    with one mask per sequence, as Keras draws it).

    Args:
        module: a `torch.nn.LSTM`, `torch.nn.GRU` or `torch.nn.RNN` (any
            `num_layers`, `bias`, `batch_first`, `bidirectional`, an RNN's
            `nonlinearity`, an LSTM's `proj_size`).
        **layer_options: the layer's options (`return_sequences`, default
            True; `return_state`, `name`, ...).

    Returns:
        The built layer (or `keras.Sequential`), its weights the module's.

    Raises:
        TypeError: `module` is not one of torch's recurrent modules.
        ValueError: `return_state` for several bidirectional layers, which a
            `Sequential` cannot return.

    Examples:
        >>> import keras, numpy as np, torch, keras_rnnx
        >>> module = torch.nn.LSTM(3, 8, num_layers=2, batch_first=True)
        >>> layer = keras_rnnx.from_torch(module)
        >>> x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
        >>> expected = module(torch.tensor(x))[0].detach().numpy()
        >>> got = keras.ops.convert_to_numpy(layer(x))
        >>> bool(np.allclose(got, expected, atol=1e-5))
        True
    """
    mode = getattr(module, "mode", None)
    if mode not in _FROM_TORCH:
        raise TypeError(
            "Expected `module` to be a torch.nn.LSTM, torch.nn.GRU or torch.nn.RNN. "
            f"Received: module={module!r}"
        )
    cell_class, layer_class, defaults = _FROM_TORCH[mode]
    options: dict[str, Any] = {**defaults, "use_bias": bool(module.bias)}
    if getattr(module, "proj_size", 0):
        options["proj_size"] = module.proj_size
    layer_options = {"return_sequences": True, **layer_options}
    units, depth = module.hidden_size, module.num_layers

    def dropout(k):  # torch's dropout after layer k - 1
        return module.dropout if k else 0.0

    def recurrent(layers, **kwargs):
        if len(layers) > 1:
            return RNN([cell_class(units, dropout=dropout(k), **options) for k in layers], **kwargs)
        return layer_class(units, dropout=dropout(layers[0]), **options, **kwargs)

    if not module.bidirectional:
        layer = recurrent(range(depth), **layer_options)
        layer.build((None, None, module.input_size))
        _set_cells(layer, module, range(depth), "")
        return layer
    if depth > 1 and layer_options.get("return_state"):
        raise ValueError(
            "Expected `return_state` to be False for a bidirectional module with several "
            "layers (a keras.Sequential of Bidirectional layers returns no states). "
            f"Received: num_layers={depth}"
        )
    layers = [
        Bidirectional(
            recurrent([k], **(layer_options if k == depth - 1 else {"return_sequences": True})),
            merge_mode="concat",
        )
        for k in range(depth)
    ]
    for k, layer in enumerate(layers):
        width = module.input_size if k == 0 else 2 * (options.get("proj_size") or units)
        layer.build((None, None, width))
        _set_cells(layer.forward_layer, module, [k], "")
        _set_cells(layer.backward_layer, module, [k], "_reverse")
    if depth == 1:
        return layers[0]
    return keras.Sequential([keras.Input((None, module.input_size)), *layers])


def _set_cells(layer, module, layers, suffix):
    """Set `layer`'s cells, one per torch layer in `layers`, from the
    module's parameters of that direction (`suffix`: `""` or `"_reverse"`)."""
    for cell, k in zip(cells_of(layer.cell), layers):
        names = _PARAMS if getattr(module, "proj_size", 0) else _PARAMS[:4]
        weights = [_param(module, f"{name}_l{k}{suffix}") for name in names]
        spec_of(cell).set_vendor_weights(cell, weights)


def _param(module, name):
    value = getattr(module, name, None)
    return None if value is None else value.detach().cpu().float().numpy()


def to_torch(layer: keras.layers.Layer) -> Any:
    """A `torch.nn.LSTM`, `GRU` or `RNN` with the weights of a keras-rnnx layer.

    The module computes what the layer computes, for `batch_first` inputs:
    its outputs are the layer's sequence (and, for a `Bidirectional`, both
    directions concatenated). An LSTM or SimpleRNN's one bias goes to
    `bias_ih`, with `bias_hh` zeros.

    Args:
        layer: a built `LSTM`, `GRU` (`reset_after=True`) or `SimpleRNN`
            (tanh or relu); an `RNN` over one of their cells, or over a stack
            of cells of one kind, size and bias; or a `Bidirectional`
            (`merge_mode="concat"`) of one layer. Cells with their default
            activations, as the fused kernels run them.

    Returns:
        The `torch.nn` module (float32, `batch_first=True`, on the CPU).

    Raises:
        ValueError: the layer is not built, or torch has no module that
            computes it (the reason named: a cell without torch's equations,
            cells that differ, `go_backwards`, another `merge_mode`, a
            `Bidirectional` over stacked cells).

    Examples:
        >>> import keras, numpy as np, torch, keras_rnnx
        >>> layer = keras_rnnx.GRU(8, return_sequences=True)
        >>> x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
        >>> expected = keras.ops.convert_to_numpy(layer(x))
        >>> module = keras_rnnx.to_torch(layer)
        >>> got = module(torch.tensor(x))[0].detach().numpy()
        >>> bool(np.allclose(got, expected, atol=1e-5))
        True
    """
    import torch

    directions = [layer]
    if isinstance(layer, Bidirectional):
        if layer.merge_mode != "concat":
            raise ValueError(
                "Expected a Bidirectional with merge_mode='concat', as torch concatenates "
                f"the directions. Received: merge_mode={layer.merge_mode!r}"
            )
        directions = [layer.forward_layer, layer.backward_layer]
    elif getattr(layer, "go_backwards", False):
        raise ValueError("Expected go_backwards=False: a torch module runs forward only.")
    if not layer.built:
        raise ValueError(f"Expected a built layer (call it once). Received: {layer.name!r}")
    cells = [cells_of(d.cell) for d in directions]
    if len(directions) == 2 and len(cells[0]) > 1:
        raise ValueError(
            "Expected a Bidirectional of one cell per direction: Keras runs each direction's "
            "stack on its own, where torch feeds each layer both directions' outputs."
        )
    first = cells[0][0]
    layout = _torch_layout(first)
    for cell in (c for direction in cells for c in direction):
        if _torch_layout(cell) != layout:
            raise ValueError(
                "Expected every cell to be of one kind, size and bias, as a torch module's "
                f"layers are. Received: {type(first).__name__} {layout} and "
                f"{type(cell).__name__} {_torch_layout(cell)}"
            )
    mode, units, use_bias, projection = layout
    options = {"proj_size": projection} if projection else {}
    if mode.startswith("rnn"):
        options["nonlinearity"] = mode[len("rnn_") :]
    module = getattr(torch.nn, _TO_TORCH[mode])(
        int(first.kernel.shape[0]),
        units,
        num_layers=len(cells[0]),
        bias=use_bias,
        batch_first=True,
        bidirectional=len(directions) == 2,
        **options,
    )
    with torch.no_grad():
        for suffix, direction in zip(("", "_reverse"), cells):
            for k, cell in enumerate(direction):
                weights = spec_of(cell).vendor_weights(cell, "float32")
                for name, weight in zip(_PARAMS, weights):
                    if weight is not None:
                        value = torch.tensor(keras.ops.convert_to_numpy(weight))
                        getattr(module, f"{name}_l{k}{suffix}").copy_(value)
    return module


def _torch_layout(cell):
    """`(mode, units, use_bias, proj_size)`: what a torch module's layers
    share, or a ValueError naming why torch has no module for `cell`."""
    spec, reason = find_spec(cell, tuple(_TO_TORCH))
    if reason is not None:
        raise ValueError(f"torch has no module for this cell: {reason}.")
    projection = int(getattr(cell, spec.projection).shape[1]) if spec.projects(cell) else 0
    return spec.mode, cell.units, getattr(cell, "bias", None) is not None, projection
