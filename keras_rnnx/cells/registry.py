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

from keras_rnnx.plugins import load_entry_points

ENTRY_POINT_GROUP = "keras_rnnx.cells"

_CELLS: dict[str, type] = {}
_discovered = False


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
        _CELLS[key] = cls
        return cls

    return register if cls is None else register(cls)


def discover(force: bool = False) -> None:
    """Load the cells that installed packages declare under `keras_rnnx.cells`.

    Runs once per process (again with `force=True`). A plugin that raises while
    loading is skipped with a `RuntimeWarning` naming the entry point.
    """
    global _discovered
    if _discovered and not force:
        return
    _discovered = True
    for entry_point, loaded in load_entry_points(ENTRY_POINT_GROUP):
        if isinstance(loaded, type) and loaded not in _CELLS.values():
            package = entry_point.dist.name if entry_point.dist else entry_point.name
            register_cell(loaded, package=package)


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
    discover()
    return dict(_CELLS)
