"""What the layers named after their cell share (SimpleRNN, GRU, LSTM, MinGRU,
LRU, ConvLSTM...): an `RNN` whose cell class the layer fixes."""

from __future__ import annotations

from typing import Any

import keras

from keras_rnnx.layers.rnn import RNN
from keras_rnnx.types import Cell, Config, UseCudnn


class FixedCellRNN(RNN):
    """An `RNN` over a cell of the class it names, configured by the cell's options.

    Subclasses name `cell_class` and `cell_name` (the weight path segment,
    e.g. `lstm_cell`, as in Keras). Every cell option is accepted as a keyword
    argument, readable as a property, and saved flat in `get_config`, as Keras
    does (keras-rnnx's own options, such as `recurrent_kernel_dropout`, only
    when set, so that the config of a layer that does not use them is Keras's).
    """

    cell_class: type
    cell_name: str
    input_rank = 3
    # Cell options the layer class fixes (a ConvLSTM2D's rank): not arguments.
    fixed_options: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for option in _options(cls):
            setattr(cls, option, _cell_option(option))

    def __init__(
        self,
        units: int,
        *,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        use_cudnn: UseCudnn = "auto",
        **kwargs: Any,
    ):
        options = _options(self)
        # Keras's `implementation` goes to the cell, which takes it or refuses it.
        cell_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in (*options, "implementation")}
        cell = self.make_cell(
            units,
            name=self.cell_name,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            **cell_kwargs,
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            use_cudnn=use_cudnn,
            **kwargs,
        )

    def make_cell(self, units: int, **kwargs: Any) -> Cell:
        """The layer's cell, from its first argument and cell options."""
        return self.cell_class(units, **kwargs)

    def get_config(self) -> Config:
        config = super().get_config()
        del config["cell"]
        cell_config = self.cell.get_config()
        activity = keras.regularizers.serialize(self.activity_regularizer)
        return {
            **config,
            # The cell saves its own options only when set.
            **{k: cell_config[k] for k in _options(self) if k in cell_config},
            "activity_regularizer": activity,
        }

    @classmethod
    def from_config(cls, config: Config, custom_objects: dict | None = None) -> Any:
        return cls(**config)


def _options(layer):
    """Every option of a layer's built-in cell, Keras's and keras-rnnx's own,
    but those the layer class fixes."""
    cell = layer.cell_class
    options = cell.options + cell.extra_options + tuple(cell.own_options)
    return tuple(o for o in options if o not in layer.fixed_options)


def _cell_option(name: str) -> property:
    """A read-only property: the layer's cell's option `name`, as Keras's layers have."""

    def get(self: FixedCellRNN) -> Any:
        return getattr(self.cell, name)

    return property(get, doc=f"The cell's `{name}`.")
