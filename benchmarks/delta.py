"""The delta rule's rows of bench.py (`beyond.py` lists them).

* `GatedDeltaNet-op`: `keras_rnnx.ops.gated_delta_rule` (`keras_rnnx`, and
  `keras_rnnx_masked` with a right-padding mask) against keras-hub 0.32's chunked rule
  (`keras_hub`: `_chunk_gated_delta_rule` of its `Qwen3_5GatedDeltaNet`,
  loaded from the installed wheel, which has no mask) and against a step rule
  as keras-hub's later revision writes it (`fori_loop`: `ops.fori_loop`
  over steps, a Python loop on TensorFlow), on the same inputs: q and k
  L2-normalised and q scaled in every one. Inference is the outputs; a train
  step is the gradient of their sum to every input. Compiled as a user would:
  `jax.jit`, `tf.function`, eager torch. The step rule's train step is not timed
  on TensorFlow: its traced Python loop's gradient ran out of memory.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import types

# keras-hub's rules run to this length (their unrolled graphs take minutes
# to compile beyond it); ours to the longest.
HUB_STEPS = 4096


@functools.cache
def _keras_hub_module():
    """keras-hub's `qwen3_5_gated_delta_net` module from the installed wheel,
    without importing `keras_hub` (which imports its tokenizers' packages)."""
    spec = importlib.util.find_spec("keras_hub")
    if spec is None:
        raise ImportError("keras-hub is a dependency of the bench session: nox -s bench")
    root = os.path.dirname(spec.origin)
    name = "keras_hub.src.models.qwen3_5"
    for parent in ("keras_hub", "keras_hub.src", "keras_hub.src.models", name):
        sys.modules.setdefault(parent, types.ModuleType(parent))
    norm = types.ModuleType(f"{name}.qwen3_5_layers")
    norm.Qwen3_5RMSNormGated = None  # the layer's norm; the rule does not use it
    sys.modules.setdefault(norm.__name__, norm)
    path = os.path.join(root, "src", "models", "qwen3_5", "qwen3_5_gated_delta_net.py")
    module_spec = importlib.util.spec_from_file_location(f"{name}.gated_delta_net", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _step_rule(q, k, v, g, beta):
    """The gated delta rule step by step, as keras-hub's later revision
    writes it: `ops.fori_loop` writing each step's output into a buffer (a
    Python loop on TensorFlow)."""
    import keras
    from keras import ops

    def l2(x):
        return x * ops.rsqrt(ops.sum(x * x, axis=-1, keepdims=True) + 1e-6)

    q = l2(q) * (1 / q.shape[-1] ** 0.5)
    k = l2(k)
    q, k, v = (ops.transpose(t, (0, 2, 1, 3)) for t in (q, k, v))
    g, beta = (ops.transpose(t, (0, 2, 1)) for t in (g, beta))
    batch, heads, steps, key_dim = q.shape
    value_dim = v.shape[-1]
    state = ops.zeros((batch, heads, key_dim, value_dim))

    def step(t, carry):
        state, out = carry
        state = state * ops.exp(g[:, :, t])[..., None, None]
        k_t = k[:, :, t]
        recalled = ops.sum(state * k_t[..., None], axis=-2)
        delta = (v[:, :, t] - recalled) * beta[:, :, t][..., None]
        state = state + k_t[..., None] * delta[..., None, :]
        o = ops.sum(state * q[:, :, t][..., None], axis=-2)
        if isinstance(out, list):
            return state, [*out, o]
        if keras.backend.backend() == "torch":
            out[:, :, t] = o  # in place, as theirs (a slice update copies the buffer)
            return state, out
        return state, ops.slice_update(out, (0, 0, t, 0), o[:, :, None])

    if keras.backend.backend() == "tensorflow":
        carry = (state, [])
        for t in range(steps):
            carry = step(t, carry)
        out = ops.stack(carry[1], axis=2)
    else:
        out = ops.zeros((batch, heads, steps, value_dim))
        _, out = ops.fori_loop(0, steps, step, (state, out))
    return ops.transpose(out, (0, 2, 1, 3))


def op_fns(shape, impl):
    """`(infer, train)` for one implementation on `(batch, steps, heads,
    size)` inputs."""
    import keras
    import numpy as np
    from keras import ops

    import keras_rnnx

    batch, steps, heads, size = shape
    rng = np.random.RandomState(0)
    q, k, v = (rng.randn(batch, steps, heads, size).astype("float32") for _ in range(3))
    g = -np.log1p(np.exp(rng.randn(batch, steps, heads))).astype("float32") * 0.1
    beta = (1 / (1 + np.exp(-rng.randn(batch, steps, heads)))).astype("float32")
    mask = np.arange(steps)[None, :] < np.linspace(steps // 2, steps, batch)[:, None].astype(int)
    inputs = [ops.convert_to_tensor(t) for t in (q, k, v, g, beta)]
    if impl in ("keras_rnnx", "keras_rnnx_masked"):
        padding = ops.convert_to_tensor(mask) if impl == "keras_rnnx_masked" else None

        def rule(*t):
            return keras_rnnx.ops.gated_delta_rule(*t, mask=padding, use_qk_l2norm=True)[0]

    elif impl == "keras_hub":
        hub = _keras_hub_module()._chunk_gated_delta_rule

        def rule(*t):
            return hub(*t)[0]

    else:
        rule = _step_rule
    infer, train = _compiled(rule, inputs, keras.backend.backend())
    if impl == "fori_loop" and keras.backend.backend() == "tensorflow":
        # Its Python loop's gradient, traced, outgrew this machine's 23 GB at
        # 1024 steps (killed); its inference is timed.
        train = None
    return infer, train


def _compiled(rule, inputs, backend):
    """The rule's outputs and the gradient of their sum, compiled as a user
    of the backend would."""
    if backend == "jax":
        import jax

        infer = jax.jit(rule)
        grad = jax.jit(jax.grad(lambda *t: rule(*t).sum(), argnums=tuple(range(len(inputs)))))
        return (lambda: jax.block_until_ready(infer(*inputs))), (
            lambda: jax.block_until_ready(grad(*inputs))
        )
    if backend == "tensorflow":
        import tensorflow as tf

        infer = tf.function(rule)

        @tf.function
        def grad(*t):
            with tf.GradientTape() as tape:
                tape.watch(t)
                total = tf.reduce_sum(rule(*t))
            return tape.gradient(total, t)

        return (lambda: infer(*inputs)), (lambda: grad(*inputs))
    import torch

    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]

    def infer():
        with torch.no_grad():
            rule(*leaves)

    def train():
        for t in leaves:
            t.grad = None
        rule(*leaves).sum().backward()

    return infer, train
