"""Sessions: tests (one per backend), lint, docs, demo, bench.

nox -s tests                  # the whole matrix: tensorflow, torch, jax
nox -s "tests(backend='jax')" # one backend
nox -s demo                   # KERAS_BACKEND picks the backend (default torch)
nox -s docs                   # mkdocs build --strict (its code blocks run in tests)
nox -s docs -- serve          # serve the site locally
nox -s lint
nox -s build                  # wheel + sdist, twine check, the wheel in a fresh venv
nox -s compat                 # lean runs at the edges: oldest, newest, keras-nightly
"""

from __future__ import annotations

import glob
import os
import shutil
import tarfile

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

nox.options.sessions = ["lint", "tests", "compat", "docs", "build"]
nox.options.reuse_existing_virtualenvs = True


def _constraints():
    return ["-c", CONSTRAINTS] if CONSTRAINTS else []


# Other packages' implementations the oracles compare with, where they run on
# a CPU: mlstm_kernels' native chunkwise mLSTM (torch).
ORACLES = {"tensorflow": [], "torch": ["mlstm_kernels"], "jax": []}


def _install(session, *requirements):
    session.install(*_constraints(), *requirements)


@nox.session
@nox.parametrize("backend", BACKENDS)
def tests(session, backend):
    """The test suite on one backend, with only that backend installed (and
    torch's CPU build on every backend, as the module `from_torch` reads and
    `to_torch` writes), and the export runtimes and converters."""
    _install(
        session,
        "-e",
        f".[test,export,{backend}]",
        "torch",
        *EXPORTERS[backend],
        *ORACLES[backend],
    )
    _install(session, "./examples/plugin")
    workers = os.environ.get("PYTEST_WORKERS", "2")
    # The slowest tests are listed, so CI's time can be watched and kept lean.
    args = ("-n", workers, "--durations=20", *session.posargs)
    session.run("pytest", *args, env={"KERAS_BACKEND": backend})


# The edges of the supported versions: each a constraints file beside
# constraints.txt, and the backend its lean run is on (the other backends'
# edges are in the same file, for a run by hand: `nox -s "compat(versions='oldest')"
# -- backend`).
EDGES = {"oldest": "jax", "newest": "torch", "nightly": "tensorflow"}
# The drop-in oracle, the guide, the call forms and messages, patching and
# converting (which read Keras's classes and configs), and the backend's
# fused-vs-reference kernel matrix.
LEAN_TESTS = (
    "tests/test_signatures.py",
    "tests/test_messages.py",
    "tests/test_guide.py",
    "tests/layers/test_oracle.py",
    "tests/test_patch.py",
    "tests/test_convert.py",
)
KERNEL_TESTS = {
    "tensorflow": ("tests/kernels/test_tensorflow.py", "tests/kernels/test_tensorflow_cudnn.py"),
    "torch": ("tests/kernels/test_torch.py",),
    "jax": ("tests/kernels/test_jax.py",),
}


@nox.session
@nox.parametrize("versions", list(EDGES))
def compat(session, versions):
    """A lean run at one edge of the supported versions (`constraints-{versions}.txt`):
    the oldest Keras and backends, the newest releases, or keras-nightly."""
    backend = session.posargs[0] if session.posargs else EDGES[versions]
    constraints = os.path.join(ROOT, f"constraints-{versions}.txt")
    session.install("-c", constraints, "-e", f".[test,{backend}]")
    if versions == "nightly":
        # keras-nightly is Keras under another name: it replaces keras.
        session.run("pip", "uninstall", "-y", "-q", "keras")
        session.install("-c", constraints, "keras-nightly")
    session.run(
        "python",
        "-c",
        "import keras; print('keras', keras.version())",
        env={"KERAS_BACKEND": backend},
    )
    workers = os.environ.get("PYTEST_WORKERS", "2")
    tests = (*LEAN_TESTS, *KERNEL_TESTS[backend])
    session.run("pytest", "-n", workers, *tests, env={"KERAS_BACKEND": backend})


@nox.session
def lint(session):
    """ruff (lint and format check) and mypy over keras_rnnx/ (its settings
    in pyproject.toml)."""
    session.install("ruff==0.17.6", "mypy==2.4.1")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session
def docs(session):
    """The documentation site: `mkdocs build --strict` (its API pages import the
    package on torch); `nox -s docs -- serve` serves it. Its code blocks and
    docstring examples run in the test matrix (`tests/test_docs.py`), on every
    backend."""
    _install(session, "-e", ".[docs,torch]")
    env = {"KERAS_BACKEND": "torch", "NO_MKDOCS_2_WARNING": "1"}
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:], env=env)
        return
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
    _install(session, "-e", ".[tensorflow,torch,jax]", "matplotlib", *ORACLES["torch"])
    # keras-hub's Gated DeltaNet rule, a row of its own (benchmarks/delta.py),
    # without the tokenizers' packages it would pull.
    session.install("--no-deps", "keras-hub==0.32.0")
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session
def build(session):
    """The wheel and the sdist: built, checked by `twine check`; the wheel
    installed into a fresh virtual environment (keras, torch's CPU build) runs
    `examples/smoke.py`, and the sdist's own tests run against it there."""
    _install(session, "build", "twine")
    tmp = os.path.abspath(session.create_tmp())
    dist, fresh, unpacked = (os.path.join(tmp, d) for d in ("dist", "fresh", "sdist"))
    for path in (dist, fresh, unpacked):
        shutil.rmtree(path, ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", dist)
    session.run("twine", "check", "--strict", *glob.glob(os.path.join(dist, "*")))
    (wheel,) = glob.glob(os.path.join(dist, "*.whl"))
    (sdist,) = glob.glob(os.path.join(dist, "*.tar.gz"))
    session.run("python", "-m", "venv", fresh)
    python = os.path.join(fresh, "bin", "python")
    pip = [python, "-m", "pip", "install", "-q", *_constraints()]
    session.run(*pip, f"{wheel}[torch]", external=True)
    env = {"KERAS_BACKEND": "torch"}
    session.run(python, "examples/smoke.py", env=env, external=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    (root,) = glob.glob(os.path.join(unpacked, "*"))
    session.run(
        *pip, "pytest", "scikit-learn", os.path.join(root, "examples", "plugin"), external=True
    )
    # `pytest`, not `python -m pytest`: the sdist's folder must not shadow the wheel.
    pytest = os.path.join(fresh, "bin", "pytest")
    with session.chdir(root):
        session.run(pytest, "-q", "-p", "no:cacheprovider", *BUILD_TESTS, env=env, external=True)


# The sdist's tests run against the installed wheel: the drop-in's signatures and messages.
BUILD_TESTS = ("tests/test_signatures.py", "tests/test_messages.py")
