"""bench.py's rows for the cells beyond Keras's recurrent layers.

* `ConvLSTM2D`: keras_rnnx against `keras.layers.ConvLSTM2D` (no native op);
  (batch, steps, rows, cols, channels, filters) = `CONV_SHAPE`, 3x3 "same".
* `MinGRU`, `MinLSTM`, `LRU`: the parallel scan (`keras_rnnx`) against the
  same cell's step loop (`loop`: `use_cudnn=False`, the reference kernel)
  and against a keras_rnnx `LSTM` of about as many weights on its fused
  kernel (`lstm`), at each length in `SCAN_STEPS` (the loop up to
  `LOOP_STEPS`: beyond, one row takes minutes).
* `GLA`, `mLSTM`, `Mamba2`: the chunkwise kernel against the same cell's step
  loop and an LSTM of about as many weights, likewise, at `MATRIX_SHAPE`
  (batch, heads, key and value size per head; the input and output are
  heads x size wide) and each length in `MATRIX_STEPS`; `peak_mb` is the
  growth of the process's peak memory over a chunkwise train step, in a
  process of its own (`peak_memory`).
* `mLSTM-op`: `keras_rnnx.ops.mlstm` against `mlstm_kernels`' native
  chunkwise function (torch, where it imports) on the same inputs.
* `GatedDeltaNet-op`: `keras_rnnx.ops.gated_delta_rule` against keras-hub's
  rules (`delta.py`) at `MATRIX_SHAPE` and each length in `MATRIX_STEPS`.
* `sLSTM`: its step loop against an LSTM of the same width on its fused
  kernel (`lstm`), at `SCAN_SHAPE` and each length in `SLSTM_STEPS`.
"""

from __future__ import annotations

CONV_SHAPE = (8, 10, 24, 24, 4, 16)
SCAN_LAYERS = ("MinGRU", "MinLSTM", "LRU", "RGLRU")
MATRIX_LAYERS = ("GLA", "mLSTM", "Mamba2", "DeltaNet", "GatedDeltaNet")
OPS = ("mLSTM-op", "GatedDeltaNet-op")
LAYERS = ("ConvLSTM2D", *SCAN_LAYERS, *MATRIX_LAYERS, *OPS, "sLSTM")
SCAN_SHAPE = (8, 32, 128)  # batch, features, units
SCAN_STEPS = (256, 1024, 4096, 16384)
LOOP_STEPS = 4096
MATRIX_SHAPE = (8, 4, 64)  # batch, heads, key and value size per head
MATRIX_STEPS = (1024, 4096, 16384)
SLSTM_STEPS = (256, 1024)


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


def matrix_fns(layer, steps, impl):
    import keras
    import numpy as np

    import keras_rnnx

    batch, heads, size = MATRIX_SHAPE
    inputs = keras.Input((steps, heads * size), batch_size=batch)
    make = getattr(keras_rnnx, layer)
    ours = make(heads, size, return_sequences=True, use_cudnn=impl == "keras_rnnx" and "auto")
    if impl == "lstm":
        probe = _model(inputs, make(heads, size))
        units = _lstm_units(probe.count_params(), heads * size)
        ours = keras_rnnx.LSTM(units, return_sequences=True)
    model = _model(inputs, ours)
    rng = np.random.RandomState(0)
    x = rng.randn(batch, steps, heads * size).astype("float32")
    y = rng.randn(*model.output_shape).astype("float32")
    infer, train = _compiled(model)
    return (lambda: infer(x, y)), (lambda: train(x, y))


def mlstm_op_fns(steps, impl):
    """`keras_rnnx.ops.mlstm` (`impl` "keras_rnnx") or `mlstm_kernels`' native
    chunkwise function ("mlstm_kernels") on torch tensors: the outputs, and a
    backward pass of their sum to every input."""
    import numpy as np
    import torch

    import keras_rnnx

    batch, heads, size = MATRIX_SHAPE
    rng = np.random.RandomState(0)
    shapes = [(batch, steps, heads, size)] * 3 + [(batch, steps, heads)] * 2
    q, k, v, i, f = (torch.tensor(rng.randn(*s).astype("float32")) for s in shapes)
    f = f + 3.0  # forget gates near 1, as trained ones are
    if impl == "keras_rnnx":
        inputs = [q, k, v, i, f]

        def op(*t):
            return keras_rnnx.ops.mlstm(*t)[0]

    else:
        from mlstm_kernels.torch.chunkwise.native import mlstm_chunkwise__native_autograd

        inputs = [t.transpose(1, 2).contiguous() for t in (q, k, v, i, f)]

        def op(*t):
            return mlstm_chunkwise__native_autograd(*t, chunk_size=64)

    for t in inputs:
        t.requires_grad_(True)

    def infer():
        with torch.no_grad():
            op(*inputs)

    def train():
        for t in inputs:
            t.grad = None
        op(*inputs).sum().backward()

    return infer, train


