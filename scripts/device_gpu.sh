#!/usr/bin/env bash
# Issue 28's GPU checks, one script for the lent GPU machine (../shared/device/RECIPE.md). Prepare
# here with `make device-prep` (the wheels and the corpus, git-ignored), then call the device tool:
#   run  command: bash scripts/device_gpu.sh   carry: [".whl", ".bench-data"]   timeout_s: 590
# It installs the carried wheels without network (the checkout runs as it is), runs
# scripts/bench_gpu.py first (GPU against 16 threads, every model, dim 100 and 300, scores), then
# the GPU kernel tests on the real GPU (the suite runs them in numba's CUDA simulator), then
# scripts/gpu_sanitize.py under compute-sanitizer's racecheck and memcheck. What it writes under
# $OUT (6 files) comes back even when the call times out.
# Here, a check that it runs: NUMBA_ENABLE_CUDASIM=1 CORPUS=tiny.txt DIMS=8 THREADS=2 EPOCHS=1 ...
set -u
OUT=${OUT:-$PWD/device-out}
W=${W:-$PWD/.bench-work}
WHEELS=${WHEELS:-.whl}
mkdir -p "$OUT" "$W"
export PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv; nproc; python3 --version; } > "$OUT/machine.txt" 2>&1
[ -d "$W/site/gensim" ] || python3 -m pip install -q --no-index --no-deps --target "$W/site" "$WHEELS"/*.whl
# the checkout itself, not an install: building it needs a setuptools new enough for its pyproject (>= 77),
# which the image may not have, and no network to fetch one
mkdir -p "$W/bin"
printf '#!/bin/sh\nexec python3 -m w2v_async.cli "$@"\n' > "$W/bin/w2v-async"
chmod +x "$W/bin/w2v-async"
export PYTHONPATH="$PWD:$W/site" PATH="$W/bin:$PATH"
CORPUS=${CORPUS:-$W/c.txt}
[ -s "$CORPUS" ] || gunzip -c .bench-data/registry-en.txt.gz > "$CORPUS"
python3 -c "import numba, numba.cuda as c; print('numba', numba.__version__, 'cuda available', c.is_available())" \
    >> "$OUT/machine.txt" 2>&1
timeout "${BENCH_TIMEOUT:-380}" python3 scripts/bench_gpu.py --corpus "$CORPUS" --dims "${DIMS:-100,300}" \
    --threads "${THREADS:-16}" --epochs "${EPOCHS:-5}" --glove-epochs "${GLOVE_EPOCHS:-15}" \
    --min-count "${MIN_COUNT:-5}" --eval --workdir "$W/bench" --json-out "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log"
W2V_GPU_DEVICE=1 timeout "${TESTS_TIMEOUT:-80}" python3 -m pytest -q -p no:cacheprovider tests/test_gpu_kernels.py \
    2>&1 | tail -30 | tee "$OUT/kernels.log"
# shared-memory hazards between a block's threads and out-of-bounds accesses, on tiny launches
SANITIZER=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer \
    /usr/local/cuda*/compute-sanitizer/compute-sanitizer 2> /dev/null | head -1)
if [ -n "$SANITIZER" ]; then
    for tool in racecheck memcheck; do
        timeout "${SANITIZER_TIMEOUT:-45}" "$SANITIZER" --tool "$tool" --error-exitcode 9 python3 \
            scripts/gpu_sanitize.py > "$OUT/sanitizer-$tool.log" 2>&1
        echo "exit $?" | tee -a "$OUT/sanitizer-$tool.log"
    done
else
    echo "no compute-sanitizer found" | tee "$OUT/sanitizer.log"
fi
