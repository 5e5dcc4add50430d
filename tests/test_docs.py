"""The documentation: every Python code block and docstring example runs, and
the API reference shows every public name.

Code blocks on a page run in order in one namespace, as a reader would run
them. A block whose first line is `# needs a GPU` runs only on a GPU.
"""

from __future__ import annotations

import doctest
import inspect
import pathlib
import re

import pytest
from backend_utils import on_gpu

import keras_rnnx
from keras_rnnx.kernels import registry as kernel_registry

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
GPU_MARK = "# needs a GPU"
PAGES = sorted(p for p in DOCS.rglob("*.md") if FENCE.search(p.read_text()))


def code_blocks(page):
    """`(first line number, code)` of each Python block on `page`."""
    text = page.read_text()
    return [(text.count("\n", 0, m.start(1)), m.group(1)) for m in FENCE.finditer(text)]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Examples register kernels and write files: keep both to this test."""
    monkeypatch.setattr(kernel_registry, "_KERNELS", kernel_registry.registered_kernels())
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_code_blocks_run(page):
    namespace = {"__name__": f"docs.{page.stem}"}
    ran = 0
    for line, code in code_blocks(page):
        if code.startswith(GPU_MARK) and not on_gpu():
            continue
        # Padded so that a traceback points at the line in the page.
        exec(compile("\n" * line + code, str(page), "exec"), namespace)
        ran += 1
    if not ran:
        pytest.skip(f"every code block on {page.name} needs a GPU")


def public_objects():
    return [(name, getattr(keras_rnnx, name)) for name in keras_rnnx.__all__]


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
    expected = ["Returns:", "Raises:", "Example:"] + (["Args:"] if takes_arguments else [])
    missing = [section for section in expected if section not in doc]
    assert not missing, f"keras_rnnx.{name}'s docstring lacks {missing}"


def test_api_reference_shows_every_public_name():
    shown = set()
    for page in (DOCS / "api").glob("*.md"):
        shown |= set(re.findall(r"^::: keras_rnnx\.(\w+)$", page.read_text(), re.M))
    assert shown == set(keras_rnnx.__all__)


def test_every_page_is_in_the_navigation():
    nav = set(re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages == nav
