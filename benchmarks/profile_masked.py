"""Where a masked LSTM's `predict_on_batch` spends its time on torch: the
profiler's top operators, keras-rnnx beside `torch.nn.LSTM` with packed
sequences (bench.py's first shape, right-padded).

    KERAS_BACKEND=torch python benchmarks/profile_masked.py [--layer GRU]

Run by `gpu_check.sh` on CUDA, where the last GPU run measured 11.7 ms against
torch.nn's 1.8 ms; the table shows whether host syncs (`aten::item`,
`cudaStreamSynchronize`, `aten::_local_scalar_dense`), copies or the kernel
itself take the difference.
"""

from __future__ import annotations

import argparse

import bench
import native


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="LSTM")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    import keras
    import torch
    from torch.profiler import ProfilerActivity, profile

    import keras_rnnx

    shape = bench.SHAPES[0]
    x, y, lengths = bench.make_data(*shape, masked=True)
    model = bench._keras_model(keras_rnnx, args.layer, shape, masked=True)
    runs = {
        "keras_rnnx": lambda: model.predict_on_batch(x),
        "torch.nn": native.torch_fns(args.layer, shape, True, x, y, lengths)[0],
    }
    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    sort = "cuda_time_total" if torch.cuda.is_available() else "cpu_time_total"
    for name, run in runs.items():
        for _ in range(3):
            run()  # warm-up
        with profile(activities=activities) as prof:
            for _ in range(args.steps):
                run()
        print(f"== {name} ({keras.backend.backend()}, {args.steps} calls of {args.layer})")
        print(prof.key_averages().table(sort_by=sort, row_limit=15))
        print(keras_rnnx.explain(model.layers[-1]) if name == "keras_rnnx" else "")


if __name__ == "__main__":
    main()
