"""Loading other packages' plugins from Python entry points."""

from __future__ import annotations

import importlib.metadata
import warnings
from collections.abc import Iterator


def load_entry_points(group: str) -> Iterator[tuple[importlib.metadata.EntryPoint, object]]:
    """Yield `(entry point, loaded object)` for each plugin in `group`.

    A plugin that raises while loading is skipped with a `RuntimeWarning` that
    names it: another package's bug must not break every keras_rnnx user.
    """
    for entry_point in importlib.metadata.entry_points(group=group):
        try:
            loaded = entry_point.load()
        except Exception as e:  # noqa: BLE001 - isolate the plugin, and say so
            warnings.warn(
                f"keras_rnnx: could not load plugin {entry_point.name!r} of {group} "
                f"({entry_point.value}): {type(e).__name__}: {e}",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        yield entry_point, loaded
