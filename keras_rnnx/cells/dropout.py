"""Dropout masks fixed per sequence, as Keras's `DropoutRNNCell` draws them.

The layer draws each cell's masks once, before the time loop (so the loop is
stateless, which `lax.scan` needs), and hands them to the kernel in its
`RecurrentCall`; a fused kernel applies the input mask itself, and a kernel
that runs `cell.call` step by step puts them on the cells for the loop with
`masks_on_cells`, where the cells' own `get_dropout_mask` finds them.
"""

from __future__ import annotations

import contextlib
from typing import Any, NamedTuple

import keras
from keras import ops

from keras_rnnx.types import Tensor


class DropoutMasks:
    """Fixed-per-sequence dropout masks for a cell, as Keras's DropoutRNNCell.

    The RNN layer draws the masks through these methods once before the time
    loop (so the loop itself is stateless, which `lax.scan` needs) and resets
    them at once; a kernel running the cell step by step puts them back for
    its loop (`masks_on_cells`). The method names match Keras's, so Keras's
    `RNN` can drive these cells too.
    A cell using this mixin has `dropout`, `recurrent_dropout` and
    `seed_generator`; `dropout_mask_count` (gates with their own masks) is set
    when recurrent dropout is on, as Keras does, so seeded masks match Keras's.
    """

    # What the host cell (a `keras.layers.Layer`) provides.
    dropout: float
    recurrent_dropout: float
    recurrent_kernel: Any
    compute_dtype: Any
    seed_generator: Any

    dropout_mask_count: int | None = None

    def _create_dropout_mask(self, step_input, rate):
        ones = ops.ones_like(step_input)
        if self.dropout_mask_count is None:
            return keras.random.dropout(ones, rate=rate, seed=self.seed_generator)
        return [
            keras.random.dropout(ones, rate=rate, seed=self.seed_generator)
            for _ in range(self.dropout_mask_count)
        ]

    def get_dropout_mask(self, step_input: Tensor) -> Tensor | None:
        """The input dropout mask for this sequence (created on first use).

        Args:
            step_input: one time step of the input, `(batch, features)`.

        Returns:
            A mask tensor (a list of them, one per gate, when recurrent dropout
            is on), or `None` when `dropout` is 0.
        """
        if getattr(self, "_dropout_mask", None) is None and self.dropout > 0:
            self._dropout_mask = self._create_dropout_mask(step_input, self.dropout)
        return getattr(self, "_dropout_mask", None)

    def get_recurrent_dropout_mask(self, state: Tensor) -> Tensor | None:
        """The recurrent dropout mask for this sequence (created on first use).

        Args:
            state: the previous output state, `(batch, units)`.

        Returns:
            A mask tensor (or a list, one per gate), or `None` when
            `recurrent_dropout` is 0.
        """
        if getattr(self, "_recurrent_dropout_mask", None) is None and self.recurrent_dropout > 0:
            self._recurrent_dropout_mask = self._create_dropout_mask(state, self.recurrent_dropout)
        return getattr(self, "_recurrent_dropout_mask", None)

    def get_recurrent_kernel_mask(self) -> Tensor | None:
        """The DropConnect mask of `recurrent_kernel` for this sequence
        (created on first use): one mask for every row and step, so fused
        kernels run it, as AWD-LSTM's weight drop.

        Returns:
            A mask shaped as `recurrent_kernel`, or `None` when
            `recurrent_kernel_dropout` is 0.
        """
        rate = getattr(self, "recurrent_kernel_dropout", 0)
        if getattr(self, "_recurrent_kernel_mask", None) is None and rate > 0:
            ones = ops.ones(self.recurrent_kernel.shape, self.compute_dtype)
            self._recurrent_kernel_mask = keras.random.dropout(
                ones, rate=rate, seed=self.seed_generator
            )
        return getattr(self, "_recurrent_kernel_mask", None)

    def reset_dropout_mask(self) -> None:
        """Forget the input dropout mask, so the next sequence draws a new one."""
        self._dropout_mask = None

    def reset_recurrent_dropout_mask(self) -> None:
        """Forget the recurrent dropout and DropConnect masks."""
        self._recurrent_dropout_mask = None
        self._recurrent_kernel_mask = None


def per_gate(mask: Tensor | None, gates: int):
    """A dropout mask as one entry per gate (`None` entries when absent)."""
    if mask is None:
        return [None] * gates
    if isinstance(mask, (list, tuple)):
        return list(mask)
    return [mask] * gates


def apply_mask(x: Tensor, mask: Tensor | None):
    return x if mask is None else x * mask


class CellMasks(NamedTuple):
    """One cell's dropout masks for one sequence (`None` where a rate is 0)."""

    cell: Any
    inputs: Any
    recurrent: Any
    recurrent_kernel: Any = None


@contextlib.contextmanager
def masks_on_cells(masks):
    """Within the block, each cell's `get_dropout_mask`,
    `get_recurrent_dropout_mask` and `get_recurrent_kernel_mask` return the
    masks drawn for this sequence.

    Args:
        masks: `CellMasks`, as `RecurrentCall.dropout_masks`.
    """
    for m in masks:
        # The attributes Keras's `DropoutRNNCell` and `DropoutMasks` cache them in.
        m.cell._dropout_mask, m.cell._recurrent_dropout_mask = m.inputs, m.recurrent
        m.cell._recurrent_kernel_mask = m.recurrent_kernel
    try:
        yield
    finally:
        for m in masks:
            m.cell._dropout_mask = m.cell._recurrent_dropout_mask = None
            m.cell._recurrent_kernel_mask = None
