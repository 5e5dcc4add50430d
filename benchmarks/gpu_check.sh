#!/usr/bin/env bash
# GPU check for the accelerator machine (device tool), in one call.
#
# Here, once, fetch what that machine lacks (it has torch, jax, pytest, h5py,
# rich, absl-py, ml-dtypes; not keras, namex, optree):
#   bash benchmarks/gpu_check.sh --fetch
# Then run there with carry [".whl"]:
#   bash benchmarks/gpu_check.sh
# It runs the kernel parity and oracle tests, the masked-step property on the
# fused kernels, per-sample resets (torch: segments on cuDNN), streaming, and
# the docs page with a GPU-only block, on CUDA for torch and jax, then
# the benchmark rows (quick: the first shape) and a profile of a masked LSTM
# predict on torch, writing logs and JSON under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--fetch" ]; then
  grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
  for spec in keras==3.15.1 namex optree; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d .whl "$spec"
  done
  ls .whl
  exit 0
fi

out="${OUT:-/tmp/gpu_check}"
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
# One GPU, several test processes: JAX must not take 75% of it in each.
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch, jax; print('torch', torch.__version__, 'jax', jax.__version__, jax.devices())"
status=0
for backend in torch jax; do
  echo "== $backend: parity tests on the GPU"
  KERAS_BACKEND=$backend timeout 150 python3 -m pytest -q -n 8 -p no:cacheprovider \
    tests/kernels tests/layers/test_oracle.py tests/layers/test_projection.py \
    tests/layers/test_reset.py tests/test_streaming.py \
    "tests/test_docs.py::test_code_blocks_run[kernels.md]" \
    "tests/layers/test_masked_steps.py::test_values_at_masked_steps_change_nothing" -k "not (masked_steps and reference)" \
    2>&1 | tee "$out/tests_$backend.log" | tail -8
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
echo "== torch: benchmark"
KERAS_BACKEND=torch timeout 110 python3 benchmarks/bench.py --quick \
  --layers LSTM,GRU,SimpleRNN,LSTMx2,LSTM-bf16,LSTM-proj --json "$out/bench_torch.json" 2>&1 | grep -v -i warn | tee "$out/bench_torch.log"
echo "== torch: profile of a masked LSTM predict (keras-rnnx, torch.nn)"
KERAS_BACKEND=torch timeout 40 python3 benchmarks/profile_masked.py 2>&1 | grep -v -i warn \
  > "$out/profile_masked_torch.log"; grep -A14 "^==" "$out/profile_masked_torch.log" | cut -c1-160
echo "== jax: benchmark (LSTM: cuDNN)"
KERAS_BACKEND=jax timeout 90 python3 benchmarks/bench.py --quick --layers LSTM,LSTMx2 \
  --json "$out/bench_jax.json" 2>&1 | grep -v -i warn | tee "$out/bench_jax.log"
for backend in torch jax; do
  echo "== $backend: parallel scan against the step loop (quick: 256 and 1024 steps)"
  KERAS_BACKEND=$backend timeout 100 python3 benchmarks/bench.py --quick --layers MinGRU,LRU \
    --json "$out/beyond_$backend.json" 2>&1 | grep -v -i warn | tee "$out/beyond_$backend.log"
done
exit $status
