"""Several cells run as one: each step feeds one cell's output to the next."""

from __future__ import annotations

from typing import Any

import keras

from keras_rnnx.cells.base import (
    accepts_training,
    cell_initial_state,
    output_shapes,
    state_shapes,
    step_arguments,
)
from keras_rnnx.cells.dropout import CellMasks, own_masks
from keras_rnnx.cells.registry import deserialize_part, register_cell
from keras_rnnx.types import Cell, Config, Structure, Tensor


@register_cell
class StackedRNNCells(keras.layers.Layer):
    """Cells stacked in one time step; a drop-in for `keras.layers.StackedRNNCells`.

    At each step, cell k reads cell k-1's output; the states are one group per
    cell (`state_size == [cell.state_size for cell in cells]`, a cell's own
    tuple of states shown as a list, see the state-size convention in
    `keras_rnnx.cells.base`).

    Args:
        cells: a list of cells (layers with `call(inputs, states)` and
            `state_size`).
        **kwargs: `keras.layers.Layer` arguments.

    Returns:
        Called as `cell(inputs, states, training=False)`: the last cell's
        output and the list of every cell's new states.

    Raises:
        ValueError: a cell without a `call` method or a `state_size`.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> cells = [keras_rnnx.LSTMCell(8), keras_rnnx.GRUCell(4)]
        >>> layer = keras_rnnx.RNN(keras_rnnx.StackedRNNCells(cells))
        >>> tuple(layer(np.zeros((2, 3, 5), "float32")).shape)
        (2, 4)
    """

    def __init__(self, cells: list[Cell], **kwargs: Any):
        super().__init__(**kwargs)
        for cell in cells:
            if not callable(getattr(cell, "call", None)):
                raise ValueError(
                    "All cells must have a `call` method. Received cell without a "
                    f"`call` method: {cell!r}"
                )
            if getattr(cell, "state_size", None) is None:
                raise ValueError(
                    "All cells must have a `state_size` attribute. Received cell "
                    f"without a `state_size`: {cell!r}"
                )
        self.cells = list(cells)

    @property
    def state_size(self) -> Any:
        return [
            list(c.state_size) if isinstance(c.state_size, tuple) else c.state_size
            for c in self.cells
        ]

    @property
    def output_size(self) -> Any:
        last = self.cells[-1]
        if getattr(last, "output_size", None) is not None:
            return last.output_size
        return keras.tree.flatten(state_shapes(last))[0].dims

    def get_initial_state(self, batch_size: int | Tensor = None) -> list[Tensor]:
        """One list of initial states per cell.

        Args:
            batch_size: the batch size.

        Returns:
            A list with each cell's initial states.
        """
        return [cell_initial_state(c, batch_size, self.compute_dtype) for c in self.cells]

    def build(self, input_shape: Structure) -> None:
        batch = keras.tree.flatten(input_shape)[0]
        for cell in self.cells:
            if isinstance(cell, keras.layers.Layer) and not cell.built:
                cell.build(input_shape)
            out = keras.tree.flatten(output_shapes(cell))[0]
            input_shape = (batch, *out.dims)

    def call(
        self,
        inputs: Structure,
        states: Structure,
        training: bool | None = False,
        dropout_masks: list | None = None,
    ) -> Structure:
        new_states = []
        for k, (cell, cell_states) in enumerate(zip(self.cells, states)):
            was_list = isinstance(cell_states, (list, tuple))
            cell_states = list(cell_states) if was_list else [cell_states]
            if dropout_masks is None:  # called on its own: each cell draws its own
                kwargs = {"training": training} if accepts_training(cell) else {}
            else:  # a loop's masks, one entry per cell
                kwargs = step_arguments(cell, training, dropout_masks[k])
            inputs, cell_states = cell(inputs, cell_states, **kwargs)
            if not was_list and isinstance(cell_states, (list, tuple)) and len(cell_states) == 1:
                cell_states = cell_states[0]
            new_states.append(cell_states)
        return inputs, new_states

    def get_config(self) -> Config:
        cells = [keras.saving.serialize_keras_object(c) for c in self.cells]
        return {**super().get_config(), "cells": cells}

    @classmethod
    def from_config(cls, config: Config, custom_objects: dict | None = None) -> Any:
        config = dict(config)
        cells = [deserialize_part(c, config["name"], custom_objects) for c in config.pop("cells")]
        return cls(cells, **config)


# One walk over a stack, by one rule: a stack is a `StackedRNNCells` (a
# foreign stack runs its cells itself, as an opaque cell).


def cells_of(cell: Cell) -> list:
    """The cells `cell` runs one after another at each step: `cell` itself,
    or a stack's cells in order, nested stacks flattened."""
    if isinstance(cell, StackedRNNCells):
        return [inner for c in cell.cells for inner in cells_of(c)]
    return [cell]


def step_masks_argument(cell: Cell, masks: tuple[CellMasks, ...]) -> Any:
    """What `cell.call(..., dropout_masks=...)` takes from the masks a loop
    drew (`RecurrentCall.dropout_masks`): tensors only, as Keras passes
    call arguments: a cell's own `(inputs, recurrent, recurrent_kernel)`
    masks (`None` where it has none), a stack's a list, one per cell."""
    if isinstance(cell, StackedRNNCells):
        return [step_masks_argument(c, masks) for c in cell.cells]
    own = own_masks(masks, cell)
    return (None, None, None) if own is None else tuple(own[1:])
