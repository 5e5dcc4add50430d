"""Every twin of a `keras.layers` class takes Keras's call forms: the same
parameters in the same positional order with the same defaults (keras-rnnx's
own options after them, keyword-only), so `LSTM(8, "relu")` means what it
means in Keras, and a positional call configures the layer as a keyword one."""

from __future__ import annotations

import inspect

import keras
import pytest

import keras_rnnx

KERAS_TWINS = (
    "SimpleRNN",
    "GRU",
    "LSTM",
    "SimpleRNNCell",
    "GRUCell",
    "LSTMCell",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "RNN",
    "Bidirectional",
    "StackedRNNCells",
)
# Every public name that `keras.layers` has too, so a twin added later is held to this.
TWINS = tuple(name for name in keras_rnnx.__all__ if hasattr(keras.layers, name))


def _keras_parameters(name):
    parameters = inspect.signature(getattr(keras.layers, name)).parameters.values()
    return [p for p in parameters if p.kind is not p.VAR_KEYWORD]


def test_the_twins_are_every_public_name_keras_layers_has():
    assert set(KERAS_TWINS) <= set(TWINS)


@pytest.mark.parametrize("name", TWINS)
def test_signature_starts_with_keras_and_adds_only_keyword_only_options(name):
    theirs = _keras_parameters(name)
    ours = list(inspect.signature(getattr(keras_rnnx, name)).parameters.values())
    shown = [(p.name, p.kind, p.default) for p in ours[: len(theirs)]]
    assert shown == [(p.name, p.kind, p.default) for p in theirs]
    rest = ours[len(theirs) :]
    assert rest and rest[-1].kind is inspect.Parameter.VAR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest[:-1])


# A value other than the default for every positional parameter of any twin,
# each distinct from its neighbours', so an argument taken at the wrong
# position shows in the config.
NON_DEFAULTS = {
    "units": 4,
    "filters": 3,
    "kernel_size": 2,
    "strides": 2,
    "padding": "same",
    "data_format": "channels_first",
    "dilation_rate": 1,
    "activation": "relu",
    "recurrent_activation": "hard_sigmoid",
    "use_bias": False,
    "kernel_initializer": "ones",
    "recurrent_initializer": "zeros",
    "bias_initializer": "random_normal",
    "unit_forget_bias": False,
    "kernel_regularizer": "l1",
    "recurrent_regularizer": "l2",
    "bias_regularizer": "orthogonal_regularizer",
    "activity_regularizer": "l2",
    "kernel_constraint": "non_neg",
    "recurrent_constraint": "unit_norm",
    "bias_constraint": "max_norm",
    "dropout": 0.1,
    "recurrent_dropout": 0.2,
    "seed": 7,
    "return_sequences": True,
    "return_state": True,
    "go_backwards": True,
    "stateful": True,
    "unroll": True,
    "zero_output_for_mask": True,
    "reset_after": False,
    "use_cudnn": False,
    "merge_mode": "sum",
    "weights": None,
}


def _values(name):
    """Per positional parameter of Keras's class: the value to pass."""
    parts = {
        "cell": lambda: keras_rnnx.LSTMCell(3),
        "cells": lambda: [keras_rnnx.GRUCell(3), keras_rnnx.LSTMCell(2)],
        "layer": lambda: keras_rnnx.LSTM(3, return_sequences=True),
        "backward_layer": lambda: keras_rnnx.LSTM(3, return_sequences=True, go_backwards=True),
    }
    values = {}
    for parameter in _keras_parameters(name):
        make = parts.get(parameter.name)
        values[parameter.name] = make() if make else NON_DEFAULTS[parameter.name]
    return values


def _config(layer):
    config = layer.get_config()
    config.pop("name")
    return config


@pytest.mark.parametrize("name", TWINS)
def test_positional_call_configures_the_layer_as_the_keyword_call(name):
    values = _values(name)
    cls = getattr(keras_rnnx, name)
    positional = cls(*values.values(), name="twin")
    keyword = cls(**values, name="twin")
    assert _config(positional) == _config(keyword)
    # And every argument took effect: each one given other than its default
    # (and saved) is not the default in the config.
    parameters = inspect.signature(cls).parameters
    required = {n: v for n, v in values.items() if parameters[n].default is parameters[n].empty}
    defaults = _config(cls(**required, name="twin"))
    config = _config(keyword)
    for n, value in values.items():
        if n not in required and value != parameters[n].default and n in config:
            assert config[n] != defaults[n], n


def test_lstm_takes_its_activation_second_as_in_keras():
    ours, theirs = keras_rnnx.LSTM(8, "relu"), keras.layers.LSTM(8, "relu")
    assert ours.activation is theirs.activation is keras.activations.relu
