"""Sessions: tests (one per backend), lint, docs, demo, bench.

nox -s tests                  # the whole matrix: tensorflow, torch, jax
nox -s "tests(backend='jax')" # one backend
nox -s demo                   # KERAS_BACKEND picks the backend (default torch)
nox -s docs                   # the site's code blocks run, then mkdocs build --strict
nox -s docs -- serve          # serve the site locally
nox -s lint
"""

from __future__ import annotations

import os

import nox

BACKENDS = ("tensorflow", "torch", "jax")
# What Keras's `model.export` needs on each backend beyond the `export` extra:
# TensorFlow converts to ONNX with tf2onnx; torch to LiteRT with litert-torch;
# JAX to ONNX with jax2onnx, and to a SavedModel through jax2tf, which needs
# TensorFlow.
EXPORTERS = {
    "tensorflow": ["tf2onnx"],
    "torch": ["litert-torch"],
    "jax": ["jax2onnx", "tensorflow-cpu"],
}
ROOT = os.path.dirname(os.path.abspath(__file__))
CONSTRAINTS = os.environ.get("KERAS_RNNX_CONSTRAINTS", os.path.join(ROOT, "constraints.txt"))

nox.options.sessions = ["lint", "tests", "docs"]
nox.options.reuse_existing_virtualenvs = True


def _install(session, *requirements):
    constraints = ["-c", CONSTRAINTS] if CONSTRAINTS else []
    session.install(*constraints, *requirements)


@nox.session
@nox.parametrize("backend", BACKENDS)
def tests(session, backend):
    """The test suite on one backend, with only that backend installed (and
    torch's CPU build on every backend, as the module `from_torch` reads and
    `to_torch` writes), and the export runtimes and converters."""
    _install(session, "-e", f".[test,export,{backend}]", "torch", *EXPORTERS[backend])
    _install(session, "./examples/plugin")
    workers = os.environ.get("PYTEST_WORKERS", "2")
    session.run("pytest", "-n", workers, *session.posargs, env={"KERAS_BACKEND": backend})


@nox.session
def lint(session):
    """ruff: lint and format check."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def docs(session):
    """The documentation site: its code blocks and docstring examples run (on
    torch), then `mkdocs build --strict`; `nox -s docs -- serve` serves it."""
    _install(session, "-e", ".[docs,test,torch]")
    _install(session, "./examples/plugin")
    env = {"KERAS_BACKEND": "torch", "NO_MKDOCS_2_WARNING": "1"}
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:], env=env)
        return
    workers = os.environ.get("PYTEST_WORKERS", "2")
    session.run("pytest", "-n", workers, "tests/test_docs.py", env=env)
    session.run("mkdocs", "build", "--strict", env=env)


@nox.session
def demo(session):
    """The digits LSTM classifier, on KERAS_BACKEND (default torch)."""
    backend = os.environ.get("KERAS_BACKEND", "torch")
    if backend not in BACKENDS:
        session.error(f"KERAS_BACKEND must be one of {BACKENDS}. Received: {backend!r}")
    _install(session, "-e", f".[{backend}]", "scikit-learn")
    session.run("python", "examples/demo.py", env={"KERAS_BACKEND": backend})


@nox.session
def bench(session):
    """benchmarks/bench.py with all three backends installed; arguments after `--`."""
    _install(session, "-e", ".[tensorflow,torch,jax]", "matplotlib")
    session.run("python", "benchmarks/bench.py", *session.posargs)
