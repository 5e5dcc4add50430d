"""`convert`: a model's recurrent layers swapped for their twins, either way,
weights and all."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import keras

from keras_rnnx.layers.keras_semantics import is_keras_own, keras_class
from keras_rnnx.twins import TWINS

TARGETS = ("keras_rnnx", "keras")


def convert(
    model: keras.Model,
    to: str = "keras_rnnx",
    *,
    strict: bool = False,
    custom_objects: dict | None = None,
) -> keras.Model:
    """A copy of `model` with every recurrent layer that has a twin replaced by it.

    `to="keras_rnnx"` replaces `keras.layers`' `RNN`, `SimpleRNN`, `GRU`,
    `LSTM`, `Bidirectional`, their cells, `StackedRNNCells` and
    `ConvLSTM1D/2D/3D` with keras-rnnx's, so a model built by someone else's
    code, or loaded from a `.keras` file saved with `keras.layers`, runs
    keras-rnnx's kernels. `to="keras"` does the reverse: the copy saves with
    Keras's class names only and loads where keras-rnnx is not installed.
    Sequential and functional models are converted, nested models and
    wrappers (`Bidirectional`, `TimeDistributed`) included; the weights are
    carried over, and the copy is compiled as `model` was (with a fresh
    optimizer: its state, such as Adam's moments, is not carried over).

    What stays as it is: layers with no twin on the other side (keras-rnnx's
    cells beyond Keras, such as `LRU`; an option Keras does not have, such as
    `proj_size`; a custom cell from another package, which keeps running in
    whichever `RNN` hosts it). Each is named in a warning, or an error with
    `strict=True`.

    Args:
        model: a Sequential or functional `keras.Model`.
        to: `"keras_rnnx"` or `"keras"`: whose layers the copy has.
        strict: raise, rather than warn, when a layer stays as it is.
        custom_objects: the custom classes of `model` that are not registered
            with `keras.saving.register_keras_serializable`, by name (as for
            `keras.saving.load_model`).

    Returns:
        A new model (`model` is left unchanged) that predicts what `model`
        predicts, to float32 round-off.

    Raises:
        ValueError: `to` is not one of the two targets; `model` is not a
            Sequential or functional model (a subclassed model builds its
            layers in its own code: build it under `keras_rnnx.patch()`); a
            layer stays as it is and `strict=True`.

    Examples:
        >>> import numpy as np, keras, keras_rnnx
        >>> model = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4)])
        >>> fast = keras_rnnx.convert(model)
        >>> type(fast.layers[0]).__module__
        'keras_rnnx.layers.lstm'
        >>> x = np.ones((2, 5, 3), "float32")
        >>> bool(np.allclose(fast.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5))
        True
        >>> type(keras_rnnx.convert(fast, to="keras").layers[0]).__module__
        'keras.src.layers.rnn.lstm'
    """
    if to not in TARGETS:
        raise ValueError(f"Expected `to` to be one of {TARGETS}. Received: to={to!r}")
    if not isinstance(model, keras.Model):
        raise ValueError(f"Expected a keras.Model. Received: model={model!r}")
    config = keras.saving.serialize_keras_object(model)
    if "layers" not in config["config"]:
        raise ValueError(
            f"Model {model.name!r} is a subclassed model ({type(model).__name__}): its "
            "layers are built by its own code, which `convert` cannot see. Build it "
            "under `keras_rnnx.patch()` to have keras-rnnx's layers."
        )
    kept: list[str] = []
    swap = _to_keras_rnnx if to == "keras_rnnx" else _to_keras
    config = swap(config, kept, where=model.name)
    if kept:
        message = (
            f"These layers of model {model.name!r} have no twin in {to!r} and stay as "
            "they are:\n" + "\n".join(f"  - {line}" for line in kept)
        )
        if strict:
            raise ValueError(message)
        warnings.warn(message, stacklevel=2)
    converted = keras.saving.deserialize_keras_object(
        config, custom_objects=custom_objects, safe_mode=False
    )
    _copy_weights(model, converted)
    return converted


def _children(config: dict):
    """The serialized objects directly inside a serialized object's config."""
    for value in config.get("config", {}).values():
        yield from (
            item for item in (value if isinstance(value, list) else [value]) if _is_object(item)
        )


