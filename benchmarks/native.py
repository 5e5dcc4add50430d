"""Each backend's own way to run the benchmark's model, without Keras.

Every function returns `(infer, train)`: zero-argument callables that run one
forward pass, or one SGD step on an MSE loss of the last state, and bring the
result (the last state, or the loss) to the host, as Keras's
`predict_on_batch` and `train_on_batch` do. torch uses `torch.nn.LSTM/GRU/RNN`
(packed sequences when masked); JAX a jitted `lax.scan` and TensorFlow a
`tf.function` loop over the same gate equations as Keras's cells, masked steps
carrying the states.
"""

from __future__ import annotations

from types import SimpleNamespace

GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}


def step(layer, m, params, x_t, states):
    """One step of Keras's cell equations in the array module `m`."""
    w, u, b = params
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
    return (m.sigmoid(o) * m.tanh(c), c)


def _shapes(layer, features, units):
    n = GATES[layer] * units
    return (features, n), (units, n), ((2, n) if layer == "GRU" else (n,))


def _initial_params(layer, features, units):
    import numpy as np

    rng = np.random.RandomState(1)
    w, u, b = _shapes(layer, features, units)
    return [
        (rng.randn(*w) * 0.1).astype("float32"),
        (rng.randn(*u) * 0.1).astype("float32"),
        np.zeros(b, "float32"),
    ]


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
    batch, _, features, units = shape
    params = [jnp.asarray(p) for p in _initial_params(layer, features, units)]
    xs, mask, yj = jnp.asarray(x), jnp.asarray(_mask(x, lengths)), jnp.asarray(y)

    def forward(params, xs, mask):
        h0 = jnp.zeros((batch, units), xs.dtype)
        states = (h0, h0) if layer == "LSTM" else (h0,)

        def body(states, inputs):
            x_t, m_t = inputs
            new = step(layer, m, params, x_t, states)
            if masked:
                new = tuple(jnp.where(m_t[:, None], n, s) for n, s in zip(new, states))
            return new, None

        states, _ = jax.lax.scan(body, states, (jnp.swapaxes(xs, 0, 1), mask.T))
        return states[0]

    forward_jit = jax.jit(forward)

    @jax.jit
    def train_step(params, xs, mask, yj):
        loss = lambda p: jnp.mean((forward(p, xs, mask) - yj) ** 2)  # noqa: E731
        value, grads = jax.value_and_grad(loss)(params)
        return [p - 0.01 * g for p, g in zip(params, grads)], value

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
    batch, steps, features, units = shape
    params = [tf.Variable(p) for p in _initial_params(layer, features, units)]
    xs, mask, yt = tf.constant(x), tf.constant(_mask(x, lengths)), tf.constant(y)

    def forward(xs, mask):
        h0 = tf.zeros((batch, units), xs.dtype)
        states = (h0, h0) if layer == "LSTM" else (h0,)
        xs_t, mask_t = tf.transpose(xs, [1, 0, 2]), tf.transpose(mask)
        for t in tf.range(steps):
            new = step(layer, m, params, xs_t[t], states)
            if masked:
                new = tuple(tf.where(mask_t[t][:, None], n, s) for n, s in zip(new, states))
            states = new
        return states[0]

    forward_fn = tf.function(forward)

    @tf.function
    def train_step(xs, mask, yt):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((forward(xs, mask) - yt) ** 2)
        for p, g in zip(params, tape.gradient(loss, params)):
            p.assign_sub(0.01 * g)
        return loss

    return (lambda: forward_fn(xs, mask).numpy()), (lambda: train_step(xs, mask, yt).numpy())


def torch_fns(layer, shape, masked, x, y, lengths):
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    _, _, features, units = shape
    module = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "SimpleRNN": torch.nn.RNN}[layer]
    rnn = module(features, units, batch_first=True).to(device)
    optimizer = torch.optim.SGD(rnn.parameters(), lr=0.01)
    xt, yt = torch.tensor(x, device=device), torch.tensor(y, device=device)
    lengths_t = None if lengths is None else torch.tensor(lengths)

    def forward():
        if masked:
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                xt, lengths_t, batch_first=True, enforce_sorted=False
            )
            _, h = rnn(packed)
        else:
            _, h = rnn(xt)
        return (h[0] if isinstance(h, tuple) else h)[0]

    def infer():
        with torch.no_grad():
            return forward().cpu().numpy()

    def train():
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(forward(), yt)
        loss.backward()
        optimizer.step()
        return loss.item()

    return infer, train


FNS = {"torch": torch_fns, "jax": jax_fns, "tensorflow": tensorflow_fns}
