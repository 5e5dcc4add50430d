"""The package's layering, read from its source: layers above kernels above
cells above the registry and the call context, no import cycle, backend
imports only in the backend modules, and masks on cells only for foreign ones."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_rnnx"
# Lowest first; a module may import its own layer's modules and lower ones.
LAYERS = (
    ("base", ("types", "plugins", "registry", "context")),
    ("cells", ("cells",)),
    ("kernels", ("kernels",)),
    ("layers", ("layers", "ops")),
    ("top", ("explain", "interop", "streaming", "twins", "patch", "convert", "__init__")),
)
BACKEND_MODULES = {
    f"keras_rnnx.kernels.backends.{m}" for m in ("torch", "torch_segments", "jax", "tensorflow")
}


def _name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _rank(module: str) -> int:
    first = "__init__" if module == "keras_rnnx" else module.split(".")[1]
    ranks = [i for i, (_, names) in enumerate(LAYERS) if first in names]
    assert ranks, f"{module} is in none of the layers: add it to LAYERS"
    return ranks[0]


def _imports(module: str) -> list[tuple[str, bool]]:
    """`(imported module, at the top)` for each import in `module`."""
    tree = ast.parse(MODULES[module].read_text())
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from keras_rnnx import kernels` imports the submodule.
            names = [f"{node.module}.{a.name}" for a in node.names]
            names = [n if n in MODULES else node.module for n in names]
        found += [(n, id(node) in top) for n in names]
    return found


def _edges():
    return {
        module: {n for n, _ in _imports(module) if n in MODULES and n != module}
        for module in MODULES
    }


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{module} ({LAYERS[_rank(module)][0]}) imports {name} ({LAYERS[_rank(name)][0]})"
        for module, names in _edges().items()
        for name in names
        if _rank(name) > _rank(module)
    ]
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_cycle():
    edges = _edges()
    # A package's modules import their siblings; the package's `__init__`
    # imports them in turn, which Python resolves (the submodule is loaded
    # by then): those edges are not cycles of the package's design.
    for module in edges:
        edges[module] = {n for n in edges[module] if not module.startswith(f"{n}.")}
    state: dict[str, str] = {}
    cycle: list[str] = []

    def visit(module, path):
        state[module] = "open"
        for name in sorted(edges[module]):
            if state.get(name) == "open":
                cycle.extend(path[path.index(name) :] + [name])
                return True
            if name not in state and visit(name, [*path, name]):
                return True
        state[module] = "done"
        return False

    for module in sorted(edges):
        if module not in state and visit(module, [module]):
            break
    assert not cycle, " -> ".join(cycle)


@pytest.mark.parametrize("framework", ["torch", "jax", "tensorflow"])
def test_only_the_backend_modules_import_a_backend_when_imported(framework):
    importers = {
        module
        for module in MODULES
        for name, at_top in _imports(module)
        if at_top and name.split(".")[0] == framework
    }
    assert importers <= BACKEND_MODULES, sorted(importers - BACKEND_MODULES)
    assert importers, f"no backend module imports {framework}"


def test_masks_are_put_on_foreign_cells_only():
    # Keras's `DropoutRNNCell` reads its masks from these attributes; the
    # methods of Keras's names (`get_dropout_mask`) are a drop-in's API.
    private = re.compile(r"(?<![A-Za-z])_(recurrent_)?dropout_mask\b")
    found = {
        module
        for module, path in MODULES.items()
        for line in path.read_text().splitlines()
        if private.search(line)
    }
    assert found == {"keras_rnnx.cells.dropout"}
    source = MODULES["keras_rnnx.cells.dropout"].read_text()
    shim = source[source.index("def foreign_cells_masks") :]
    assert all(
        private.search(line) is None for line in source[: len(source) - len(shim)].splitlines()
    )


def test_no_module_reads_keras_through_a_name_a_patch_replaces():
    # `keras.layers.LSTM` may be keras-rnnx's own LSTM (`keras_rnnx.patch()`,
    # or a user's `setattr`): Keras's classes come from `keras_class`.
    from keras_rnnx.twins import TWINS

    found = [
        f"{module}: keras.layers.{node.attr}"
        for module, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and node.attr in TWINS
        and ast.unparse(node.value) == "keras.layers"
    ]
    assert not found, found


# What a backend says of a trace: asked in `context.py` only, read by every
# kernel from its call's context.
TRACE_QUERIES = (
    "is_compiling",
    "is_exporting",
    "is_tracing",
    "is_in_onnx_export",
    "executing_eagerly",
    "inside_function",
    "Tracer",
)


def _nodes_outside(owner: str, matches) -> list[str]:
    """`module: node` for each node that `matches` in any module but `owner`."""
    return [
        f"{module}: {ast.unparse(node)}"
        for module, path in MODULES.items()
        if module != owner
        for node in ast.walk(ast.parse(path.read_text()))
        if matches(node)
    ]


def test_only_the_context_asks_a_backend_about_its_trace():
    found = _nodes_outside(
        "keras_rnnx.context",
        lambda node: isinstance(node, ast.Attribute) and node.attr in TRACE_QUERIES,
    )
    assert not found, found
    source = MODULES["keras_rnnx.context"].read_text()
    assert all(query in source for query in TRACE_QUERIES if query != "inside_function")


def test_the_sequence_is_reversed_by_its_rules_only():
    # `go_backwards`'s flip is a rule of the sequence (`kernels/sequence.py`),
    # whose kernels and layers all take it from there.
    found = _nodes_outside(
        "keras_rnnx.kernels.sequence",
        lambda node: (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("flip", "reverse")
        ),
    )
    assert not found, found


def test_one_function_writes_what_a_stream_collects():
    writes = [
        module
        for module, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.Assign, ast.AugAssign))
        for target in getattr(node, "targets", [getattr(node, "target", None)])
        if "final_states[" in ast.unparse(target)
    ]
    assert writes == ["keras_rnnx.context"]
    source = MODULES["keras_rnnx.context"].read_text()
    writer = source[source.index("\ndef record_final_states") + 1 :]
    assert "final_states[" in writer[: writer.index("\ndef ")]


def test_one_walk_over_a_stacks_cells():
    # `cells/stacked.py` walks a stack (`cells_of`, `step_masks_argument`) by one rule.
    found = _nodes_outside(
        "keras_rnnx.cells.stacked",
        lambda node: (
            isinstance(node, ast.Attribute)
            and node.attr == "cells"
            and ast.unparse(node.value) != "keras_rnnx"
        ),
    )
    assert not found, found