def _map_children(config: dict, fn) -> dict:
    inner = {}
    for key, value in config.get("config", {}).items():
        if isinstance(value, list):
            value = [fn(v) if _is_object(v) else v for v in value]
        elif _is_object(value):
            value = fn(value)
        inner[key] = value
    return {**config, "config": inner} if "config" in config else config


def _is_object(value) -> bool:
    return isinstance(value, dict) and "class_name" in value and "config" in value


def _path(where: str, config: dict) -> str:
    name = config.get("config", {}).get("name")
    return f"{where}/{name}" if isinstance(name, str) else where


def _is_ours(config: dict) -> bool:
    return str(config.get("registered_name") or "").startswith("keras_rnnx>")


def _to_keras_rnnx(config: dict, kept: list[str], where: str) -> dict:
    """Keras's twinned classes become keras-rnnx's; foreign objects inside a
    recurrent layer (a custom cell) are named in `kept`."""
    here = _path(where, config)
    config = _map_children(config, lambda child: _to_keras_rnnx(child, kept, here))
    name = config["class_name"]
    if config.get("module") == "keras.layers" and name in TWINS:
        twin = TWINS[name]
        for child in _children(config):
            if not _is_ours(child) and child.get("registered_name"):
                kept.append(
                    f"{_path(here, child)}: {child['registered_name']} (runs in "
                    f"keras_rnnx.{name}, as it ran in keras.layers.{name})"
                )
        return {
            **config,
            "module": twin.__module__,
            "registered_name": keras.saving.get_registered_name(twin),
        }
    return config


def _to_keras(config: dict, kept: list[str], where: str) -> dict:
    """keras-rnnx's twins become Keras's, where the whole layer (its cells and
    wrapped layers included) has a Keras equivalent; else it is named in `kept`."""
    here = _path(where, config)
    if not _is_ours(config):
        return _map_children(config, lambda child: _to_keras(child, kept, here))
    reason = _why_not_keras(config)
    if reason is not None:
        kept.append(f"{here}: keras_rnnx.{config['class_name']} ({reason})")
        return config
    own = _own_options(TWINS[config["class_name"]])
    inner = {
        key: value
        for key, value in config["config"].items()
        if not (key in own and value == own[key])
    }
    converted = {**config, "config": inner, "module": "keras.layers", "registered_name": None}
    return _map_children(converted, lambda child: _to_keras(child, kept, here))


def _why_not_keras(config: dict) -> str | None:
    """Why a serialized keras-rnnx object has no Keras equivalent, or `None`."""
    name = config["class_name"]
    if name not in TWINS:
        return "Keras has no such layer"
    own = _own_options(TWINS[name])
    extra = [
        f"{key}={value!r}"
        for key, value in config["config"].items()
        if key in own and value != own[key]
    ]
    if extra:
        return f"Keras's {name} has no {', '.join(extra)}"
    for child in _children(config):
        if _is_ours(child):
            reason = _why_not_keras(child)
            if reason is not None:
                return f"its {child['class_name']}: {reason}"
    return None


def _own_options(twin: type) -> dict[str, Any]:
    """keras-rnnx's options of `twin` that Keras's class does not take, with
    their defaults."""
    accepted = set()
    for cls in keras_class(twin.__name__).__mro__:
        if is_keras_own(cls) and "__init__" in vars(cls):
            accepted |= set(inspect.signature(vars(cls)["__init__"]).parameters)
    return {
        name: p.default
        for name, p in inspect.signature(twin).parameters.items()
        if p.kind is p.KEYWORD_ONLY and name not in accepted
    }


def _copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Every weight of `source` into `target`, in order; twins make the same
    weights in the same order, which is checked by name and shape."""
    theirs, ours = source.weights, target.weights
    pairs = list(zip(theirs, ours))
    mismatched = [
        (a.path, b.path)
        for a, b in pairs
        if tuple(a.shape) != tuple(b.shape) or a.path.split("/")[-1] != b.path.split("/")[-1]
    ]
    if len(theirs) != len(ours) or mismatched:
        raise ValueError(
            f"The converted model's weights do not line up with model {source.name!r}'s "
            f"({len(theirs)} and {len(ours)} weights; first mismatches: {mismatched[:3]}). "
            "Please report this as a keras-rnnx bug."
        )
    for a, b in pairs:
        b.assign(keras.ops.convert_to_numpy(a.value))
