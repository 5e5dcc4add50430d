"""What SimpleRNN, GRU and LSTM share: a layer made of one built-in cell."""

from __future__ import annotations

import keras

from keras_rnnx.layers.rnn import RNN


class BuiltinRNN(RNN):
    """An `RNN` over one built-in cell, configured by the cell's options.

    Subclasses name `cell_class` and `cell_name` (the weight path segment,
    e.g. `lstm_cell`, as in Keras). Every cell option is accepted as a keyword
    argument, readable as a property, and saved flat in `get_config`, as Keras
    does.
    """

    cell_class: type
    cell_name: str
    input_rank = 3

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for option in cls.cell_class.options + cls.cell_class.extra_options:
            setattr(cls, option, property(lambda self, o=option: getattr(self.cell, o)))

    def __init__(
        self,
        units,
        *,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        use_cudnn="auto",
        **kwargs,
    ):
        options = self.cell_class.options + self.cell_class.extra_options
        cell_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in options}
        kwargs.pop("implementation", None)
        cell = self.cell_class(
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

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        cell_config = self.cell.get_config()
        options = self.cell_class.options + self.cell_class.extra_options
        activity = keras.regularizers.serialize(self.activity_regularizer)
        return {
            **config,
            **{k: cell_config[k] for k in options},
            "activity_regularizer": activity,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
