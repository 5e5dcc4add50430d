"""Dropout masks fixed per sequence, as Keras's `DropoutRNNCell` draws them.

The layer draws each cell's masks once, before the time loop (so the loop is
stateless, which `lax.scan` needs), and hands them to the kernel in its
`RecurrentCall`; a fused kernel applies them itself, and a kernel that runs
`cell.call` step by step hands them to each step (`dropout_masks=`). Only a
foreign cell, Keras's `DropoutRNNCell`, which reads them from its own
attributes, finds them there (`foreign_cells_masks`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Any, NamedTuple

import keras
from keras import ops

from keras_rnnx.types import Tensor


class CellMasks(NamedTuple):
    """One cell's dropout masks for one sequence (`None` where a rate is 0)."""

    cell: Any
    inputs: Any
    recurrent: Any
    recurrent_kernel: Any = None


class DropoutMasks:
    """Fixed-per-sequence dropout masks for a cell, as Keras's DropoutRNNCell.

    A recurrent layer draws each cell's masks once before the time loop
    (`draw_dropout_masks`; so the loop itself is stateless, which `lax.scan`
    needs) and the loop hands them to each step explicitly (the cell's
    `call(..., dropout_masks=...)`). A cell called on its own draws them
    itself, as Keras's cells do: once, kept until `reset_dropout_mask`
    (`get_dropout_mask` and the other methods of Keras's names).
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

    def _create_recurrent_kernel_mask(self):
        ones = ops.ones(self.recurrent_kernel.shape, self.compute_dtype)
        rate = getattr(self, "recurrent_kernel_dropout", 0)
        return keras.random.dropout(ones, rate=rate, seed=self.seed_generator)

    def draw_dropout_masks(self, step_input: Tensor, state: Tensor) -> CellMasks:
        """This cell's masks for one sequence, drawn now (in Keras's order,
        so seeded masks equal Keras's); the cell keeps none.

        Args:
            step_input: one time step of the input, `(batch, features)`.
            state: the previous output state, `(batch, units)`.

        Returns:
            A `CellMasks` (a mask is `None` when its rate is 0).
        """
        rates = (self.dropout, self.recurrent_dropout, getattr(self, "recurrent_kernel_dropout", 0))
        return CellMasks(
            self,
            self._create_dropout_mask(step_input, rates[0]) if rates[0] > 0 else None,
            self._create_dropout_mask(state, rates[1]) if rates[1] > 0 else None,
            self._create_recurrent_kernel_mask() if rates[2] > 0 else None,
        )

    def step_masks(self, step_input: Tensor, state: Tensor, dropout_masks: Any) -> CellMasks:
        """The masks of one step: those a loop drew for the sequence and
        hands the step (`dropout_masks`, as `step_masks_argument` gives them), or, when
        the cell is called on its own (`None`), those it keeps until reset."""
        if dropout_masks is None:
            return CellMasks(
                self,
                self.get_dropout_mask(step_input),
                self.get_recurrent_dropout_mask(state),
                self.get_recurrent_kernel_mask(),
            )
        return CellMasks(self, *dropout_masks)

    def _kept(self, role, draw, rate):
        kept = self.__dict__.setdefault("_kept_masks", {})
        if kept.get(role) is None and rate > 0:
            kept[role] = draw()
        return kept.get(role)

    def get_dropout_mask(self, step_input: Tensor) -> Tensor | None:
        """The input dropout mask of a cell called on its own (drawn on first
        use, kept until `reset_dropout_mask`), as Keras's cells.

        Args:
            step_input: one time step of the input, `(batch, features)`.

        Returns:
            A mask tensor (a list of them, one per gate, when recurrent dropout
            is on), or `None` when `dropout` is 0.
        """
        draw = lambda: self._create_dropout_mask(step_input, self.dropout)  # noqa: E731
        return self._kept("inputs", draw, self.dropout)

    def get_recurrent_dropout_mask(self, state: Tensor) -> Tensor | None:
        """The recurrent dropout mask of a cell called on its own (drawn on
        first use, kept until reset).

        Args:
            state: the previous output state, `(batch, units)`.

        Returns:
            A mask tensor (or a list, one per gate), or `None` when
            `recurrent_dropout` is 0.
        """
        draw = lambda: self._create_dropout_mask(state, self.recurrent_dropout)  # noqa: E731
        return self._kept("recurrent", draw, self.recurrent_dropout)

    def get_recurrent_kernel_mask(self) -> Tensor | None:
        """The DropConnect mask of `recurrent_kernel` of a cell called on its
        own (drawn on first use, kept until reset): one mask for every row
        and step, so fused kernels run it, as AWD-LSTM's weight drop.

        Returns:
            A mask shaped as `recurrent_kernel`, or `None` when
            `recurrent_kernel_dropout` is 0.
        """
        rate = getattr(self, "recurrent_kernel_dropout", 0)
        return self._kept("recurrent_kernel", self._create_recurrent_kernel_mask, rate)

    def reset_dropout_mask(self) -> None:
        """Forget the input dropout mask, so the next sequence draws a new one."""
        self.__dict__.setdefault("_kept_masks", {})["inputs"] = None

    def reset_recurrent_dropout_mask(self) -> None:
        """Forget the recurrent dropout and DropConnect masks."""
        kept = self.__dict__.setdefault("_kept_masks", {})
        kept["recurrent"] = kept["recurrent_kernel"] = None


def own_masks(masks: tuple[CellMasks, ...], cell: Any) -> CellMasks | None:
    """`cell`'s `CellMasks` among the masks a loop drew
    (`RecurrentCall.dropout_masks`), found by identity, or `None`."""
    return next((m for m in masks if m.cell is cell), None)


def accepts_dropout_masks(cell: Any) -> bool:
    """Whether `cell.call` takes the loop's masks (`dropout_masks=`): keras-rnnx's
    cells do; a foreign cell (Keras's `DropoutRNNCell`) reads them from its
    attributes (`foreign_cells_masks`)."""
    return "dropout_masks" in call_parameters(cell)


def call_parameters(cell: Any) -> tuple[str, ...]:
    """The names of `cell.call`'s parameters (none if it has no signature)."""
    call = getattr(cell, "call", None)
    return _parameters(getattr(call, "__func__", call))


@functools.cache
def _parameters(function) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return ()


def per_gate(mask: Tensor | None, gates: int):
    """A dropout mask as one entry per gate (`None` entries when absent)."""
    if mask is None:
        return [None] * gates
    if isinstance(mask, (list, tuple)):
        return list(mask)
    return [mask] * gates


def apply_mask(x: Tensor, mask: Tensor | None):
    return x if mask is None else x * mask


@contextlib.contextmanager
def foreign_cells_masks(masks):
    """Within the block, each foreign cell's (Keras's `DropoutRNNCell`'s)
    `get_dropout_mask` and `get_recurrent_dropout_mask` return the masks drawn
    for this sequence: they read them from their private attributes, the
    only masks keras-rnnx puts on a cell. keras-rnnx's own cells get theirs
    in their call.

    Args:
        masks: `CellMasks`, as `RecurrentCall.dropout_masks`.
    """
    foreign = [m for m in masks if not accepts_dropout_masks(m.cell)]
    for m in foreign:
        # The attributes Keras's `DropoutRNNCell` caches them in.
        m.cell._dropout_mask, m.cell._recurrent_dropout_mask = m.inputs, m.recurrent
    try:
        yield
    finally:
        for m in foreign:
            m.cell._dropout_mask = m.cell._recurrent_dropout_mask = None
