"""`streaming(model)`: a twin of a model that takes a sequence a chunk at a
time, every recurrent layer's states going in and out as tensors.

The twin shares the model's layers (so its weights); it calls the model on
the chunk inside `keras_rnnx.context.streaming_states`, which hands each
recurrent layer its states and collects its final ones (the layer's
`prepare_call` reads them with its call's context, `finish_call` hands them
back). States as inputs and outputs, not variables, is
what makes the twin export like any model: a served model keeps no state
between requests, and each stream's states are the caller's.
"""

from __future__ import annotations

import keras

from keras_rnnx.context import streaming_states
from keras_rnnx.layers.bidirectional import Bidirectional
from keras_rnnx.layers.keras_semantics import keras_class
from keras_rnnx.layers.rnn import RNN


def streaming(model: keras.Model) -> keras.Model:
    """A twin of `model` that runs a sequence chunk by chunk.

    The twin takes `[chunk, *states]` and returns `[outputs, *states]`:
    `chunk` is `(batch, steps, ...)` with any number of steps (one, for step
    by step inference), `states` every keras-rnnx recurrent layer's states in
    the order of `model.layers` (depth first through nested models), each
    flat as its cell's `state_size`. Feeding the states it returns back with
    the next chunk equals one call of `model` on the whole sequence: a layer
    that returns sequences gives this chunk's steps, one that returns its
    last output gives the last output so far. With a mask, the states are
    carried over masked steps as in one call, but a masked step's output
    (the previous output) is only looked for within its chunk: zeros before
    the chunk's first valid step. The first chunk takes the layers' initial
    states, zeros shaped as `twin.inputs[1:]` for the batch; pass tensors
    throughout (Keras refuses a mix of tensors and NumPy arrays in one
    call). To reset some rows (a new episode), zero their states between
    chunks. The twin shares `model`'s weights and exports like any model
    (`twin.export(...)`, once called, as Keras asks of any model); it is for
    inference (`training` is off), and is not saved itself: save `model` and
    make its twin again after loading.

    Args:
        model: a built Keras model with one sequence input whose recurrent
            layers are keras-rnnx `RNN`, `LSTM`, `GRU` or `SimpleRNN` layers
            (a custom cell in `RNN` too).

    Returns:
        A functional `keras.Model` with inputs `[chunk, *states]` (a state's
        input is named `"{layer}_state_{i}"`) and outputs `[outputs, *states]`.

    Raises:
        ValueError: `model` is not built, has more than one input or none
            that is a sequence, or has no keras-rnnx recurrent layer; one of
            its recurrent layers needs the whole sequence (`Bidirectional`,
            `go_backwards=True`), keeps its states itself (`stateful=True`),
            or is a `keras.layers` recurrent layer, whose states the twin
            could not carry.

    Examples:
        >>> import numpy as np, keras, keras_rnnx
        >>> inputs = keras.Input((None, 2))
        >>> model = keras.Model(inputs, keras_rnnx.GRU(3, return_sequences=True)(inputs))
        >>> x = keras.ops.convert_to_tensor(np.random.rand(1, 6, 2).astype("float32"))
        >>> twin = keras_rnnx.streaming(model)
        >>> [s.name for s in twin.inputs[1:]]
        ['gru_state_0']
        >>> states = [keras.ops.zeros((1, 3))]
        >>> steps = []
        >>> for t in range(6):
        ...     y, *states = twin([x[:, t : t + 1], *states])
        ...     steps.append(keras.ops.convert_to_numpy(y))
        >>> whole = keras.ops.convert_to_numpy(model(x))
        >>> bool(np.allclose(np.concatenate(steps, axis=1), whole, atol=1e-6))
        True
    """
    if not getattr(model, "built", False) or not getattr(model, "inputs", None):
        raise ValueError(
            "streaming(model) needs a built model with known inputs (a functional or "
            f"Sequential model that has been built). Received: model={model!r}"
        )
    if len(model.inputs) != 1 or len(model.inputs[0].shape) < 3:
        raise ValueError(
            "streaming(model) takes a model with one sequence input, (batch, time, "
            f"...). Received inputs shaped {[tuple(i.shape) for i in model.inputs]}"
        )
    layers = _recurrent_layers(model)
    if not layers:
        raise ValueError(
            f"Model {model.name!r} has no keras-rnnx recurrent layer: there is no "
            "state to carry from chunk to chunk."
        )
    spec = model.inputs[0]
    chunk = keras.Input(
        batch_shape=(spec.shape[0], None, *spec.shape[2:]), dtype=spec.dtype, name="chunk"
    )
    state_inputs = [
        keras.Input(
            batch_shape=(spec.shape[0], *s.shape[1:]),
            dtype=s.dtype,
            name=f"{layer.name}_state_{i}",
        )
        for layer in layers
        for i, s in enumerate(_flat_states(layer))
    ]
    outputs = _StreamStep(model)([chunk, *state_inputs])
    return keras.Model([chunk, *state_inputs], outputs, name=f"{model.name}_streaming")


def _flat_states(layer) -> list:
    """A layer's initial states for one row, flat: what the twin carries."""
    return keras.tree.flatten(layer.get_initial_state(1))


def _recurrent_layers(model) -> list:
    """The keras-rnnx recurrent layers of `model`, depth first, checked."""
    found = []
    for layer in model.layers:
        if isinstance(layer, (Bidirectional, keras_class("Bidirectional"))):
            raise ValueError(
                f"Layer {layer.name!r} is Bidirectional: its backward direction needs "
                "the whole sequence, so it cannot run chunk by chunk."
            )
        if isinstance(layer, RNN):
            if layer.go_backwards:
                raise ValueError(
                    f"Layer {layer.name!r} has go_backwards=True: it needs the whole "
                    "sequence, so it cannot run chunk by chunk."
                )
            if layer.stateful:
                raise ValueError(
                    f"Layer {layer.name!r} is stateful: the twin carries states as "
                    "tensors; build the model with stateful=False to stream it."
                )
            found.append(layer)
        elif isinstance(layer, keras_class("RNN")):
            raise ValueError(
                f"Layer {layer.name!r} is a keras.layers.{type(layer).__name__}, whose "
                "states the twin cannot carry: use its keras_rnnx counterpart."
            )
        elif isinstance(layer, keras.Model):
            found += _recurrent_layers(layer)
    return found


class _StreamStep(keras.layers.Layer):
    """Calls `model` on a chunk with the streamed states in, the final ones out."""

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        # Untracked: the layers are the model's, and each carries this many states.
        recurrent = [(layer, len(_flat_states(layer))) for layer in _recurrent_layers(model)]
        object.__setattr__(self, "_recurrent", recurrent)

    def call(self, inputs):
        chunk, *flat = inputs
        streams = {}
        for layer, count in self._recurrent:
            streams[id(layer)], flat = list(flat[:count]), flat[count:]
        with streaming_states(streams) as stream:
            outputs = self.model(chunk, training=False)
        finals = stream.final_states
        missing = [layer.name for layer, _ in self._recurrent if id(layer) not in finals]
        if missing:
            raise ValueError(
                f"The recurrent layers {missing} were not called on the chunk: a "
                "streamed layer must be on the model's path from its input."
            )
        return [outputs, *(s for layer, _ in self._recurrent for s in finals[id(layer)])]
