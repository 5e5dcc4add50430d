"""`Bidirectional`: a recurrent layer run forwards and backwards, merged."""

from __future__ import annotations

import copy
from typing import Any

import keras
from keras import ops

from keras_rnnx import context, kernels
from keras_rnnx.cells.base import state_shapes
from keras_rnnx.cells.registry import deserialize_part
from keras_rnnx.kernels.sequence import in_time_order
from keras_rnnx.layers.keras_semantics import rnn_propagates_masks
from keras_rnnx.layers.rnn import RNN
from keras_rnnx.types import Config, Structure, Tensor

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


RECURRENT_ATTRIBUTES = ("go_backwards", "return_sequences", "return_state", "stateful")


def _is_recurrent_layer(layer) -> bool:
    return isinstance(layer, keras.layers.Layer) and all(
        hasattr(layer, a) for a in RECURRENT_ATTRIBUTES
    )


def _state_count(layer) -> int | None:
    """How many state tensors a direction takes: its cell's, or its initial
    states'; `None` for a layer that says neither."""
    cell = getattr(layer, "cell", None)
    if getattr(cell, "state_size", None) is not None:
        return len(keras.tree.flatten(state_shapes(cell)))
    if hasattr(layer, "get_initial_state"):
        return len(keras.tree.flatten(layer.get_initial_state(1)))
    return None


def _merge(mode, y, y_rev):
    if mode == "concat":
        return ops.concatenate([y, y_rev], axis=-1)
    if mode == "sum":
        return y + y_rev
    if mode == "ave":
        return (y + y_rev) / 2
    if mode == "mul":
        return y * y_rev
    return (y, y_rev)


def _copy_layer(layer, owner, name, **overrides):
    config = keras.saving.serialize_keras_object(layer)
    config["config"]["name"] = name
    config["config"].update(overrides)
    return deserialize_part(config, owner)


