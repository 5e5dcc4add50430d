"""Layers of matrix-state cells: GLA, mLSTM, Mamba2, DeltaNet and GatedDeltaNet."""

from __future__ import annotations

from typing import Any

import keras

from keras_rnnx.cells.delta import DeltaNetCell, GatedDeltaNetCell
from keras_rnnx.cells.gla import GLACell
from keras_rnnx.cells.mamba2 import Mamba2Cell
from keras_rnnx.cells.mlstm import mLSTMCell
from keras_rnnx.layers.fixed_cell_rnn import FixedCellRNN

_DOC = """`RNN({cell}(heads, {sizes}, ...))`: {what}.

    Trains and runs a whole sequence with the chunkwise kernel (on every
    backend; `keras_rnnx.explain` says so) and runs step by step like any
    cell (streaming, `stateful`, resets). The equations are on `{cell}`.

    Args:
        heads: positive int, the number of heads.
        {args}
        **kwargs: every `{cell}` option ({options}), every `RNN` option
            (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, `zero_output_for_mask`, `use_cudnn`), and
            `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Returns:
        Called on `(batch, time, features)`: the output `(batch, {out})` (or
        `(batch, time, {out})` with `return_sequences`), then the states
        when `return_state` ({states}).

    Raises:
        ValueError: as `{cell}` and `RNN`.

    Examples:
        >>> import numpy as np, keras_rnnx
        >>> layer = keras_rnnx.{layer}(2, 8, return_sequences=True)
        >>> tuple(layer(np.zeros((2, 1000, 4), "float32")).shape)
        (2, 1000, 16)
    """

_KEY_VALUE = """key_dim: positive int, the size of queries and keys per head.
        value_dim: positive int, the size of values per head (default
            `key_dim`)."""


@keras.saving.register_keras_serializable(package="keras_rnnx")
class GLA(FixedCellRNN):
    __doc__ = _DOC.format(
        cell="GLACell",
        sizes="key_dim, value_dim",
        what="gated linear attention, Yang et al. (2024)",
        args=_KEY_VALUE,
        options="`gate_rank`, `gate_normalizer`, `output_gate`, `normalize`, "
        "`kernel_initializer`, `chunk_size`",
        out="heads value_dim",
        states="`S (batch, heads, key_dim, value_dim)`",
        layer="GLA",
    )
    cell_class = GLACell
    cell_name = "gla_cell"

    def __init__(self, heads: int, key_dim: int, value_dim: int | None = None, **kwargs: Any):
        super().__init__(heads, key_dim=key_dim, value_dim=value_dim, **kwargs)


@keras.saving.register_keras_serializable(package="keras_rnnx")
class mLSTM(FixedCellRNN):  # noqa: N801  (the paper's name)
    __doc__ = _DOC.format(
        cell="mLSTMCell",
        sizes="key_dim, value_dim",
        what="the mLSTM of xLSTM, Beck et al. (2024)",
        args=_KEY_VALUE,
        options="`forget_gate`, `output_gate`, `normalize`, `kernel_initializer`, `chunk_size`",
        out="heads value_dim",
        states="`C (batch, heads, key_dim, value_dim)`, `n (batch, heads, key_dim)`, "
        "`m (batch, heads)`",
        layer="mLSTM",
    )
    cell_class = mLSTMCell
    cell_name = "mlstm_cell"

    def __init__(self, heads: int, key_dim: int, value_dim: int | None = None, **kwargs: Any):
        super().__init__(heads, key_dim=key_dim, value_dim=value_dim, **kwargs)


@keras.saving.register_keras_serializable(package="keras_rnnx")
class Mamba2(FixedCellRNN):
    __doc__ = _DOC.format(
        cell="Mamba2Cell",
        sizes="head_dim",
        what="Mamba-2's selective state space (SSD), Dao & Gu (2024)",
        args="head_dim: positive int, each head's width.",
        options="`state_dim`, `gate`, `dt_min`, `dt_max`, `kernel_initializer`, `chunk_size`",
        out="heads head_dim",
        states="`h (batch, heads, state_dim, head_dim)`",
        layer="Mamba2",
    )
    cell_class = Mamba2Cell
    cell_name = "mamba2_cell"

    def __init__(self, heads: int, head_dim: int, **kwargs: Any):
        super().__init__(heads, head_dim=head_dim, **kwargs)


@keras.saving.register_keras_serializable(package="keras_rnnx")
class DeltaNet(FixedCellRNN):
    __doc__ = _DOC.format(
        cell="DeltaNetCell",
        sizes="key_dim, value_dim",
        what="DeltaNet's delta rule, Schlag et al. (2021), Yang et al. (2024)",
        args=_KEY_VALUE,
        options="`output_gate`, `normalize`, `kernel_initializer`, `chunk_size`",
        out="heads value_dim",
        states="`S (batch, heads, key_dim, value_dim)`",
        layer="DeltaNet",
    )
    cell_class = DeltaNetCell
    cell_name = "delta_net_cell"

    def __init__(self, heads: int, key_dim: int, value_dim: int | None = None, **kwargs: Any):
        super().__init__(heads, key_dim=key_dim, value_dim=value_dim, **kwargs)


@keras.saving.register_keras_serializable(package="keras_rnnx")
class GatedDeltaNet(FixedCellRNN):
    __doc__ = _DOC.format(
        cell="GatedDeltaNetCell",
        sizes="key_dim, value_dim",
        what="Gated DeltaNet, Yang et al. (2025), the linear attention of Qwen3.5",
        args=_KEY_VALUE,
        options="`output_gate`, `normalize`, `dt_min`, `dt_max`, `kernel_initializer`, "
        "`chunk_size`",
        out="heads value_dim",
        states="`S (batch, heads, key_dim, value_dim)`",
        layer="GatedDeltaNet",
    )
    cell_class = GatedDeltaNetCell
    cell_name = "gated_delta_net_cell"

    def __init__(self, heads: int, key_dim: int, value_dim: int | None = None, **kwargs: Any):
        super().__init__(heads, key_dim=key_dim, value_dim=value_dim, **kwargs)
