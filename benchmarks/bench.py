"""keras_rnnx vs keras.layers vs the backend's native op, on the current backend.

    KERAS_BACKEND=torch python benchmarks/bench.py [--quick] [--json out.json]
    python benchmarks/bench.py --backend all      # each backend in a subprocess
    python benchmarks/bench.py --plot speedup.png --from results/cpu_*.json

Rows: LSTM, GRU, SimpleRNN, two stacked LSTM and GRU cells (`LSTMx2`:
`RNN([cell, cell])`, natively `num_layers=2`), LSTM and GRU under
`mixed_bfloat16` (`-bf16`; natively bfloat16 throughout) and an LSTM with
`proj_size = units / 2` (`LSTM-proj`; keras.layers has none, so its column is
Keras's own `keras.layers.RNN` loop over the projected cell; natively torch's
`proj_size`) x (batch, steps,
features, units) shapes x unmasked / right-padded mask (lengths uniform in
[T/2, T]) x inference (`predict_on_batch`) / train step (`train_on_batch`);
native ops are in `native.py`. Prints medians
(ms) and ratios; one run, so the ratios compare like with like on a noisy
machine. `--layers ConvLSTM2D,MinGRU,...` (or `beyond`: all of `beyond.LAYERS`;
`scan`, `matrix`, `delta`: a family) gives the rows of the cells beyond Keras's
(`beyond.py`); `--plot-scan` and `--plot-chunk` plot the families'.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import beyond
import native

BACKENDS = ("tensorflow", "torch", "jax")
SHAPES = ((64, 100, 64, 128), (16, 500, 32, 256))
LAYERS = (
    "LSTM",
    "GRU",
    "SimpleRNN",
    "LSTMx2",
    "GRUx2",
    "LSTM-bf16",
    "GRU-bf16",
    "LSTM-proj",
)


def make_data(batch, steps, features, units, masked):
    import numpy as np

    rng = np.random.RandomState(0)
    x = rng.randn(batch, steps, features).astype("float32")
    lengths = rng.randint(steps // 2, steps + 1, size=batch) if masked else None
    if masked:
        x[np.arange(steps)[None, :] >= lengths[:, None]] = 0.0
    y = rng.randn(batch, units).astype("float32")
    return x, y, lengths


def _medians_ms(fns, repeats):
    """Median time of each of `fns` (a dict), run in turn so that a shared
    machine's slow spells fall on all of them alike."""
    for fn in fns.values():
        fn()
        fn()  # warm-up: tracing, compilation, allocator
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: round(statistics.median(t), 2) for name, t in times.items()}


def _keras_model(lib, layer, shape, masked):
    import keras

    batch, steps, features, units = shape
    inputs = keras.Input((steps, features), batch_size=batch)
    x = keras.layers.Masking(0.0)(inputs) if masked else inputs
    family, depth, dtype = native.variant(layer)
    proj = native.projection(layer, units)
    if proj and lib is keras.layers:  # Keras's loop over the projected cell
        import keras_rnnx

        rnn = keras.layers.RNN(keras_rnnx.LSTMCell(units, proj_size=proj))
    elif proj:
        rnn = lib.LSTM(units, proj_size=proj)
    elif depth > 1:  # keras.layers' nearest equivalent of a multi-layer RNN
        rnn = lib.RNN([getattr(lib, f"{family}Cell")(units) for _ in range(depth)])
    else:
        rnn = getattr(lib, family)(units, dtype=None if dtype == "float32" else f"mixed_{dtype}")
    model = keras.Model(inputs, rnn(x))
    model.compile(optimizer="sgd", loss="mse")
    return model


def _keras_fns(lib, layer, shape, masked, x, y):
    model = _keras_model(lib, layer, shape, masked)
    return (lambda: model.predict_on_batch(x)), (lambda: model.train_on_batch(x, y))


def run_backend(quick, layers=LAYERS, steps=None):
    import keras

    import keras_rnnx

    backend = keras.backend.backend()
    repeats = 3 if quick else 7
    shapes = SHAPES[:1] if quick else SHAPES
    rows = []
    for row in beyond.rows(backend, layers, quick, _medians_ms, steps):
        rows.append(row)
        print(beyond.format_row(row), flush=True)
    for shape in shapes:
        for layer in (name for name in layers if name not in beyond.LAYERS):
            for masked in (False, True):
                x, y, lengths = make_data(*shape, masked)
                y = y[:, : native.projection(layer, shape[-1])]  # the output's width
                impls = {
                    "keras_rnnx": _keras_fns(keras_rnnx, layer, shape, masked, x, y),
                    "keras.layers": _keras_fns(keras.layers, layer, shape, masked, x, y),
                }
                impls["native"] = native.FNS[backend](layer, shape, masked, x, y, lengths)
                for mode, index in (("infer", 0), ("train", 1)):
                    row = {
                        "backend": backend,
                        "layer": layer,
                        "shape": list(shape),
                        "masked": masked,
                        "mode": mode,
                    }
                    row |= _medians_ms({n: fns[index] for n, fns in impls.items()}, repeats)
                    rows.append(row)
                    print(_format(row), flush=True)
    return rows


def _format(row):
    if row["layer"] in beyond.LAYERS:
        return beyond.format_row(row)
    ratio = row["keras_rnnx"] / min(row["keras.layers"], row["native"])
    vs_keras = row["keras_rnnx"] / row["keras.layers"]
    return (
        f"{row['backend']:10} {row['layer']:9} {'x'.join(map(str, row['shape'])):15} "
        f"{'right' if row['masked'] else 'none':5} {row['mode']:5} "
        f"{row['keras_rnnx']:9.1f} {row['keras.layers']:9.1f} {row['native']:9.1f} "
        f"{vs_keras:8.2f} {ratio:8.2f}"
    )


