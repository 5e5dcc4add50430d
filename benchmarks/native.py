"""Each backend's own way to run the benchmark's model, without Keras.

Every function returns `(infer, train)`: zero-argument callables that run one
forward pass, or one SGD step on an MSE loss of the last state, and bring the
result (the last state, or the loss) to the host, as Keras's
`predict_on_batch` and `train_on_batch` do. torch uses `torch.nn.LSTM/GRU/RNN`
(packed sequences when masked; `proj_size` for a projected LSTM); JAX a
jitted `lax.scan` and TensorFlow a `tf.function` loop over the same gate
equations as Keras's cells, masked steps carrying the states.
"""

from __future__ import annotations

from types import SimpleNamespace

GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}


def variant(layer):
    """`(cell family, layers stacked, dtype)` of a benchmark row's layer name:
    `"LSTM"`, `"LSTMx2"` (two stacked), `"LSTM-bf16"` (bfloat16 compute),
    `"LSTM-proj"` (projected, see `projection`)."""
    if layer.endswith("-proj"):
        return layer[: -len("-proj")], 1, "float32"
    if layer.endswith("-bf16"):
        return layer[: -len("-bf16")], 1, "bfloat16"
    if layer.endswith("x2"):
        return layer[:-2], 2, "float32"
    return layer, 1, "float32"


def projection(layer, units):
    """A projected row's `proj_size` (half the units), else None."""
    return units // 2 if layer.endswith("-proj") else None


def step(layer, m, params, x_t, states):
    """One step of Keras's cell equations in the array module `m` (an LSTM
    with a fourth parameter projects its output, as torch's `proj_size`)."""
    w, u, b, *p = params
    h = states[0]
    if layer == "GRU":  # reset_after=True: bias (2, 3 units)
        xz, xr, xh = m.split(m.matmul(x_t, w) + b[0], 3)
        hz, hr, hh = m.split(m.matmul(h, u) + b[1], 3)
        z, r = m.sigmoid(xz + hz), m.sigmoid(xr + hr)
        return (z * h + (1 - z) * m.tanh(xh + r * hh),)
    z = m.matmul(x_t, w) + m.matmul(h, u) + b
    if layer == "SimpleRNN":
        return (m.tanh(z),)
    i, f, g, o = m.split(z, 4)
    c = m.sigmoid(f) * states[1] + m.sigmoid(i) * m.tanh(g)
    h = m.sigmoid(o) * m.tanh(c)
    return (m.matmul(h, p[0]) if p else h, c)


def stacked_step(layer, m, params, x_t, states):
    """One step of `len(params)` stacked cells; `states` one tuple per cell."""
    new = []
    for cell_params, cell_states in zip(params, states):
        cell_states = step(layer, m, cell_params, x_t, cell_states)
        new.append(cell_states)
        x_t = cell_states[0]
    return tuple(new)


def _stack_params(layer, features, units, depth, cast, proj=None):
    return [
        [cast(p) for p in _initial_params(layer, features if k == 0 else units, units, proj)]
        for k in range(depth)
    ]


def _shapes(layer, features, units, proj):
    n = GATES[layer] * units
    return (features, n), (proj or units, n), ((2, n) if layer == "GRU" else (n,))


def _initial_params(layer, features, units, proj=None):
    import numpy as np

    rng = np.random.RandomState(1)
    w, u, b = _shapes(layer, features, units, proj)
    params = [
        (rng.randn(*w) * 0.1).astype("float32"),
        (rng.randn(*u) * 0.1).astype("float32"),
        np.zeros(b, "float32"),
    ]
    if proj:
        params.append((rng.randn(units, proj) * 0.1).astype("float32"))
    return params


def _mask(x, lengths):
    import numpy as np

    steps = x.shape[1]
    if lengths is None:
        return np.ones(x.shape[:2], bool)
    return np.arange(steps)[None, :] < lengths[:, None]


