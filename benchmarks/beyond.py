"""bench.py's rows for the cells beyond Keras's recurrent layers.

* `ConvLSTM2D`: keras_rnnx against `keras.layers.ConvLSTM2D` (no native op);
  (batch, steps, rows, cols, channels, filters) = `CONV_SHAPE`, 3x3 "same".
* `MinGRU`, `MinLSTM`, `LRU`: the parallel scan (`keras_rnnx`) against the
  same cell's step loop (`loop`: `use_cudnn=False`, the reference kernel)
  and against a keras_rnnx `LSTM` of about as many weights on its fused
  kernel (`lstm`), at each length in `SCAN_STEPS` (the loop up to
  `LOOP_STEPS`: beyond, one row takes minutes).
"""

from __future__ import annotations

CONV_SHAPE = (8, 10, 24, 24, 4, 16)
SCAN_LAYERS = ("MinGRU", "MinLSTM", "LRU")
LAYERS = ("ConvLSTM2D", *SCAN_LAYERS)
SCAN_SHAPE = (8, 32, 128)  # batch, features, units
SCAN_STEPS = (256, 1024, 4096, 16384)
LOOP_STEPS = 4096


def _compiled(model):
    model.compile(optimizer="sgd", loss="mse")
    return (lambda x, y: model.predict_on_batch(x)), (lambda x, y: model.train_on_batch(x, y))


def _model(inputs, layer):
    import keras

    return keras.Model(inputs, layer(inputs))


def conv_fns(lib):
    import keras
    import numpy as np

    batch, steps, rows, cols, channels, filters = CONV_SHAPE
    inputs = keras.Input((steps, rows, cols, channels), batch_size=batch)
    model = _model(inputs, lib.ConvLSTM2D(filters, 3, padding="same"))
    rng = np.random.RandomState(0)
    x = rng.randn(batch, steps, rows, cols, channels).astype("float32")
    y = rng.randn(batch, rows, cols, filters).astype("float32")
    infer, train = _compiled(model)
    return (lambda: infer(x, y)), (lambda: train(x, y))


def _lstm_units(params, features):
    """The LSTM width with about `params` weights: 4u(F + u + 1) = params."""
    b = features + 1
    return max(1, round((-b + (b * b + params) ** 0.5) / 2))


def scan_fns(layer, steps, impl):
    import keras
    import numpy as np

    import keras_rnnx

    batch, features, units = SCAN_SHAPE
    make = getattr(keras_rnnx, layer)
    inputs = keras.Input((steps, features), batch_size=batch)
    ours = make(units, use_cudnn="auto" if impl == "keras_rnnx" else False)
    if impl == "lstm":
        probe = _model(inputs, make(units))
        ours = keras_rnnx.LSTM(_lstm_units(probe.count_params(), features))
    model = _model(inputs, ours)
    rng = np.random.RandomState(0)
    x = rng.randn(batch, steps, features).astype("float32")
    y = rng.randn(*model.output_shape).astype("float32")
    infer, train = _compiled(model)
    return (lambda: infer(x, y)), (lambda: train(x, y))


def rows(backend, layers, quick, medians_ms):
    """The rows of `layers` (any of `LAYERS`) on the current backend, one at a time."""
    import keras

    import keras_rnnx

    repeats = 3 if quick else 5
    if "ConvLSTM2D" in layers:
        impls = {"keras_rnnx": conv_fns(keras_rnnx), "keras.layers": conv_fns(keras.layers)}
        for mode, index in (("infer", 0), ("train", 1)):
            row = {"backend": backend, "layer": "ConvLSTM2D", "shape": list(CONV_SHAPE)}
            row |= {"masked": False, "mode": mode}
            yield row | medians_ms({n: f[index] for n, f in impls.items()}, repeats)
    for layer in (name for name in SCAN_LAYERS if name in layers):
        for steps in SCAN_STEPS[:2] if quick else SCAN_STEPS:
            impls = ("keras_rnnx", "lstm") + (("loop",) if steps <= LOOP_STEPS else ())
            fns = {impl: scan_fns(layer, steps, impl) for impl in impls}
            for mode, index in (("infer", 0), ("train", 1)):
                batch, features, units = SCAN_SHAPE
                row = {"backend": backend, "layer": layer, "shape": [batch, steps, features, units]}
                row |= {"masked": False, "mode": mode}
                # One timing at the longest lengths: a row of 5 takes minutes.
                n = repeats if steps <= 1024 else 1
                yield row | medians_ms({i: f[index] for i, f in fns.items()}, n)


def format_row(row):
    shape = "x".join(map(str, row["shape"]))
    head = f"{row['backend']:10} {row['layer']:10} {shape:15} {row['mode']:5}"
    if "keras.layers" in row:
        ratio = row["keras_rnnx"] / row["keras.layers"]
        return (
            f"{head} rnnx {row['keras_rnnx']:9.1f}  keras {row['keras.layers']:9.1f}"
            f"  /keras {ratio:5.2f}"
        )
    loop = row.get("loop")
    speedup = f"loop/scan {loop / row['keras_rnnx']:6.1f}" if loop else "loop/scan      -"
    loop = f"{loop:9.1f}" if loop else "        -"
    return (
        f"{head} scan {row['keras_rnnx']:9.1f}  loop {loop}  lstm {row['lstm']:9.1f}  {speedup}"
        f"  lstm/scan {row['lstm'] / row['keras_rnnx']:5.2f}"
    )


def plot(rows, path):
    """A PNG: train-step time against length, scan vs loop vs LSTM, per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = list(dict.fromkeys(r["backend"] for r in rows))
    fig, axes = plt.subplots(1, len(backends), figsize=(4.2 * len(backends), 3.6), sharey=True)
    axes = axes if len(backends) > 1 else [axes]
    styles = {"keras_rnnx": "-", "loop": ":", "lstm": "--"}
    names = {"keras_rnnx": "parallel scan", "loop": "step loop", "lstm": "LSTM (fused)"}
    for ax, backend in zip(axes, backends):
        for layer, color in zip(SCAN_LAYERS, ("tab:blue", "tab:orange", "tab:green")):
            mine = [r for r in rows if r["backend"] == backend and r["layer"] == layer]
            mine = [r for r in mine if r["mode"] == "train"]
            for impl, style in styles.items():
                if impl == "lstm" and layer != SCAN_LAYERS[0]:
                    continue  # one LSTM line: the LSTMs match each cell's size about alike
                points = [(r["shape"][1], r[impl]) for r in mine if r.get(impl)]
                if points:
                    label = names[impl] if impl == "lstm" else f"{layer} {names[impl]}"
                    ax.plot(
                        *zip(*points),
                        style,
                        color="black" if impl == "lstm" else color,
                        marker="o",
                        markersize=3,
                        label=label,
                    )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"{backend}: train step", fontsize=10)
        ax.set_xlabel("sequence length")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("ms (median)")
    axes[-1].legend(fontsize=6.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
