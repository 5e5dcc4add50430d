import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _registries_of_this_test():
    """What a test registers (cells, kernels, fused specs, plugins found) is gone after it."""
    from keras_rnnx.cells.registry import CELLS
    from keras_rnnx.kernels.registry import KERNELS
    from keras_rnnx.kernels.specs import SPECS

    # Installed plugins, which register as their modules are imported (once
    # per process), belong to every test.
    CELLS.discover(), KERNELS.discover()
    with CELLS.scoped(), KERNELS.scoped(), SPECS.scoped():
        yield


@pytest.fixture(autouse=True)
def _fresh_keras():
    keras.utils.set_random_seed(1234)
    yield
    # Without Keras's `gc.collect()`, which cost each test about a second
    # (over a third of the suite); Python's own collector still runs.
    keras.backend.clear_session(free_memory=False)


@pytest.fixture(autouse=True, scope="module")
def _jax_programs_of_this_module():
    """On JAX, the programs a test module compiled are freed after it.

    Each holds memory maps of its own (about 30 for a small loop), and a
    worker of the whole suite compiles thousands: past the kernel's
    `vm.max_map_count` (65530), XLA's next compile segfaults. (Per test, the
    suite took twice as long: every eager op compiles again.)"""
    yield
    if keras.backend.backend() == "jax":
        import jax

        jax.clear_caches()


def _full_float32_on_gpus():
    """Parity is asserted to 1e-5, so GPUs must not round float32 to TF32."""
    if keras.backend.backend() == "torch":
        import torch

        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    elif keras.backend.backend() == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")


_full_float32_on_gpus()


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


@pytest.fixture(autouse=True)
def _jax_eager_loops(request):
    """On JAX, run the oracle and masked-step tests op by op (`jax.disable_jit`).

    They compare numbers, which compilation does not change, and each call's
    `lax.scan` otherwise costs an XLA compile. Compiled loops are tested
    elsewhere (fit, predict, saving, the guide)."""
    eager = ("test_oracle", "test_masked_steps")
    if keras.backend.backend() != "jax" or not any(m in request.node.nodeid for m in eager):
        yield
        return
    import jax

    with jax.disable_jit():
        yield