def slstm_fns(steps, impl):
    """An sLSTM (`keras_rnnx`) or an LSTM of the same width (`lstm`)."""
    import keras
    import numpy as np

    import keras_rnnx

    batch, features, units = SCAN_SHAPE
    inputs = keras.Input((steps, features), batch_size=batch)
    layer = keras_rnnx.sLSTM(units) if impl == "keras_rnnx" else keras_rnnx.LSTM(units)
    model = _model(inputs, layer)
    rng = np.random.RandomState(0)
    x = rng.randn(batch, steps, features).astype("float32")
    y = rng.randn(*model.output_shape).astype("float32")
    infer, train = _compiled(model)
    return (lambda: infer(x, y)), (lambda: train(x, y))


def peak_memory(layer, steps):
    """MB by which two chunkwise train steps of `layer` at `steps` raise the
    resident memory of a process of their own, from its peak reset after the
    model is built (Linux: `/proc/self/clear_refs`)."""
    import os
    import subprocess
    import sys

    code = (
        "import re, beyond\n"
        "def rss(field):\n"
        "    status = open('/proc/self/status').read()\n"
        "    return int(re.search(field + r':\\s+(\\d+)', status)[1]) / 1024\n"
        f"infer, train = beyond.matrix_fns({layer!r}, {steps}, 'keras_rnnx')\n"
        "base = rss('VmRSS')\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "train(); train()\n"
        "print(rss('VmHWM') - base)\n"
    )
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=here, capture_output=True, text=True, check=True
    )
    return round(float(out.stdout.split()[-1]))


def rows(backend, layers, quick, medians_ms, steps=None):
    """The rows of `layers` (any of `LAYERS`) on the current backend, one at a
    time: at `steps` (lengths) where given, else each family's lengths (the
    first two with `quick`)."""

    def lengths_of(lengths, short=2):
        if steps:
            return [t for t in lengths if t in steps]
        return lengths[:short] if quick else lengths

    import keras

    import keras_rnnx

    repeats = 3 if quick else 5
    if "ConvLSTM2D" in layers:
        impls = {"keras_rnnx": conv_fns(keras_rnnx), "keras.layers": conv_fns(keras.layers)}
        for mode, index in (("infer", 0), ("train", 1)):
            row = {"backend": backend, "layer": "ConvLSTM2D", "shape": list(CONV_SHAPE)}
            row |= {"masked": False, "mode": mode}
            yield row | medians_ms({n: f[index] for n, f in impls.items()}, repeats)
    families = (
        (SCAN_LAYERS, SCAN_SHAPE, SCAN_STEPS, scan_fns),
        (MATRIX_LAYERS, MATRIX_SHAPE, MATRIX_STEPS, matrix_fns),
    )
    for names, (batch, *sizes), lengths, fns_of in families:
        for layer in (name for name in names if name in layers):
            for length in lengths_of(lengths):
                impls = ("keras_rnnx", "lstm") + (("loop",) if length <= LOOP_STEPS else ())
                fns = {impl: fns_of(layer, length, impl) for impl in impls}
                for mode, index in (("infer", 0), ("train", 1)):
                    row = {"backend": backend, "layer": layer, "shape": [batch, length, *sizes]}
                    row |= {"masked": False, "mode": mode}
                    # One timing at the longest lengths: a row of 5 takes minutes.
                    n = repeats if length <= 1024 else 1
                    row |= medians_ms({i: f[index] for i, f in fns.items()}, n)
                    if mode == "train" and layer in MATRIX_LAYERS:
                        row["peak_mb"] = peak_memory(layer, length)
                    yield row
    if "mLSTM-op" in layers and backend == "torch":
        for length in lengths_of(MATRIX_STEPS):
            fns = {impl: mlstm_op_fns(length, impl) for impl in ("keras_rnnx", "mlstm_kernels")}
            for mode, index in (("infer", 0), ("train", 1)):
                batch, heads, size = MATRIX_SHAPE
                row = {
                    "backend": backend,
                    "layer": "mLSTM-op",
                    "shape": [batch, length, heads, size],
                }
                row |= {"masked": False, "mode": mode}
                yield row | medians_ms({i: f[index] for i, f in fns.items()}, repeats)
    if "GatedDeltaNet-op" in layers:
        import delta

        batch, heads, size = MATRIX_SHAPE
        for length in lengths_of(MATRIX_STEPS):
            impls = ("keras_rnnx", "keras_rnnx_masked")
            impls += ("keras_hub", "fori_loop") if length <= delta.HUB_STEPS else ()
            shape = [batch, length, heads, size]
            fns = {impl: delta.op_fns(shape, impl) for impl in impls}
            for mode, index in (("infer", 0), ("train", 1)):
                row = {"backend": backend, "layer": "GatedDeltaNet-op", "shape": shape}
                row |= {"masked": False, "mode": mode}
                n = repeats if length <= 1024 else 1
                timed = {i: f[index] for i, f in fns.items() if f[index] is not None}
                yield row | medians_ms(timed, n)
    if "sLSTM" in layers:
        batch, features, units = SCAN_SHAPE
        for length in lengths_of(SLSTM_STEPS, short=1):
            fns = {impl: slstm_fns(length, impl) for impl in ("keras_rnnx", "lstm")}
            for mode, index in (("infer", 0), ("train", 1)):
                row = {"backend": backend, "layer": "sLSTM", "shape": [batch, length, features]}
                row |= {"masked": False, "mode": mode, "units": units}
                yield row | medians_ms({i: f[index] for i, f in fns.items()}, repeats)


