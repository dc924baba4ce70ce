"""--engine gpu against the threads engine on the lent GPU machine, in one run (issue 28).

Prepared here, run there (../shared/device/RECIPE.md: the image has numba-cuda and CUDA; gensim,
for the scores, comes from the carried wheels). For each --dims value: skip-gram on the corpus with
--engine gpu and with --engine threads at --threads, the same settings, each its own process;
words/s of the training, and analogy / WS353 of both (with --eval). Also the device-to-device copy
bandwidth, measured in the same run, and the bytes a word moves at least (every row its windows
read and write), so the words/s it would take to be bandwidth-bound. Results go to stdout and, as
they come, to --json-out. Keep it under 8 minutes on the H200 (5 epochs of the 8.6M-word corpus:
a few seconds a run on the GPU, 10-60 s at 16 threads).

    python scripts/bench_gpu.py --corpus registry-en.txt --dims 100,300 --threads 16 --epochs 5 --eval

Here, in numba's CUDA simulator, only as a check that it runs (tiny corpus, --dims 8, no --eval).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time


def bandwidth_gbs() -> float:
    """Device-to-device copy bandwidth (read + write bytes per second), numba.cuda, after a warm-up."""
    import numpy as np
    from numba import cuda

    n = 1 << 28 if not os.environ.get("NUMBA_ENABLE_CUDASIM") else 1 << 10
    a = cuda.to_device(np.ones(n, np.float32))
    b = cuda.device_array_like(a)
    b.copy_to_device(a)
    cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        b.copy_to_device(a)
    cuda.synchronize()
    return 10 * 2 * 4 * n / (time.perf_counter() - t0) / 1e9


def bytes_per_word(dim: int, window: int, negative: int) -> float:
    """Rows a kept word's HogBatch window reads and writes at least: about `window` contexts (a
    reduced window averages (window + 1) / 2 a side) and 1 + negative output rows, each read once
    and written once, dim float32 each."""
    rows = 2 * (window + 1) / 2 + 1 + negative
    return rows * dim * 4 * 2


def run(cmd, out=None):
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return {"failed": " ".join(cmd)}
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {"train_s": summary["seconds"]["train"], "wall_s": time.perf_counter() - t0,
            "words_per_sec": summary["words_per_sec"], "epoch_loss": summary["epoch_loss"], "gpu": summary.get("gpu")}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--dims", default="100,300")
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negative", type=int, default=5)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--eval", action="store_true", help="analogy and WS353 of each run's vectors (needs gensim)")
    p.add_argument("--workdir", default="bench-gpu-work")
    p.add_argument("--json-out", default=None)
    args = p.parse_args()
    w2v = shutil.which("w2v-async") or os.path.join(os.path.dirname(sys.executable), "w2v-async")
    os.makedirs(args.workdir, exist_ok=True)
    results = {"bandwidth_gbs": bandwidth_gbs(), "runs": []}
    print(f"device-to-device copy: {results['bandwidth_gbs']:.0f} GB/s", flush=True)
    for dim in [int(d) for d in args.dims.split(",")]:
        for engine in ("gpu", "threads"):
            out = os.path.join(args.workdir, f"{engine}-{dim}.bin")
            cmd = [w2v, "train", args.corpus, "-o", out, "--engine", engine, "--dim", str(dim), "--epochs",
                   str(args.epochs), "--window", str(args.window), "--negative", str(args.negative), "--min-count",
                   str(args.min_count), "--threads", str(args.threads), "--json", "-q", "--no-cache"]
            row = {"engine": engine, "dim": dim, **run(cmd)}
            if args.eval and "failed" not in row:
                done = subprocess.run([w2v, "eval", out, "--json"], capture_output=True, text=True)
                row["eval"] = json.loads(done.stdout) if done.returncode == 0 else done.stderr[-500:]
            if engine == "gpu" and "words_per_sec" in row:
                need = bytes_per_word(dim, args.window, args.negative)
                row["bytes_per_word"] = need
                row["bandwidth_bound_words_per_sec"] = results["bandwidth_gbs"] * 1e9 / need
            results["runs"].append(row)
            print(json.dumps(row), flush=True)
            if args.json_out:
                with open(args.json_out, "w") as f:
                    json.dump(results, f, indent=1)
    by = {(r["engine"], r["dim"]): r for r in results["runs"]}
    for dim in [int(d) for d in args.dims.split(",")]:
        g, t = by.get(("gpu", dim), {}), by.get(("threads", dim), {})
        if "words_per_sec" in g and "words_per_sec" in t:
            print(f"dim {dim}: gpu {g['words_per_sec'] / 1e6:.2f}M words/s, threads x{args.threads} "
                  f"{t['words_per_sec'] / 1e6:.2f}M words/s: {g['words_per_sec'] / t['words_per_sec']:.1f}x; "
                  f"bandwidth-bound at {g['bandwidth_bound_words_per_sec'] / 1e6:.0f}M words/s")


if __name__ == "__main__":
    main()
