"""What every cell shares: the state-size convention, initial states, and the
built-in cells' base class.

A cell maps `(inputs_t, states_t) -> (output_t, states_t+1)` for one step and
knows nothing about time; `keras_rnnx.RNN` owns the loop.

## The `state_size` / `output_size` convention

`state_size` describes the structure of a cell's states:

* at the top level, an `int` is one state of shape `(batch, n)`, and a list or
  tuple holds one entry per state (as in Keras: `LSTMCell.state_size == [n, n]`);
* below the top level, an `int` is a state of shape `(batch, n)`; a tuple of
  ints (or a `TensorShape`) is **one** state of that shape, e.g. `(20, 30)` is a
  state of shape `(batch, 20, 30)`; a list is a **group** of states, e.g. one
  stacked cell's states; a dict is a group of named states.

So `[10, (20, 30)]` is two states, `(batch, 10)` and `(batch, 20, 30)`, while
`[10, [20, 30]]` is a state `(batch, 10)` and a group of two `(batch, 20)`,
`(batch, 30)` states, which is how `StackedRNNCells` reports its cells' states.
`output_size` follows the below-the-top-level rule everywhere: an int or a
shape tuple is one output, a list or dict is a structure of outputs.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_rnnx.cells.dropout import (
    DropoutMasks,
    accepts_dropout_masks,
    apply_mask,
    call_parameters,
    per_gate,
)
from keras_rnnx.types import Cell, Config, Initializer, Structure, Tensor


def _is_shape(size) -> bool:
    if hasattr(size, "as_list"):  # tf.TensorShape, without importing tensorflow
        return True
    # A `None` dimension is one a cell learns when built (a ConvLSTM's image size).
    return isinstance(size, tuple) and all(isinstance(d, int) or d is None for d in size)


def size_to_shapes(size, top_level: bool = False):
    """Turn a `state_size`/`output_size` into a structure of shape tuples.

    Shapes exclude the batch dimension. Leaves are returned as `Shape` objects so
    that `keras.tree` treats them as leaves, not as tuples to recurse into.
    """
    if isinstance(size, int) and not isinstance(size, bool):
        return Shape((size,))
    if isinstance(size, dict):
        return {k: size_to_shapes(v) for k, v in size.items()}
    if isinstance(size, list) or (top_level and isinstance(size, tuple)):
        return [size_to_shapes(s) for s in size]
    if _is_shape(size):
        dims = size.as_list() if hasattr(size, "as_list") else list(size)
        return Shape(tuple(dims))
    raise TypeError(
        "Expected a state or output size to be an int, a tuple of ints, a "
        f"TensorShape, or a list/dict of those. Received: {size!r}"
    )


class Shape:
    """A per-example shape; a leaf for `keras.tree` (a plain tuple is not)."""

    __slots__ = ("dims",)

    def __init__(self, dims: tuple):
        self.dims = tuple(dims)

    def __repr__(self):
        return f"Shape{self.dims}"


def state_shapes(cell: Cell):
    """The structure of state shapes (batch excluded) that `cell` declares."""
    return size_to_shapes(cell.state_size, top_level=True)


def output_shapes(cell: Cell):
    """The structure of output shapes (batch excluded) of one step of `cell`.

    Cells without `output_size` output their first state, as in Keras.
    """
    size = getattr(cell, "output_size", None)
    if size is None:
        return keras.tree.flatten(state_shapes(cell))[0]
    return size_to_shapes(size)


def zeros_for(shapes, batch_size: int | Tensor, dtype: Any):
    """Zero tensors `(batch_size, *shape)` for a structure of `Shape` leaves."""
    return keras.tree.map_structure(lambda s: ops.zeros((batch_size, *s.dims), dtype=dtype), shapes)


def accepts_training(cell: Cell) -> bool:
    """Whether `cell.call` takes a `training` argument."""
    return "training" in call_parameters(cell)


def step_arguments(cell: Cell, training: bool | None, dropout_masks: Any) -> dict:
    """The keyword arguments of one step of `cell` in a loop: `training`
    and its dropout masks (as `step_masks_argument` gives them), for a cell that takes
    them."""
    arguments: dict[str, Any] = {}
    if accepts_training(cell):
        arguments["training"] = training
    if accepts_dropout_masks(cell):
        arguments["dropout_masks"] = dropout_masks
    return arguments


def cell_initial_state(cell: Cell, batch_size: int | Tensor, dtype: Any):
    """`cell.get_initial_state(batch_size)` if it has one, else zeros in the
    structure of its `state_size` (a bare tensor for an int), as Keras's
    `StackedRNNCells` hands each cell its states."""
    get = getattr(cell, "get_initial_state", None)
    if get is not None:
        return get(batch_size=batch_size)
    return zeros_for(state_shapes(cell), batch_size, dtype)


RATES = ("dropout", "recurrent_dropout", "recurrent_kernel_dropout")


def named_arguments(frame: dict) -> dict:
    """The arguments a constructor was called with, by name, from the
    `locals()` it reads first thing: each named parameter, then the entries of
    its `**kwargs` (`self` and `__class__` left out).

    So a class keeps Keras's explicit signature (every argument by position,
    in Keras's order) and still hands its options on as one dict.
    """
    skip = ("self", "__class__", "kwargs")
    return {**{k: v for k, v in frame.items() if k not in skip}, **frame.get("kwargs", {})}


def _get_option(getter, argument, value):
    """`keras.<kind>.get(value)`, with an error that names the argument."""
    try:
        return getter(value)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"Could not interpret `{argument}`. Expected a known name, a "
            f"callable or a config dict. Received: {argument}={value!r}"
        ) from e


# Option name -> (getter, serializer); derived from the argument's suffix.
_OPTION_KINDS = {
    "activation": (keras.activations.get, keras.activations.serialize),
    "initializer": (keras.initializers.get, keras.initializers.serialize),
    "regularizer": (keras.regularizers.get, keras.regularizers.serialize),
    "constraint": (keras.constraints.get, keras.constraints.serialize),
}


def _option_kind(name: str):
    return _OPTION_KINDS.get(name.rsplit("_", 1)[-1])


class Options:
    """A cell's options, set by name and saved in its config.

    Subclasses list Keras's options in `options` and `extra_options`, and
    their own in `own_options` (name: default), which are saved only when
    set; an option's kind (activation, initializer, regularizer, constraint)
    follows from its name's suffix.
    """

    options: tuple[str, ...] = ()
    extra_options: tuple[str, ...] = ()
    own_options: dict = {}

    def _set_option(self, name, value):
        setattr(self, name, _get_option(_option_kind(name)[0], name, value))

    def options_config(self) -> dict:
        """The options as `get_config` saves them."""
        config = {}
        for name in self.options + self.extra_options:
            value = getattr(self, name)
            kind = _option_kind(name)
            config[name] = kind[1](value) if kind else value
        for name, default in self.own_options.items():
            if getattr(self, name) != default:
                config[name] = getattr(self, name)
        return config


class ZeroStates:
    """Zero initial states, in the structure of the cell's `state_size`."""

    compute_dtype: Any  # the host cell's, a `keras.layers.Layer`

    def get_initial_state(self, batch_size: int | Tensor = None) -> list[Tensor]:
        """Zero states, one tensor `(batch_size, *shape)` per state.

        Args:
            batch_size: the batch size (an int or a scalar tensor).

        Returns:
            A list of zero tensors in the cell's compute dtype.
        """
        states = zeros_for(state_shapes(self), batch_size, self.compute_dtype)
        return states if isinstance(states, list) else [states]


