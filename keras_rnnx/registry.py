"""`Registry`: what cells, kernels and fused specs are registered in.

One collection per kind of thing, in registration order (or ranked by a
key), with the plugins that installed packages declare under an entry-point
group loaded once, the first time it is read. `scoped()` gives tests (and
anyone trying a plugin) a registry that is put back as it was afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from keras_rnnx.plugins import load_entry_points

T = TypeVar("T")


class Registry(Generic[T]):
    """Registered things of one kind, and the entry points that add more.

    Args:
        entry_point_group: the entry-point group whose plugins `discover`
            loads (`None`: plugins register by being imported).
        on_entry_point: `(entry_point, loaded) -> None`, registers what one
            entry point loaded (its class, object or module).
        rank: a sort key; the items are kept sorted by it (stably), e.g.
            kernels by their priority. `None` keeps registration order.

    Returns:
        A registry, empty until things are registered.

    Raises:
        Nothing.

    Examples:
        >>> from keras_rnnx.registry import Registry
        >>> colours = Registry(rank=len)
        >>> _ = colours.register("green", key="g")
        >>> _ = colours.register("red", key="r")
        >>> colours.items()
        ['red', 'green']
        >>> with colours.scoped():
        ...     _ = colours.register("blue")
        ...     len(colours.items())
        3
        >>> colours.as_dict()
        {'r': 'red', 'g': 'green'}
    """

    def __init__(
        self,
        entry_point_group: str | None = None,
        on_entry_point: Callable[[Any, Any], None] | None = None,
        rank: Callable[[T], Any] | None = None,
    ):
        self.entry_point_group = entry_point_group
        self._on_entry_point = on_entry_point
        self._rank = rank
        self._entries: list[tuple[Any, T]] = []
        self._discovered = entry_point_group is None

    def register(self, item: T, key: Any = None) -> T:
        """Add `item` (under `key`, replacing an item registered under the
        same key); returns it."""
        if key is not None:
            self._entries = [(k, i) for k, i in self._entries if k != key]
        self._entries.append((key, item))
        if self._rank is not None:
            rank = self._rank
            self._entries.sort(key=lambda entry: rank(entry[1]))
        return item

    def discover(self, force: bool = False) -> None:
        """Load the entry points' plugins (once; again with `force`). A
        plugin that fails to load is skipped with a `RuntimeWarning`."""
        if self._discovered and not force:
            return
        self._discovered = True
        if self.entry_point_group is None or self._on_entry_point is None:
            return
        for entry_point, loaded in load_entry_points(self.entry_point_group):
            self._on_entry_point(entry_point, loaded)

    def items(self) -> list[T]:
        """Every registered item, plugins included, in order."""
        self.discover()
        return [item for _, item in self._entries]

    def as_dict(self) -> dict[Any, T]:
        """The items registered under a key, by key, plugins included."""
        self.discover()
        return {key: item for key, item in self._entries if key is not None}

    def __contains__(self, item: object) -> bool:
        return any(i is item or i == item for _, i in self._entries)

    @contextlib.contextmanager
    def scoped(self) -> Iterator[Registry[T]]:
        """Within the block, register freely: afterwards the registry holds
        what it held before (and is discovered as it was)."""
        entries, discovered = list(self._entries), self._discovered
        try:
            yield self
        finally:
            self._entries, self._discovered = entries, discovered
