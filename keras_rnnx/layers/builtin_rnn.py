"""What SimpleRNN, GRU and LSTM share: a layer made of one built-in cell."""

from __future__ import annotations

import keras

from keras_rnnx.layers.rnn import RNN


class BuiltinRNN(RNN):
    """An `RNN` over one built-in cell, configured by the cell's options.

    Subclasses name `cell_class` and `cell_name` (the weight path segment,
    e.g. `lstm_cell`, as in Keras). Every cell option is accepted as a keyword
    argument, readable as a property, and saved flat in `get_config`, as Keras
    does (keras-rnnx's own options, such as `recurrent_kernel_dropout`, only
    when set, so that the config of a layer that does not use them is Keras's).
    """

    cell_class: type
    cell_name: str
    input_rank = 3

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for option in _options(cls.cell_class):
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
        options = _options(self.cell_class)
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
        activity = keras.regularizers.serialize(self.activity_regularizer)
        return {
            **config,
            # The cell saves its own options only when set.
            **{k: cell_config[k] for k in _options(self.cell_class) if k in cell_config},
            "activity_regularizer": activity,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _options(cell_class):
    """Every option of a built-in cell, Keras's and keras-rnnx's own."""
    return cell_class.options + cell_class.extra_options + tuple(cell_class.own_options)