def format_row(row):
    shape = "x".join(map(str, row["shape"]))
    head = f"{row['backend']:10} {row['layer']:10} {shape:15} {row['mode']:5}"
    if "keras.layers" in row:
        ratio = row["keras_rnnx"] / row["keras.layers"]
        return (
            f"{head} rnnx {row['keras_rnnx']:9.1f}  keras {row['keras.layers']:9.1f}"
            f"  /keras {ratio:5.2f}"
        )
    if row["layer"] == "GatedDeltaNet-op":
        ours = row["keras_rnnx"]
        parts = [f"rnnx {ours:9.1f}  masked {row['keras_rnnx_masked']:9.1f}"]
        for impl in ("keras_hub", "fori_loop"):
            if impl in row:
                parts.append(f"{impl} {row[impl]:9.1f} ({row[impl] / ours:5.1f}x)")
        return f"{head} " + "  ".join(parts)
    if row["layer"] == "sLSTM":
        ratio = row["keras_rnnx"] / row["lstm"]
        return f"{head} slstm {row['keras_rnnx']:9.1f}  lstm {row['lstm']:9.1f}  /lstm {ratio:5.2f}"
    if "mlstm_kernels" in row:
        ratio = row["keras_rnnx"] / row["mlstm_kernels"]
        return (
            f"{head} rnnx {row['keras_rnnx']:9.1f}  mlstm_kernels {row['mlstm_kernels']:9.1f}"
            f"  /theirs {ratio:5.2f}"
        )
    loop = row.get("loop")
    kernel = "chunk" if row["layer"] in MATRIX_LAYERS else "scan"
    speedup = f"loop/{kernel} {loop / row['keras_rnnx']:6.1f}" if loop else f"loop/{kernel}      -"
    loop = f"{loop:9.1f}" if loop else "        -"
    return (
        f"{head} {kernel} {row['keras_rnnx']:9.1f}  loop {loop}  lstm {row['lstm']:9.1f}  {speedup}"
        f"  lstm/{kernel} {row['lstm'] / row['keras_rnnx']:5.2f}"
        + (f"  peak {row['peak_mb']:6d} MB" if "peak_mb" in row else "")
    )


def plot(rows, path, layers=SCAN_LAYERS):
    """A PNG: train-step time of `layers` (`SCAN_LAYERS` or `MATRIX_LAYERS`)
    against length, their kernel vs their loop vs an LSTM, per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = list(dict.fromkeys(r["backend"] for r in rows))
    fig, axes = plt.subplots(1, len(backends), figsize=(4.2 * len(backends), 3.6), sharey=True)
    axes = axes if len(backends) > 1 else [axes]
    styles = {"keras_rnnx": "-", "loop": ":", "lstm": "--"}
    kernel = "chunkwise" if layers == MATRIX_LAYERS else "parallel scan"
    names = {"keras_rnnx": kernel, "loop": "step loop", "lstm": "LSTM (fused)"}
    for ax, backend in zip(axes, backends):
        colors = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
        for layer, color in zip(layers, colors):
            mine = [r for r in rows if r["backend"] == backend and r["layer"] == layer]
            mine = [r for r in mine if r["mode"] == "train"]
            for impl, style in styles.items():
                if impl == "lstm" and layer != layers[0]:
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
