"""An epoch of `model.fit` on realistic models: keras_rnnx vs keras.layers.

    python benchmarks/fit.py                   # the current backend (KERAS_BACKEND)
    python benchmarks/fit.py --backend all     # each backend in a subprocess
    python benchmarks/fit.py --models text --json fit.json

Models, each built twice from the same code (`keras_rnnx.X` or `keras.layers.X`),
trained on generated data for 20 steps of 64 rows (Adam):

- `text`: `Embedding(5000, 64, mask_zero=True)` over sequences of 100 token ids,
  each 20-100 long, padded by `keras.utils.pad_sequences` (on the left, its
  default), then `Bidirectional(LSTM(128, return_sequences=True))`, `GRU(64)`,
  `Dense(1, sigmoid)`;
- `digits`: the guide's classifier: 28 rows of 28 pixels, `LSTM(64)`,
  `BatchNormalization`, `Dense(10)`;
- `stacked`: `RNN([LSTMCell(128), LSTMCell(128)])` over 100 steps of 64 features,
  then `Dense(1)`.

On torch the same models in plain torch run too (`native`: `torch.nn` layers,
the text model's rows packed). The implementations take turns, an epoch each,
after one warm-up epoch each (tracing); medians of `--rounds` epochs in
seconds. One run: compare within a row; the machine is shared.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time

from bench import BACKENDS, in_subprocesses, write_json

MODELS = ("text", "digits", "stacked")
STEPS_PER_EPOCH, BATCH = 20, 64


def make_model(name, lib):
    import keras

    keras.utils.set_random_seed(0)
    if name == "text":
        return keras.Sequential(
            [
                keras.Input((100,), dtype="int32"),
                keras.layers.Embedding(5000, 64, mask_zero=True),
                lib.Bidirectional(lib.LSTM(128, return_sequences=True)),
                lib.GRU(64),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
    if name == "digits":
        return keras.Sequential(
            [
                keras.Input((28, 28)),
                lib.LSTM(64),
                keras.layers.BatchNormalization(),
                keras.layers.Dense(10),
            ]
        )
    cells = [lib.LSTMCell(128), lib.LSTMCell(128)]
    return keras.Sequential([keras.Input((100, 64)), lib.RNN(cells), keras.layers.Dense(1)])


def make_data(name, seed=0):
    import keras
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = STEPS_PER_EPOCH * BATCH
    if name == "text":
        lengths = rng.integers(20, 101, size=rows)
        tokens = [rng.integers(1, 5000, size=n) for n in lengths]
        x = keras.utils.pad_sequences(tokens, maxlen=100)
        return x, rng.integers(0, 2, size=(rows, 1)).astype("float32")
    if name == "digits":
        x = rng.random((rows, 28, 28), dtype=np.float32)
        return x, rng.integers(0, 10, size=(rows,))
    return rng.normal(size=(rows, 100, 64)).astype("float32"), rng.normal(size=(rows, 1))


LOSSES = {
    "text": "binary_crossentropy",
    "digits": "sparse_categorical_crossentropy",
    "stacked": "mse",
}


def torch_epoch(name, x, y):
    """An epoch of the same model in plain torch (`torch.nn` layers, packed
    sequences for the masked text, Adam), or None where there is none."""
    import torch

    torch.manual_seed(0)
    nn = torch.nn
    if name == "text":

        class Text(nn.Module):
            def __init__(self):
                super().__init__()
                self.embedding = nn.Embedding(5000, 64, padding_idx=0)
                self.lstm = nn.LSTM(64, 128, batch_first=True, bidirectional=True)
                self.gru = nn.GRU(256, 64, batch_first=True)
                self.dense = nn.Linear(64, 1)

            def forward(self, tokens):
                # Left-padded rows: pack the real tokens, moved to the front.
                lengths = (tokens != 0).sum(1)
                order = torch.argsort((tokens == 0).int(), dim=1, stable=True)
                tokens = torch.gather(tokens, 1, order)
                pack = nn.utils.rnn.pack_padded_sequence(
                    self.embedding(tokens), lengths, batch_first=True, enforce_sorted=False
                )
                h, _ = self.lstm(pack)
                _, h = self.gru(h)
                return self.dense(h[0])

        model, loss = Text(), nn.BCEWithLogitsLoss()
        x, y = torch.tensor(x, dtype=torch.long), torch.tensor(y)
    elif name == "digits":

        class Digits(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(28, 64, batch_first=True)
                self.norm, self.dense = nn.BatchNorm1d(64), nn.Linear(64, 10)

            def forward(self, x):
                return self.dense(self.norm(self.lstm(x)[1][0][0]))

        model, loss = Digits(), nn.CrossEntropyLoss()
        x, y = torch.tensor(x), torch.tensor(y, dtype=torch.long)
    else:

        class Stacked(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(64, 128, num_layers=2, batch_first=True)
                self.dense = nn.Linear(128, 1)

            def forward(self, x):
                return self.dense(self.lstm(x)[1][0][-1])

        model, loss = Stacked(), nn.MSELoss()
        x, y = torch.tensor(x), torch.tensor(y, dtype=torch.float32)
    optimizer = torch.optim.Adam(model.parameters())

    def epoch():
        for start in range(0, len(x), BATCH):
            optimizer.zero_grad()
            value = loss(model(x[start : start + BATCH]), y[start : start + BATCH])
            value.backward()
            optimizer.step()
        return value.item()

    return epoch


def run_backend(models, rounds):
    import keras

    import keras_rnnx

    libs = {"keras_rnnx": keras_rnnx, "keras.layers": keras.layers}
    rows = []
    for name in models:
        x, y = make_data(name)
        epochs = {}
        for lib_name, lib in libs.items():
            model = make_model(name, lib)
            loss = LOSSES[name]
            if name == "digits":
                loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            model.compile("adam", loss)
            epochs[lib_name] = functools.partial(
                model.fit, x, y, batch_size=BATCH, epochs=1, verbose=0
            )
        if keras.backend.backend() == "torch":
            epochs["native"] = torch_epoch(name, x, y)
        for epoch in epochs.values():
            epoch()  # traces
        times = {lib_name: [] for lib_name in epochs}
        for _ in range(rounds):
            for lib_name, epoch in epochs.items():
                start = time.perf_counter()
                epoch()
                times[lib_name].append(time.perf_counter() - start)
        row = {"backend": keras.backend.backend(), "model": name}
        row.update({k: round(statistics.median(v), 3) for k, v in times.items()})
        rows.append(row)
        print(_format(row), flush=True)
    return rows


HEADER = f"{'backend':10} {'model':8} {'rnnx s':>8} {'keras s':>8} {'native s':>8} {'/keras':>7}"


def _format(row):
    ratio = row["keras_rnnx"] / row["keras.layers"]
    native = f"{row['native']:8.2f}" if "native" in row else f"{'-':>8}"
    return (
        f"{row['backend']:10} {row['model']:8} {row['keras_rnnx']:8.2f} "
        f"{row['keras.layers']:8.2f} {native} {ratio:7.2f}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "torch"))
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs per implementation")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    models = args.models.split(",")
    print(HEADER, flush=True)
    if args.backend != "all":
        os.environ["KERAS_BACKEND"] = args.backend
        rows = run_backend(models, args.rounds)
    else:
        options = ["--models", args.models, "--rounds", str(args.rounds)]
        rows = in_subprocesses(__file__, BACKENDS, options, _format)
    write_json(rows, args.json)


if __name__ == "__main__":
    main()