def jax_fns(layer, shape, masked, x, y, lengths):
    import jax
    import numpy as np
    from jax import numpy as jnp

    m = SimpleNamespace(
        matmul=jnp.matmul,
        sigmoid=jax.nn.sigmoid,
        tanh=jnp.tanh,
        split=lambda a, n: jnp.split(a, n, axis=-1),
    )
    proj = projection(layer, shape[-1])
    layer, depth, dtype = variant(layer)
    batch, _, features, units = shape
    params = _stack_params(layer, features, units, depth, lambda p: jnp.asarray(p, dtype), proj)
    xs, mask, yj = jnp.asarray(x, dtype), jnp.asarray(_mask(x, lengths)), jnp.asarray(y, dtype)

    def forward(params, xs, mask):
        h0, c0 = jnp.zeros((batch, proj or units), xs.dtype), jnp.zeros((batch, units), xs.dtype)
        states = tuple((h0, c0) if layer == "LSTM" else (h0,) for _ in params)

        def body(states, inputs):
            x_t, m_t = inputs
            new = stacked_step(layer, m, params, x_t, states)
            if masked:
                new = jax.tree.map(lambda n, s: jnp.where(m_t[:, None], n, s), new, states)
            return new, None

        states, _ = jax.lax.scan(body, states, (jnp.swapaxes(xs, 0, 1), mask.T))
        return states[-1][0]

    forward_jit = jax.jit(forward)

    @jax.jit
    def train_step(params, xs, mask, yj):
        loss = lambda p: jnp.mean((forward(p, xs, mask) - yj) ** 2)  # noqa: E731
        value, grads = jax.value_and_grad(loss)(params)
        return jax.tree.map(lambda p, g: p - 0.01 * g, params, grads), value

    def infer():
        return np.asarray(forward_jit(params, xs, mask))

    def train():
        nonlocal params
        params, value = train_step(params, xs, mask, yj)
        return float(value)

    return infer, train


def tensorflow_fns(layer, shape, masked, x, y, lengths):
    import tensorflow as tf

    m = SimpleNamespace(
        matmul=tf.matmul,
        sigmoid=tf.sigmoid,
        tanh=tf.tanh,
        split=lambda a, n: tf.split(a, n, axis=-1),
    )
    proj = projection(layer, shape[-1])
    layer, depth, dtype = variant(layer)
    batch, steps, features, units = shape
    variable = lambda p: tf.Variable(p, dtype=dtype)  # noqa: E731
    params = _stack_params(layer, features, units, depth, variable, proj)
    xs, mask = tf.constant(x, dtype), tf.constant(_mask(x, lengths))
    yt = tf.constant(y, dtype)

    def forward(xs, mask):
        h0, c0 = tf.zeros((batch, proj or units), xs.dtype), tf.zeros((batch, units), xs.dtype)
        states = tuple((h0, c0) if layer == "LSTM" else (h0,) for _ in params)
        xs_t, mask_t = tf.transpose(xs, [1, 0, 2]), tf.transpose(mask)
        for t in tf.range(steps):
            new = stacked_step(layer, m, params, xs_t[t], states)
            if masked:
                new = tf.nest.map_structure(
                    lambda n, s, valid=mask_t[t][:, None]: tf.where(valid, n, s), new, states
                )
            states = new
        return states[-1][0]

    forward_fn = tf.function(forward)

    @tf.function
    def train_step(xs, mask, yt):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((forward(xs, mask) - yt) ** 2)
        flat = tf.nest.flatten(params)
        for p, g in zip(flat, tape.gradient(loss, flat)):
            p.assign_sub(0.01 * g)
        return loss

    return (lambda: forward_fn(xs, mask).numpy()), (lambda: train_step(xs, mask, yt).numpy())


def torch_fns(layer, shape, masked, x, y, lengths):
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    proj = projection(layer, shape[-1])
    layer, depth, dtype = variant(layer)
    dtype = getattr(torch, dtype)
    _, _, features, units = shape
    module = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "SimpleRNN": torch.nn.RNN}[layer]
    options = {"proj_size": proj} if proj else {}
    rnn = module(features, units, num_layers=depth, batch_first=True, **options)
    rnn = rnn.to(device, dtype)
    optimizer = torch.optim.SGD(rnn.parameters(), lr=0.01)
    xt = torch.tensor(x, device=device, dtype=dtype)
    yt = torch.tensor(y, device=device, dtype=dtype)
    lengths_t = None if lengths is None else torch.tensor(lengths)

    def forward():
        if masked:
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                xt, lengths_t, batch_first=True, enforce_sorted=False
            )
            _, h = rnn(packed)
        else:
            _, h = rnn(xt)
        return (h[0] if isinstance(h, tuple) else h)[-1]

    def infer():
        with torch.no_grad():
            return forward().float().cpu().numpy()

    def train():
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(forward(), yt)
        loss.backward()
        optimizer.step()
        return loss.item()

    return infer, train


FNS = {"torch": torch_fns, "jax": jax_fns, "tensorflow": tensorflow_fns}
