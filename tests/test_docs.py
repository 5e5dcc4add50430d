"""The documentation: every Python code block and docstring example runs, and
the API reference shows every public name.

Code blocks on a page run in order in one namespace, as a reader would run
them. A block that shows a whole file (`--8<-- "path"`, the site's snippets)
runs that file on its own, as its package's import would, and what it
registers is dropped afterwards so the installed package's classes stay
registered. A block whose first line is `# needs a GPU`
runs only on a GPU; `# needs examples/plugin installed`, only where it is;
the Deploying page's `# needs ...` lines name a backend or export runtime.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib
import importlib.util
import inspect
import pathlib
import re

import keras
import pytest

import keras_rnnx
from keras_rnnx.cells.registry import CELLS
from keras_rnnx.kernels.registry import KERNELS
from keras_rnnx.kernels.specs import SPECS
from tests.helpers.backend_utils import on_gpu

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
SNIPPET = re.compile(r'^--8<-- "(.+)"$', re.M)
BACKEND = keras.backend.backend()
ONNX_EXPORTER = {"tensorflow": "tf2onnx", "jax": "jax2onnx", "torch": "onnxscript"}[BACKEND]


def _installed(*modules):
    return all(importlib.util.find_spec(m) for m in modules)


NEEDS = {
    "# needs a GPU": on_gpu,
    "# needs examples/plugin installed": lambda: _installed("rnnx_demo_plugin"),
    "# needs onnxruntime": lambda: _installed("onnxruntime", ONNX_EXPORTER),
    "# needs OpenVINO, on TensorFlow or torch": lambda: BACKEND != "jax" and _installed("openvino"),
    "# needs TensorFlow, on TensorFlow or JAX": lambda: (
        BACKEND != "torch" and _installed("tensorflow")
    ),
    "# needs the TensorFlow backend": lambda: BACKEND == "tensorflow",
    "# needs the torch backend": lambda: BACKEND == "torch",
}
# The README's blocks run too: its "Use" example is a new user's first run.
PAGES = [ROOT / "README.md"] + sorted(p for p in DOCS.rglob("*.md") if FENCE.search(p.read_text()))


def code_blocks(page):
    """`(first line number, code, included file or None)` of each Python block."""
    text = page.read_text()
    blocks = []
    for m in FENCE.finditer(text):
        included = SNIPPET.fullmatch(m[1].strip())
        if included:
            path = ROOT / included[1]
            blocks.append((0, path.read_text(), path))
        else:
            blocks.append((text.count("\n", 0, m.start(1)), m[1], None))
    return blocks


@contextlib.contextmanager
def registries_as_they_were():
    """Within the block, cells, kernels, fused specs and Keras's custom
    objects may be registered; afterwards they are as before."""
    custom_objects = dict(keras.saving.get_custom_objects())
    try:
        with CELLS.scoped(), KERNELS.scoped(), SPECS.scoped():
            yield
    finally:
        keras.saving.get_custom_objects().clear()
        keras.saving.get_custom_objects().update(custom_objects)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Examples register cells and kernels and write files: keep them to this test."""
    keras_rnnx.registered_cells(), keras_rnnx.registered_kernels()  # plugins loaded first
    monkeypatch.chdir(tmp_path)
    with registries_as_they_were():
        yield


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_blocks_run(page):
    namespace = {"__name__": f"docs.{page.stem}"}
    skipped = []
    for line, code, included in code_blocks(page):
        need = code.split("\n", 1)[0]
        if need in NEEDS and not NEEDS[need]():
            skipped.append(f"line {line + 1} ({need[2:]})")
            continue
        if included:
            with registries_as_they_were():
                exec(compile(code, str(included), "exec"), {"__name__": included.stem})
            continue
        # Padded so that a traceback points at the line in the page.
        exec(compile("\n" * line + code, str(page), "exec"), namespace)
    if skipped:
        pytest.skip(f"{page.name}: skipped the blocks at {', '.join(skipped)}")


