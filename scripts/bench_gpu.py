"""--engine gpu against the threads engine on the lent GPU machine, in one run (issue 28).

Prepared here, run there by scripts/device_gpu.sh (../shared/device/RECIPE.md: the image has
numba-cuda and CUDA; gensim, for the scores, comes from the carried wheels). For each of --models
(sgns, cbow) and each --dims value: the corpus trained with --engine gpu and with --engine threads
at --threads, the same settings, each its own process; words/s of the training and, with --eval,
analogy / WS353 of both. GloVe (in --models): the co-occurrences counted once, then trained on
both engines; entries/s. Also the device-to-device copy bandwidth, measured in the same run, and
the bytes a word (an entry) moves at least, so the rate it would take to be bandwidth-bound.
Results go to stdout and, as they come, to --json-out. Keep it under 8 minutes on the H200.

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
    and written once, dim float32 each. Per word kept by subsampling: words/s count every corpus
    word, so the bound it gives in those is lower than the real one by the kept fraction."""
    rows = 2 * (window + 1) / 2 + 1 + negative
    return rows * dim * 4 * 2


def glove_bytes_per_entry(dim: int) -> float:
    """What a GloVe entry reads and writes at least: two rows and their AdaGrad sums, read and
    written (dim float32 each), the two biases and their sums, and the entry's 12 bytes."""
    return 4 * 2 * (dim + 1) * 2 * 2 + 12


def scores(report: dict) -> dict:
    """Analogy accuracy (percent) and each similarity set's Spearman from `w2v-async eval --json`."""
    accuracy = report["analogies"][0]["accuracy"]
    out = {"analogy": None if accuracy is None else 100 * accuracy}
    out.update({s["dataset"].split(".")[0]: s["spearman"] for s in report["similarities"]})
    return out


def glove_kernel_rates(cooc_path: str, dim: int, repeats: int = 3) -> dict:
    """GloVe's kernel alone at each register cap (models/gpu_glove.glove_kernel's max_registers):
    entries/s over 4M entries drawn from the matrix, by CUDA events after a warm-up launch, the
    engine's launch shape. The simulator runs the compiler's choice only, on a one-warp block."""
    import numpy as np
    from numba import cuda

    from w2v_async.data.cooccur import Cooccurrence
    from w2v_async.models.gpu_glove import glove_kernel, threads_per_block

    simulated = bool(os.environ.get("NUMBA_ENABLE_CUDASIM"))
    cooc = Cooccurrence.load(cooc_path)
    rng = np.random.default_rng(0)
    pick = np.sort(rng.integers(0, cooc.nnz, min(cooc.nnz, 1 << 22)))
    entries = [cuda.to_device(np.ascontiguousarray(a[pick])) for a in (cooc.rows, cooc.cols, cooc.values)]
    n_words = len(cooc.vocab)
    params = [(rng.random(shape, dtype=np.float32) - np.float32(0.5)) / dim for shape in [(n_words, dim)] * 2]
    params += [np.zeros(n_words, np.float32)] * 2
    device = [cuda.to_device(a) for a in params] + [cuda.to_device(np.ones_like(a)) for a in params]
    hyper = cuda.to_device(np.array([10.0, 0.75, 0.05, 100.0]))
    warps, blocks = (1, 1) if simulated else (8, cuda.get_current_device().MULTIPROCESSOR_COUNT * 8)
    out = cuda.device_array((blocks * warps, 2))
    rates = {}
    for cap in [None] if simulated else [None, 64, 48]:
        kernel = glove_kernel(warps, cap)
        launch = kernel[blocks, threads_per_block(warps)]
        launch(*device, *entries, hyper, out)  # compiles
        cuda.synchronize()
        start, end = cuda.event(), cuda.event()
        start.record()
        for _ in range(repeats):
            launch(*device, *entries, hyper, out)
        end.record()
        end.synchronize()
        seconds = start.elapsed_time(end) / 1e3
        rates[f"max_registers={cap}"] = None if simulated else repeats * pick.shape[0] / seconds  # no timing there
    return rates


