"""`fit` and `predict` of a small model with `jit_compile=True` and `False`:
keras_rnnx vs keras.layers, on the current backend.

    KERAS_BACKEND=torch python benchmarks/compile.py [--layers LSTM,GRU] [--masked both]

Model: Input(50 steps, 16 features) -> [Masking] -> layer(64) -> Dense(1), 256
rows in batches of 32, Adam. Each row runs in a fresh process (and, on torch, a
fresh Inductor cache), so the first epoch's time is what a user's first `fit`
costs, compilation included; `epoch` is the median of 3 more epochs, `predict`
the second `predict` of all rows. One run: compare within a row.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROWS, STEPS, FEATURES, UNITS, BATCH = 256, 50, 16, 64, 32


def measure(lib_name, layer, masked, jit_compile):
    import keras
    from bench import make_data

    import keras_rnnx

    lib = keras_rnnx if lib_name == "keras_rnnx" else keras.layers
    x, y, _ = make_data(ROWS, STEPS, FEATURES, 1, masked)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((STEPS, FEATURES))
    h = keras.layers.Masking(0.0)(inputs) if masked else inputs
    model = keras.Model(inputs, keras.layers.Dense(1)(getattr(lib, layer)(UNITS)(h)))
    model.compile("adam", "mse", jit_compile=jit_compile)

    def timed(fn):
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    fit = lambda: model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)  # noqa: E731
    predict = lambda: model.predict(x, batch_size=BATCH, verbose=0)  # noqa: E731
    first_epoch = timed(fit)
    epoch = statistics.median(timed(fit) for _ in range(3))
    first_predict = timed(predict)
    return {
        "first_epoch_s": round(first_epoch, 2),
        "epoch_s": round(epoch, 3),
        "first_predict_s": round(first_predict, 2),
        "predict_s": round(timed(predict), 3),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="LSTM,GRU")
    parser.add_argument("--masked", choices=("yes", "no", "both"), default="both")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)  # lib layer masked jit
    args = parser.parse_args()
    if args.one:
        lib, layer, masked, jit_compile = args.one
        print(json.dumps(measure(lib, layer, masked == "1", jit_compile == "1")))
        return
    backend = os.environ.get("KERAS_BACKEND", "torch")
    masks = {"yes": (True,), "no": (False,), "both": (False, True)}[args.masked]
    print(
        f"{'backend':10} {'layer':9} {'mask':5} {'jit':5} {'':12} "
        f"{'1st epoch s':>11} {'epoch s':>8} {'1st predict s':>13} {'predict s':>9}"
    )
    rows = []
    for layer in args.layers.split(","):
        for masked in masks:
            for jit_compile, lib in itertools.product(
                (True, False), ("keras_rnnx", "keras.layers")
            ):
                with tempfile.TemporaryDirectory() as cache:
                    env = {**os.environ, "KERAS_BACKEND": backend}
                    env["TORCHINDUCTOR_CACHE_DIR"] = cache
                    out = subprocess.run(
                        [sys.executable, __file__, "--one", lib, layer]
                        + [str(int(masked)), str(int(jit_compile))],
                        capture_output=True,
                        text=True,
                        check=True,
                        env=env,
                    )
                row = {"backend": backend, "layer": layer, "masked": masked}
                row |= {"jit_compile": jit_compile, "impl": lib}
                row |= json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(
                    f"{backend:10} {layer:9} {'right' if masked else 'none':5} "
                    f"{str(jit_compile):5} {lib:12} "
                    f"{row['first_epoch_s']:11.2f} {row['epoch_s']:8.3f} "
                    f"{row['first_predict_s']:13.2f} {row['predict_s']:9.3f}",
                    flush=True,
                )
    if args.json:
        with open(args.json, "w") as f:
            f.write(json.dumps(rows) + "\n")


if __name__ == "__main__":
    main()
