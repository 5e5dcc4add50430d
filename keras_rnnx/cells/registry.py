"""The cell registry: Keras serialization names and entry-point plugins.

`@register_cell` makes a cell class loadable from a `.keras` file (it registers
it with `keras.saving`) and lists it in `registered_cells()`. Other packages
add cells through the entry-point group `keras_rnnx.cells`; each entry point
names a cell class or a module whose import registers its cells. Plugins load
lazily, the first time the registry is read or a saved RNN is deserialized; a
plugin that fails to load gives a warning that names it and is skipped.
"""

from __future__ import annotations

from typing import Any

import keras

from keras_rnnx.registry import Registry
from keras_rnnx.types import Config

ENTRY_POINT_GROUP = "keras_rnnx.cells"


def _register_entry_point(entry_point, loaded) -> None:
    # A module registers its cells as it is imported; a class is registered
    # under its distribution's name.
    if isinstance(loaded, type) and loaded not in CELLS:
        package = entry_point.dist.name if entry_point.dist else entry_point.name
        register_cell(loaded, package=package)


CELLS: Registry[type] = Registry(ENTRY_POINT_GROUP, _register_entry_point)


def register_cell(cls=None, *, package: str = "keras_rnnx", name: str | None = None) -> Any:
    """Register a cell class for Keras serialization and in the cell registry.

    Use as `@register_cell` or `@register_cell(package="my_pkg")`.

    Args:
        cls: the cell class (when used without parentheses).
        package: the serialization package; `"keras_rnnx"` for this package's
            cells, your own package's name for yours.
        name: the registered name (default: the class name).

    Returns:
        The class itself, registered as `"<package>><name>"`.

    Raises:
        TypeError: `cls` is not a class with a `call` method.

    Examples:
        >>> import keras, keras_rnnx
        >>> @keras_rnnx.register_cell(package="my_cells")
        ... class Doubling(keras.layers.Layer):
        ...     state_size = 3
        ...     def call(self, inputs, states):
        ...         return 2 * states[0], [2 * states[0]]
        >>> "my_cells>Doubling" in keras_rnnx.registered_cells()
        True
    """

    def register(cls):
        if not isinstance(cls, type) or not callable(getattr(cls, "call", None)):
            raise TypeError(
                f"Expected `cls` to be a cell class with a `call` method. Received: cls={cls!r}"
            )
        key = f"{package}>{name or cls.__name__}"
        keras.saving.register_keras_serializable(package=package, name=name)(cls)
        return CELLS.register(cls, key)

    return register if cls is None else register(cls)


def registered_cells() -> dict[str, type]:
    """Every registered cell class, plugins included.

    The first call loads the cells that installed packages declare under the
    `keras_rnnx.cells` entry point.

    Returns:
        A new dict from registered name (`"package>ClassName"`) to class.

    Raises:
        Nothing: a plugin that fails to load is skipped with a `RuntimeWarning`
            that names it.

    Examples:
        >>> import keras_rnnx
        >>> keras_rnnx.registered_cells()["keras_rnnx>LSTMCell"] is keras_rnnx.LSTMCell
        True
    """
    return CELLS.as_dict()


def deserialize_part(config: Config, owner: str, custom_objects: dict | None = None) -> Any:
    """Deserialize a cell or sublayer of the layer named `owner` from its config.

    Plugins are discovered first, so their cells resolve. A part that was
    built when saved is built again, as Keras does, so the config round trips
    whole; it is built in its owner's name scope, so its weight paths
    (`lstm/lstm_cell/kernel`) are those it had when its owner built it.
    """
    CELLS.discover()
    with keras.name_scope(owner):
        return keras.saving.deserialize_keras_object(config, custom_objects=custom_objects)