HEADER = (
    f"{'backend':10} {'layer':9} {'BxTxFxU':15} {'mask':5} {'mode':5} "
    f"{'rnnx ms':>9} {'keras ms':>9} {'native ms':>9} {'/keras':>8} {'/best':>8}"
)


def in_subprocesses(script, backends, options, format_row):
    """Run `script --backend B --json /dev/stdout *options` for each backend,
    printing and returning its rows (the last line of its output)."""
    rows = []
    for backend in backends:
        out = subprocess.run(
            [sys.executable, script, "--backend", backend, "--json", "/dev/stdout", *options],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "KERAS_BACKEND": backend},
        )
        backend_rows = json.loads(out.stdout.strip().splitlines()[-1])
        for row in backend_rows:
            print(format_row(row), flush=True)
        rows += backend_rows
    return rows


def write_json(rows, path):
    if path:
        with open(path, "w") as f:
            f.write("\n" + json.dumps(rows) + "\n")


def _label(row):
    mask = "masked" if row["masked"] else "unmasked"
    return f"{row['layer']} {'x'.join(map(str, row['shape']))} {mask} {row['mode']}"


def plot(results, path):
    """A PNG of keras.layers time / keras_rnnx time per row (right of 1: faster),
    one panel per results file, on one log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(_label(row) for rows in results.values() for row in rows))
    every = [r["keras.layers"] / r["keras_rnnx"] for rows in results.values() for r in rows]
    limits = (min(0.5, min(every) / 1.3), max(30, max(every) * 1.8))
    height = len(labels) * 0.24 + 1.3
    fig, axes = plt.subplots(
        1, len(results), figsize=(3.8 * len(results) + 1.6, height), sharey=True, sharex=True
    )
    axes = axes if len(results) > 1 else [axes]
    for ax, (title, rows) in zip(axes, results.items()):
        speedups = {_label(r): r["keras.layers"] / r["keras_rnnx"] for r in rows}
        values = [speedups.get(label, float("nan")) for label in labels]
        # Bars grow from 1 (no change): right is faster than keras.layers.
        ax.barh(
            range(len(labels)),
            [v - 1 for v in values],
            left=1,
            color=["tab:green" if v >= 1 else "tab:red" for v in values],
        )
        for y, v in enumerate(values):
            if v == v:  # a row this file lacks is NaN
                ax.text(max(v, 1) * 1.04, y, f"{v:.2f}x", va="center", fontsize=6.5)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50) if limits[0] <= t <= limits[1]]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xlim(*limits)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("speed-up over keras.layers")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(labels)), labels, fontsize=7)
    axes[0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "torch"))
    parser.add_argument("--quick", action="store_true", help="first shape, 3 repeats")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--layers", default=",".join(LAYERS), help="comma-separated")
    parser.add_argument(
        "--steps", help="comma-separated lengths: only these rows of the layers beyond Keras's"
    )
    parser.add_argument("--plot", help="write a PNG of the speed-ups over keras.layers here")
    parser.add_argument("--plot-scan", help="write a PNG of the parallel-scan rows here")
    parser.add_argument("--plot-chunk", help="write a PNG of the chunkwise rows here")
    parser.add_argument(
        "--from", dest="saved", nargs="+", help="plot these --json files instead of running"
    )
    args = parser.parse_args()
    families = {"beyond": beyond.LAYERS, "scan": beyond.SCAN_LAYERS}
    families["matrix"] = (*beyond.MATRIX_LAYERS, "mLSTM-op")
    families["delta"] = ("DeltaNet", "GatedDeltaNet", "GatedDeltaNet-op", "sLSTM", "RGLRU")
    args.layers = ",".join(families.get(args.layers, [args.layers]))
    if args.saved:
        if not (args.plot or args.plot_scan or args.plot_chunk):
            parser.error("--from needs --plot, --plot-scan or --plot-chunk")
        results = {}
        for path in args.saved:
            with open(path) as f:
                results[os.path.splitext(os.path.basename(path))[0]] = json.loads(f.read())
        if args.plot:
            plot(results, args.plot)
        _plot_beyond([r for rows in results.values() for r in rows], args)
        return
    backends = BACKENDS if args.backend == "all" else (args.backend,)
    print(HEADER, flush=True)
    if len(backends) == 1:
        os.environ["KERAS_BACKEND"] = backends[0]
        steps = [int(t) for t in args.steps.split(",")] if args.steps else None
        rows = run_backend(args.quick, args.layers.split(","), steps)
    else:
        options = ["--layers", args.layers] + (["--quick"] if args.quick else [])
        options += ["--steps", args.steps] if args.steps else []
        rows = in_subprocesses(__file__, backends, options, _format)
    write_json(rows, args.json)
    classic = [r for r in rows if r["layer"] not in beyond.LAYERS]
    if args.plot and classic:
        plot({b: [r for r in classic if r["backend"] == b] for b in backends}, args.plot)
    _plot_beyond(rows, args)


def _plot_beyond(rows, args):
    for path, layers in (
        (args.plot_scan, beyond.SCAN_LAYERS),
        (args.plot_chunk, beyond.MATRIX_LAYERS),
    ):
        if path:
            beyond.plot([r for r in rows if r["layer"] in layers], path, layers)


if __name__ == "__main__":
    main()
