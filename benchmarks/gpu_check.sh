#!/usr/bin/env bash
# GPU check for the accelerator machine (device tool), in one call.
#
# Here, once, fetch what that machine lacks (it has torch, jax, pytest, h5py,
# rich, absl-py, ml-dtypes, scikit-learn; not keras, namex, optree):
#   bash benchmarks/gpu_check.sh --fetch
# Then run there with carry [".whl"]:
#   bash benchmarks/gpu_check.sh
# It runs the kernel parity and oracle tests on CUDA for torch and jax, then
# the benchmark rows, writing logs and JSON under $OUT.
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
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
status=0
for backend in torch jax; do
  echo "== $backend: parity tests on the GPU"
  KERAS_BACKEND=$backend python3 -m pytest -q -x -p no:cacheprovider \
    tests/kernels tests/layers/test_oracle.py 2>&1 | tee "$out/tests_$backend.log" | tail -5
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  echo "== $backend: benchmark"
  KERAS_BACKEND=$backend python3 benchmarks/bench.py --quick --json "$out/bench_$backend.json" \
    2>&1 | tee "$out/bench_$backend.log" | grep -v -i warn
done
exit $status