@keras.saving.register_keras_serializable(package="keras_rnnx")
class Bidirectional(keras.layers.Layer):
    """Runs a recurrent layer in both directions; a drop-in for `keras.layers.Bidirectional`.

    The forward layer is a copy of `layer` named `forward_<name>`; the backward
    one is `backward_layer`, or a copy with `go_backwards` flipped named
    `backward_<name>`. The backward outputs are flipped back to input order
    before merging. As in Keras, masked steps output zeros when sequences are
    returned (`zero_output_for_mask` is set to `return_sequences`).

    Args:
        layer: a recurrent layer (`keras_rnnx.RNN`, `LSTM`, `GRU`, `SimpleRNN`,
            or any layer with `go_backwards`, `return_sequences`,
            `return_state` and `stateful`).
        merge_mode: how outputs are combined: `"concat"` (default), `"sum"`,
            `"mul"`, `"ave"`, or `None` for a list of both.
        weights: optional list of weight arrays, forward layer's first, set
            when the layer is built.
        backward_layer: optional layer for the backward direction; it must
            differ from `layer` in `go_backwards` and agree with it in
            `return_sequences`, `return_state` and `stateful`.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        - `sequences`, `mask`, `training`, `reset`: as for `RNN` (each direction
          starts its segments over where `reset` is true).
        - `initial_state`: forward states followed by backward states.

    Returns:
        The merged output (two outputs with `merge_mode=None`), then the
        forward and backward final states when `return_state`.

    Raises:
        ValueError: `layer` or `backward_layer` not a recurrent layer, an unknown
            `merge_mode`, or layers that disagree as above.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.Bidirectional(keras_rnnx.LSTM(4, return_sequences=True))
        >>> tuple(layer(np.zeros((2, 5, 10), "float32")).shape)
        (2, 5, 8)
    """

    def __init__(
        self,
        layer: keras.layers.Layer,
        merge_mode: str | None = "concat",
        weights: Any = None,
        backward_layer: keras.layers.Layer | None = None,
        **kwargs: Any,
    ):
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                "Please initialize `Bidirectional` layer with a `keras.layers.Layer` "
                f"instance. Received: {layer!r}"
            )
        if backward_layer is not None and not isinstance(backward_layer, keras.layers.Layer):
            raise ValueError(
                "`backward_layer` need to be a `keras.layers.Layer` instance. "
                f"Received: {backward_layer!r}"
            )
        for argument, value in (("layer", layer), ("backward_layer", backward_layer)):
            if value is not None and not _is_recurrent_layer(value):
                raise ValueError(
                    f"Expected `{argument}` to be a recurrent layer (a keras Layer with "
                    f"{', '.join(RECURRENT_ATTRIBUTES)}), such as keras_rnnx.LSTM. "
                    f"Received: {argument}={value!r}"
                )
        if merge_mode not in MERGE_MODES:
            raise ValueError(
                f"Invalid merge mode. Received: {merge_mode}. Merge mode should be one "
                'of {"sum", "mul", "ave", "concat", None}. '
                f"Received: merge_mode={merge_mode!r}"
            )
        super().__init__(**kwargs)
        base = layer.name.removeprefix("forward_")
        self.forward_layer = _copy_layer(layer, self.name, f"forward_{base}")
        if backward_layer is None:
            self.backward_layer = _copy_layer(
                layer,
                self.name,
                f"backward_{layer.name.removeprefix('backward_')}",
                go_backwards=not layer.go_backwards,
            )
        else:
            self.backward_layer = backward_layer
        forward, backward = self.forward_layer, self.backward_layer
        if forward.go_backwards == backward.go_backwards:
            raise ValueError(
                "Forward layer and backward layer should have different `go_backwards` "
                f"value. Received: forward_layer.go_backwards {forward.go_backwards}, "
                f"backward_layer.go_backwards={backward.go_backwards}"
            )
        for attribute in ("stateful", "return_sequences", "return_state"):
            if getattr(forward, attribute) != getattr(backward, attribute):
                raise ValueError(
                    "Forward layer and backward layer are expected to have the same value "
                    f'for attribute "{attribute}", got "{getattr(forward, attribute)}" for '
                    f'forward layer and "{getattr(backward, attribute)}" for backward layer'
                )
        for sublayer in (self.forward_layer, self.backward_layer):
            if hasattr(sublayer, "zero_output_for_mask"):
                sublayer.zero_output_for_mask = sublayer.return_sequences
        self.merge_mode = merge_mode
        self.stateful = layer.stateful
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.supports_masking = rnn_propagates_masks()
        object.__setattr__(self, "_initial_weights", weights)

    def build(self, sequences_shape: Structure, initial_state_shape: Structure = None) -> None:
        # The scope keeps weight paths under this layer when Keras builds it
        # outside its call (as when loading a file); Keras's own loses them.
        with keras.name_scope(self.name, caller=self):
            for sublayer in (self.forward_layer, self.backward_layer):
                if not sublayer.built:
                    sublayer.build(sequences_shape)
        if self._initial_weights:
            half = len(self._initial_weights) // 2
            self.forward_layer.set_weights(self._initial_weights[:half])
            self.backward_layer.set_weights(self._initial_weights[half:])
            object.__setattr__(self, "_initial_weights", None)

    def compute_output_shape(
        self, sequences_shape: Structure, initial_state_shape: Structure = None
    ) -> Structure:
        shape = self.forward_layer.compute_output_shape(sequences_shape)
        states = ()
        if self.return_state:
            shape, states = shape[0], tuple(shape[1:])
        if self.merge_mode == "concat":
            shape = (*shape[:-1], shape[-1] * 2)
        elif self.merge_mode is None:
            shape = (shape, shape)
        if self.return_state:
            outputs = shape if self.merge_mode is None else (shape,)
            return (*outputs, *states, *states)
        return shape

    def compute_mask(self, inputs: Structure, mask: Tensor | None = None) -> Structure:
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.merge_mode is None:
            output_mask = [output_mask, output_mask]
        else:
            output_mask = [output_mask]
        if self.return_state:
            counts = [
                _state_count(layer) or 0 for layer in (self.forward_layer, self.backward_layer)
            ]
            return output_mask + [None] * sum(counts)
        return output_mask if self.merge_mode is None else output_mask[0]

    def call(
        self,
        sequences: Structure,
        initial_state: Structure | None = None,
        mask: Tensor | None = None,
        training: bool | None = None,
        reset: Tensor | None = None,
    ) -> Structure:
        forward_state, backward_state = self._split_initial_state(initial_state)
        kwargs = {"mask": mask, "training": training}
        if reset is not None:  # each direction starts its segments over
            kwargs["reset"] = reset
        if self._runs_sublayers_directly():
            y, y_rev = self._run_directions(sequences, forward_state, backward_state, **kwargs)
        else:
            y = self.forward_layer(sequences, initial_state=forward_state, **kwargs)
            y_rev = self.backward_layer(sequences, initial_state=backward_state, **kwargs)
        states = ()
        if self.return_state:
            states = tuple(y[1:]) + tuple(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            # Flipped whatever the backward layer's `go_backwards`, as Keras does.
            y_rev = in_time_order(y_rev, go_backwards=True)
        # In this layer's compute dtype, as Keras's (the directions have their own).
        y, y_rev = ops.cast(y, self.compute_dtype), ops.cast(y_rev, self.compute_dtype)
        output = _merge(self.merge_mode, y, y_rev)
        if self.return_state:
            outputs = output if self.merge_mode is None else (output,)
            return (*outputs, *states)
        return output

    def _split_initial_state(self, initial_state):
        """Forward and backward states, split by each direction's own count
        of states (Keras halves the list, which is the same when the
        directions match)."""
        if initial_state is None:
            return None, None
        flat = keras.tree.flatten(initial_state)
        counts = [_state_count(layer) for layer in (self.forward_layer, self.backward_layer)]
        if None in counts:  # a direction that does not say: Keras's halves
            expected = "forward states followed by as many backward states"
            counts = [len(flat) // 2] * 2
        else:
            expected = f"{counts[0]} forward state(s) followed by {counts[1]} backward state(s)"
        if len(flat) != sum(counts):
            raise ValueError(
                f"Expected `initial_state` to be a list of {expected}. "
                f"Received: {len(flat)} tensor(s)"
            )
        return flat[: counts[0]], flat[counts[0] :]

    def _runs_sublayers_directly(self):
        # Both directions then reach the kernels together, so one fused call
        # can run them; a sublayer of another dtype policy needs its own
        # `__call__` (autocasting).
        return all(
            isinstance(layer, RNN) and layer.dtype_policy.name == self.dtype_policy.name
            for layer in (self.forward_layer, self.backward_layer)
        )

    def _run_directions(self, sequences, forward_state, backward_state, mask, training, reset=None):
        """Both directions through the layers' kernel seam, in one kernel call
        when a kernel runs both."""
        layers = (self.forward_layer, self.backward_layer)
        call_context = context.read(keras.tree.flatten(sequences)[0])
        calls = [
            layer.prepare_call(sequences, state, mask, training, reset, call_context=call_context)
            for layer, state in zip(layers, (forward_state, backward_state))
        ]
        kernel, selection = kernels.select_bidirectional(*calls)
        if kernel is not None:
            for layer in layers:
                layer.record_selection(selection)
            results = kernel.run_bidirectional(*calls)
        else:
            results = [
                layer.select_kernel(call, selection.passed_over).run(call)
                for layer, call in zip(layers, calls)
            ]
        return [
            layer.finish_call(result, call) for layer, result, call in zip(layers, results, calls)
        ]

    @property
    def states(self) -> Structure | None:
        """Forward then backward state variables, when stateful."""
        if self.forward_layer.states and self.backward_layer.states:
            return tuple(self.forward_layer.states) + tuple(self.backward_layer.states)
        return None

    def reset_state(self) -> None:
        """Reset both directions' states.

        Raises:
            AttributeError: the layer is not stateful.
        """
        if not self.stateful:
            raise AttributeError(f"Layer {self.name!r} is not stateful.")
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    def reset_states(self) -> None:
        """Alias of `reset_state`, as in Keras."""
        self.reset_state()

    def get_config(self) -> Config:
        config = {
            "merge_mode": self.merge_mode,
            "layer": keras.saving.serialize_keras_object(self.forward_layer),
            "backward_layer": keras.saving.serialize_keras_object(self.backward_layer),
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config: Config, custom_objects: dict | None = None) -> Any:
        config = copy.deepcopy(config)
        for part in ("layer", "backward_layer"):
            if config.get(part) is not None:
                config[part] = deserialize_part(config[part], config["name"], custom_objects)
        return cls(**config)
