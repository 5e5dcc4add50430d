"""The names the type hints use: what a Keras argument may be, in the words of
the domain. Backend tensors have no common type, so `Tensor` is any of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

# A backend tensor (tf.Tensor, torch.Tensor, jax.Array), a NumPy array, or a
# symbolic `keras.KerasTensor`.
Tensor = Any
# A `keras.tree` structure (a tensor, or lists, tuples and dicts of them).
Structure = Any
# A cell: a layer (or object) with `call(inputs, states)` and `state_size`.
Cell = Any
# What `keras.activations.get` (and the other `get`s) take: a name, a config
# dict, a callable; `None` for none.
Activation = str | dict | Callable[..., Any] | None
Initializer = str | dict | Callable[..., Any]
Regularizer = str | dict | Callable[..., Any] | None
Constraint = str | dict | Callable[..., Any] | None
UseCudnn = bool | Literal["auto"]
IntOrTuple = int | tuple[int, ...] | list[int]
Config = dict[str, Any]