def public_objects():
    """Every public name, a public module's (`keras_rnnx.ops`) by its own
    `__all__` (`ops.mlstm`)."""
    objects = []
    for name in keras_rnnx.__all__:
        obj = getattr(keras_rnnx, name)
        if inspect.ismodule(obj):
            objects += [(f"{name}.{n}", getattr(obj, n)) for n in obj.__all__]
        else:
            objects.append((name, obj))
    return objects


@pytest.mark.parametrize("name, obj", public_objects(), ids=[n for n, _ in public_objects()])
def test_docstring_examples_run(name, obj):
    tests = doctest.DocTestFinder().find(obj, f"keras_rnnx.{name}", globs={})
    examples = [t for t in tests if t.examples]
    assert examples, f"keras_rnnx.{name} has no example in its docstring"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in examples:
        runner.run(test)
    assert runner.failures == 0, f"keras_rnnx.{name}: a docstring example failed (see above)"


def documented_sections(obj):
    """The docstring of `obj`, with its public methods' for a protocol class."""
    doc = inspect.getdoc(obj) or ""
    if inspect.isclass(obj) and getattr(obj, "_is_protocol", False):
        doc += "".join(inspect.getdoc(m) or "" for n, m in vars(obj).items() if callable(m))
    return doc


@pytest.mark.parametrize("name, obj", public_objects(), ids=[n for n, _ in public_objects()])
def test_public_docstrings_have_args_returns_raises_and_example(name, obj):
    doc = documented_sections(obj)
    takes_arguments = bool(inspect.signature(obj).parameters) or inspect.isclass(obj)
    expected = ["Returns:", "Raises:", "Examples:"] + (["Args:"] if takes_arguments else [])
    missing = [section for section in expected if section not in doc]
    assert not missing, f"keras_rnnx.{name}'s docstring lacks {missing}"


def test_api_reference_shows_every_public_name():
    shown = {}
    for page in (DOCS / "api").glob("*.md"):
        for path in re.findall(r"^::: (keras_rnnx[\w.]*)$", page.read_text(), re.M):
            module, _, name = path.rpartition(".")
            # A public module's names by the module's name (`ops.mlstm`).
            within = module.removeprefix("keras_rnnx").lstrip(".")
            public_module = inspect.ismodule(getattr(keras_rnnx, within, None))
            key = f"{within}.{name}" if within and public_module else name
            shown[key] = getattr(importlib.import_module(module), name)
    public = dict(public_objects())
    assert set(shown) == set(public)
    for name, obj in shown.items():
        assert obj is public[name], f"the reference shows another {name}"


def test_every_page_is_in_the_navigation():
    nav = set(re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages == nav


def test_readme_lists_the_pages_of_the_site():
    nav = set(re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M))
    listed = set(re.findall(r"\]\(docs/([\w/-]+\.md)\)", (ROOT / "README.md").read_text()))
    assert listed == nav


def _unannotated(function, qualname):
    """The parameters (and `return`) of `function` that have no type hint."""
    signature = inspect.signature(function)
    missing = [
        f"{qualname}({p.name})"
        for p in signature.parameters.values()
        if p.name not in ("self", "cls") and p.annotation is p.empty
    ]
    if signature.return_annotation is signature.empty and function.__name__ != "__init__":
        missing.append(f"{qualname} -> ?")
    return missing


def _own_members(cls):
    """`(name, function)` for the public methods and properties keras-rnnx's
    classes in `cls`'s bases define (Keras's own are Keras's to annotate)."""
    for base in cls.__mro__:
        if not base.__module__.startswith("keras_rnnx"):
            continue
        for name, member in vars(base).items():
            if isinstance(member, property):
                member = member.fget
            elif isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            public = not name.startswith("_") or name == "__init__"
            if callable(member) and not inspect.isclass(member) and public:
                yield f"{base.__name__}.{name}", member


def test_public_api_has_type_hints():
    missing = []
    for name, obj in public_objects():
        members = _own_members(obj) if inspect.isclass(obj) else [(name, obj)]
        for qualname, function in members:
            if getattr(function, "__module__", "").startswith("keras_rnnx"):
                missing += _unannotated(function, qualname)
    assert not sorted(set(missing)), sorted(set(missing))