class BuiltinCell(keras.layers.Layer, DropoutMasks, Options, ZeroStates):
    """Shared constructor, weights and config of SimpleRNN, GRU and LSTM cells.

    Subclasses set `gates` (weight blocks per unit) and list their extra
    options in `extra_options`; `get_config` is derived from the options.
    """

    gates = 1
    # Unseeded initializers and seed generators each draw a seed from Python's
    # global `random` when made; made in Keras's order, a seeded program
    # (`keras.utils.set_random_seed`) gets Keras's weights and dropout masks.
    seed_generator_first = False
    options: tuple[str, ...] = (
        "units",
        "activation",
        "use_bias",
        "kernel_initializer",
        "recurrent_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "recurrent_regularizer",
        "bias_regularizer",
        "kernel_constraint",
        "recurrent_constraint",
        "bias_constraint",
        "dropout",
        "recurrent_dropout",
        "seed",
    )
    # keras-rnnx's own options: saved only when set, so that a layer that does
    # not use them has Keras's config.
    own_options = {"recurrent_kernel_dropout": 0.0}

    def __init__(self, units: int, **kwargs: Any):
        # `kwargs`: the subclass's options by name (from its Keras-ordered
        # signature, through `named_arguments`) and `keras.layers.Layer`'s.
        names = self.options + self.extra_options + tuple(self.own_options)
        options = {name: kwargs.pop(name) for name in list(kwargs) if name in names}
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise ValueError(
                "Received an invalid value for argument `units`, expected a positive "
                f"integer, got {units!r}."
            )
        for name in RATES:
            rate = options.get(name, 0.0)
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                raise ValueError(
                    f"Expected `{name}` to be a float in [0, 1]. Received: {name}={rate!r}"
                )
        kwargs.pop("implementation", None)  # Keras's; the kernel choice is ours
        super().__init__(**kwargs)
        self.units = units
        seed = options.get("seed")
        if self.seed_generator_first:
            self.seed_generator = keras.random.SeedGenerator(seed=seed)
        for name in names:
            if name in options:
                self._store_option(name, options[name])
            elif name in self.own_options:
                setattr(self, name, self.own_options[name])
        if self.recurrent_dropout:
            # As Keras's `implementation=1`: one mask per gate.
            self.dropout_mask_count = self.gates if self.gates > 1 else None
        if not self.seed_generator_first:
            self.seed_generator = keras.random.SeedGenerator(seed=seed)

    def _store_option(self, name, value):
        if _option_kind(name):
            self._set_option(name, value)
        else:
            setattr(self, name, float(value) if name in RATES else value)

    @property
    def output_size(self) -> Any:
        return self.units

    def _add_weight(self, role, shape, initializer=None):
        """`kernel`, `recurrent_kernel` or `bias`, with that role's options."""
        prefix = role.split("_")[0] if role != "bias" else "bias"
        return self.add_weight(
            shape=shape,
            name=role,
            initializer=initializer or getattr(self, f"{prefix}_initializer"),
            regularizer=getattr(self, f"{prefix}_regularizer"),
            constraint=getattr(self, f"{prefix}_constraint"),
        )

    def build(self, input_shape: Structure) -> None:
        input_dim = input_shape[-1]
        # kernel (I, gates*H), recurrent_kernel (O, gates*H), bias (gates*H,);
        # O, the output's size, is H but for a projected LSTM.
        self.kernel = self._add_weight("kernel", (input_dim, self.gates * self.units))
        self.recurrent_kernel = self._add_weight(
            "recurrent_kernel", (self.output_size, self.gates * self.units)
        )
        self.bias = (
            self._add_weight("bias", self.bias_shape(), self.bias_initializer_fn())
            if self.use_bias
            else None
        )

    def bias_shape(self) -> tuple[int, ...]:
        return (self.gates * self.units,)

    def bias_initializer_fn(self) -> Initializer:
        return self.bias_initializer

    def masks(
        self,
        inputs: Structure,
        h_tm1: Tensor,
        training: bool | None,
        dropout_masks: Any = None,
    ) -> tuple[list, list, Tensor]:
        """This step's dropout masks, one entry per gate (or `None`s), and
        `recurrent_kernel` times its DropConnect mask, in training; from the
        loop's `dropout_masks` (see `DropoutMasks.step_masks`)."""
        if not training:
            return [None] * self.gates, [None] * self.gates, self.recurrent_kernel
        masks = self.step_masks(inputs, h_tm1, dropout_masks)
        return (
            per_gate(masks.inputs, self.gates),
            per_gate(masks.recurrent, self.gates),
            apply_mask(self.recurrent_kernel, masks.recurrent_kernel),
        )

    def get_config(self) -> Config:
        return {**super().get_config(), **self.options_config()}
