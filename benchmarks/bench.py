"""keras_rnnx vs keras.layers vs the backend's native op, on the current backend.

    KERAS_BACKEND=torch python benchmarks/bench.py [--quick] [--json out.json]
    python benchmarks/bench.py --backend all      # each backend in a subprocess

Rows: LSTM, GRU, SimpleRNN x (batch, steps, features, units) shapes x unmasked /
right-padded mask (lengths uniform in [T/2, T]) x inference (`predict_on_batch`)
/ train step (`train_on_batch`); native ops are in `native.py`. Prints medians
(ms) and ratios; one run, so the ratios compare like with like on a noisy
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import native

BACKENDS = ("tensorflow", "torch", "jax")
SHAPES = ((64, 100, 64, 128), (16, 500, 32, 256))
LAYERS = ("LSTM", "GRU", "SimpleRNN")


def _data(batch, steps, features, units, masked):
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
    model = keras.Model(inputs, getattr(lib, layer)(units)(x))
    model.compile(optimizer="sgd", loss="mse")
    return model


def _keras_fns(lib, layer, shape, masked, x, y):
    model = _keras_model(lib, layer, shape, masked)
    return (lambda: model.predict_on_batch(x)), (lambda: model.train_on_batch(x, y))


def run_backend(quick, layers=LAYERS):
    import keras

    import keras_rnnx

    backend = keras.backend.backend()
    repeats = 3 if quick else 7
    shapes = SHAPES[:1] if quick else SHAPES
    rows = []
    for shape in shapes:
        for layer in layers:
            for masked in (False, True):
                x, y, lengths = _data(*shape, masked)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "torch"))
    parser.add_argument("--quick", action="store_true", help="first shape, 3 repeats")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--layers", default=",".join(LAYERS), help="comma-separated")
    args = parser.parse_args()
    backends = BACKENDS if args.backend == "all" else (args.backend,)
    rows = []
    print(HEADER, flush=True)
    for backend in backends:
        if len(backends) == 1:
            os.environ["KERAS_BACKEND"] = backend
            rows += run_backend(args.quick, args.layers.split(","))
            continue
        out = subprocess.run(
            [sys.executable, __file__, "--backend", backend, "--json", "/dev/stdout"]
            + ["--layers", args.layers]
            + (["--quick"] if args.quick else []),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "KERAS_BACKEND": backend},
        )
        backend_rows = json.loads(out.stdout.strip().splitlines()[-1])
        for row in backend_rows:
            print(_format(row), flush=True)
        rows += backend_rows
    if args.json:
        with open(args.json, "w") as f:
            f.write("\n" + json.dumps(rows) + "\n")


if __name__ == "__main__":
    main()