def run(cmd):
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return {"failed": " ".join(cmd)}
    try:
        summary = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"failed": f"no JSON summary from {' '.join(cmd)}"}
    rate = summary.get("words_per_sec", summary.get("entries_per_sec"))
    return {"train_s": summary["seconds"]["train"], "wall_s": time.perf_counter() - t0, "per_sec": rate,
            "epoch_loss": summary.get("epoch_loss", summary.get("epoch_cost")), "gpu": summary.get("gpu")}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--models", default="sgns,cbow,glove")
    p.add_argument("--dims", default="100,300")
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--glove-epochs", type=int, default=15)
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
    dims = [int(d) for d in args.dims.split(",")]
    models = args.models.split(",")
    common = ["--threads", str(args.threads), "--json", "-q"]
    cooc = os.path.join(args.workdir, "cooc.npz")
    if "glove" in models:
        t0 = time.perf_counter()
        done = subprocess.run([w2v, "cooccur", args.corpus, "-o", cooc, "--window", "10", "--min-count",
                               str(args.min_count), "--threads", str(args.threads), "-q"])
        print(f"co-occurrences counted in {time.perf_counter() - t0:.1f} s (exit {done.returncode})", flush=True)
        if done.returncode != 0:
            models.remove("glove")
        else:
            for dim in dims:
                try:
                    rates = glove_kernel_rates(cooc, dim)
                except Exception as e:  # a benchmark of a knob: the runs below matter more
                    rates = {"failed": repr(e)[:500]}
                results.setdefault("glove_kernel", {})[dim] = rates
                print(f"glove kernel alone, dim {dim}: {json.dumps(rates)}", flush=True)
    for dim in dims:  # dim 100 of every model first: what a timed-out run still brings back
        for model in models:
            for engine in ("gpu", "threads"):
                out = os.path.join(args.workdir, f"{model}-{engine}-{dim}.bin")
                if model == "glove":
                    cmd = [w2v, "train", "--cooccur", cooc, "--model", "glove", "--epochs", str(args.glove_epochs)]
                    need = glove_bytes_per_entry(dim)
                else:
                    cmd = [w2v, "train", args.corpus, "--model", model, "--epochs", str(args.epochs), "--window",
                           str(args.window), "--negative", str(args.negative), "--min-count", str(args.min_count),
                           "--no-cache"]
                    need = bytes_per_word(dim, args.window, args.negative)
                cmd += ["-o", out, "--engine", engine, "--dim", str(dim), *common]
                row = {"model": model, "engine": engine, "dim": dim, **run(cmd)}
                if args.eval and "failed" not in row:
                    done = subprocess.run([w2v, "eval", out, "--json"], capture_output=True, text=True)
                    try:
                        row["eval"] = scores(json.loads(done.stdout))
                    except (ValueError, KeyError, IndexError):
                        row["eval"] = done.stderr[-500:]
                if engine == "gpu" and "per_sec" in row:
                    row["bytes_per_item"] = need
                    row["bandwidth_bound_per_sec"] = results["bandwidth_gbs"] * 1e9 / need
                results["runs"].append(row)
                print(json.dumps(row), flush=True)
                if args.json_out:
                    with open(args.json_out, "w") as f:
                        json.dump(results, f, indent=1)
    by = {(r["model"], r["engine"], r["dim"]): r for r in results["runs"]}
    for model in models:
        for dim in dims:
            g, t = by.get((model, "gpu", dim), {}), by.get((model, "threads", dim), {})
            if "per_sec" in g and "per_sec" in t:
                unit = "entries" if model == "glove" else "words"
                print(f"{model} dim {dim}: gpu {g['per_sec'] / 1e6:.2f}M {unit}/s, threads x{args.threads} "
                      f"{t['per_sec'] / 1e6:.2f}M {unit}/s: {g['per_sec'] / t['per_sec']:.1f}x; bandwidth-bound at "
                      f"{g['bandwidth_bound_per_sec'] / 1e6:.0f}M {unit}/s; scores gpu {g.get('eval')}, threads "
                      f"{t.get('eval')}", flush=True)


if __name__ == "__main__":
    main()
