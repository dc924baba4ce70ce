#!/usr/bin/env python3
"""The threaded engine against the Ray engine (Downpour SGD) on one corpus, in one run; with
--model glove, Hogwild AdaGrad, Downpour and Sandblaster L-BFGS on GloVe (glove_engines).

Trains skip-gram with `--engine threads` (T threads) and `--engine ray` (R replicas, M shards),
each as its own `w2v-async` process with the same settings, and reports wall time, words/s,
the Ray run's mean staleness and pushes, and analogy / WS353 / SimLex of both. From the Ray run's
per-batch costs (replica compute, the time it waits for pulls and pushes, the shards' busy time,
the bytes moved) it estimates how Ray throughput would grow with machines (one replica and one
shard each, 10 Gb/s between them). Usage:

    python scripts/bench_engines.py [--corpus FILE] [--threads 2] [--replicas 2] [--ps-shards 2]
    python scripts/bench_engines.py --model glove [--max-iter 200] [--glove-epochs 15]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

from benchlib import measure, quality

HERE = os.path.dirname(os.path.abspath(__file__))
REGISTRY = os.path.join(HERE, "..", "..", "shared", "corpora", "registry-en.txt.gz")
DEMO = os.path.join(HERE, "..", "data", "enwiki.txt")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=REGISTRY if os.path.exists(REGISTRY) else DEMO)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--ps-shards", type=int, default=2)
    p.add_argument("--batch-words", type=int, default=50_000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json-out", default=None)
    p.add_argument("--model", choices=["sgns", "glove"], default="sgns",
                   help="glove: Hogwild AdaGrad (threads), Downpour (ray) and Sandblaster L-BFGS on one "
                        "co-occurrence matrix")
    p.add_argument("--glove-epochs", type=int, default=15, help="glove: epochs of the AdaGrad engines")
    p.add_argument("--max-iter", type=int, default=200, help="glove: Sandblaster's L-BFGS iterations")
    p.add_argument("--unit-entries", type=int, default=250_000, help="glove: Sandblaster's work unit")
    p.add_argument("--glove-batch-words", type=int, default=500_000,
                   help="glove: Downpour's minibatch of entries (the default 50,000 moves 10x the messages)")
    args = p.parse_args()

    w2v = shutil.which("w2v-async") or os.path.join(os.path.dirname(sys.executable), "w2v-async")
    if args.model == "glove":
        return glove_engines(args, w2v)
    tmp = tempfile.mkdtemp(prefix="w2v-engines-bench-")
    common = [args.corpus, "--epochs", str(args.epochs), "--seed", str(args.seed), "-q", "--json"]
    rows = {}
    try:
        out = os.path.join(tmp, "threads.bin")
        wall, rss, s = measure([w2v, "train", *common, "-o", out, "--threads", str(args.threads)])
        rows["threads"] = dict(wall_s=wall, train_s=s["seconds"]["train"], words_per_sec=s["words_per_sec"],
                               peak_rss_mib=rss, **quality(out))
        print("threads", json.dumps(rows["threads"]), flush=True)
        out = os.path.join(tmp, "ray.bin")
        wall, rss, s = measure([w2v, "train", *common, "-o", out, "--engine", "ray", "--replicas", str(args.replicas),
                                "--ps-shards", str(args.ps_shards), "--batch-words", str(args.batch_words)])
        d = s["downpour"]
        rows["ray"] = dict(wall_s=wall, train_s=s["seconds"]["train"], words_per_sec=s["words_per_sec"],
                           driver_rss_mib=rss, mean_staleness=d["mean_staleness"], pushes=d["pushes"],
                           pulled_rows_per_word=d["pulled_rows"] / s["words_trained"],
                           replica_seconds_train=d["seconds_train"], replica_seconds_comm=d["seconds_comm"],
                           shard_seconds_busy=d["seconds_shards"], **quality(out))
        print("ray", json.dumps(rows["ray"]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # per-batch costs measured in the Ray run, and what they predict for more machines
    r = rows["ray"]
    n_batches = r["pushes"]
    per_batch = {
        "replica_compute_s": r["replica_seconds_train"] / n_batches,
        "replica_messages_s": r["replica_seconds_comm"] / n_batches,  # pull + push, as the replica waits
        "shard_busy_s": r["shard_seconds_busy"] / n_batches,  # all shards together
        "bytes": 2 * 2 * r["pulled_rows_per_word"] * args.batch_words * 100 * 4,  # rows in and out, 2 matrices
    }
    print("per batch of {:,} words: replica compute {:.0f} ms, replica waits for messages {:.0f} ms, shards busy "
          "{:.0f} ms, {:.0f} MB moved".format(args.batch_words, 1e3 * per_batch["replica_compute_s"],
                                              1e3 * per_batch["replica_messages_s"], 1e3 * per_batch["shard_busy_s"],
                                              per_batch["bytes"] / 1e6))
    estimate = {}
    for machines in (1, 2, 4, 8, 16, 32):
        # one replica and one shard per machine; messages cross a 10 Gb/s network instead of shared memory
        net_s = per_batch["bytes"] / 1.25e9
        replica_s = per_batch["replica_compute_s"] + max(per_batch["replica_messages_s"], net_s)
        shard_s = per_batch["shard_busy_s"] / machines  # a batch's rows are spread over every shard
        estimate[machines] = machines * args.batch_words / max(replica_s, machines * shard_s)
        print(f"  {machines:2d} machines: about {estimate[machines] / 1e3:,.0f}k words/s")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"corpus": args.corpus, "args": vars(args), "rows": rows,
                       "per_batch": per_batch,
                       "estimate_words_per_sec": estimate}, f, indent=2)


def seconds_to_reach(costs, seconds, target):
    """The first time (seconds[k]) at which costs[k] <= target, or None."""
    return next((t for c, t in zip(costs, seconds) if c <= target), None)


def glove_engines(args, w2v):
    """GloVe three ways on one co-occurrence matrix (registry corpus: min-count 5, window 10, dim
    100, x-max 100): time to reach the AdaGrad engine's final cost, and the vectors' quality.

    The costs are each engine's own report: the AdaGrad engines' epoch cost is summed while the
    parameters move (glove.c's figure), Sandblaster's is the exact batch cost at each iterate;
    an AdaGrad epoch's time is its share of the training time.
    """
    tmp = tempfile.mkdtemp(prefix="w2v-engines-glove-")
    common = ["--model", "glove", "--seed", str(args.seed), "-q", "--json"]
    rows = {}
    try:
        cooc = os.path.join(tmp, "cooc.npz")
        wall, _, s = measure([w2v, "cooccur", args.corpus, "-o", cooc, "--threads", str(args.threads), "-q", "--json"])
        print(f"cooccur: {wall:.1f} s", flush=True)
        runs = {
            "threads (Hogwild AdaGrad)": ["--threads", str(args.threads), "--epochs", str(args.glove_epochs)],
            "ray (Downpour, AdaGrad replicas)": ["--engine", "ray", "--replicas", str(args.replicas), "--ps-shards",
                                                 str(args.ps_shards), "--epochs", str(args.glove_epochs),
                                                 "--batch-words", str(args.glove_batch_words)],
            "sandblaster (L-BFGS)": ["--engine", "sandblaster", "--replicas", str(args.replicas), "--ps-shards",
                                     str(args.ps_shards), "--max-iter", str(args.max_iter), "--batch-words",
                                     str(args.unit_entries)],
        }
        for name, opts in runs.items():
            out = os.path.join(tmp, "vectors.txt")
            wall, rss, s = measure([w2v, "train", "--cooccur", cooc, *common, "-o", out, *opts])
            costs = s["epoch_cost"]
            s.setdefault("downpour", {})
            if "iteration_seconds" in s["downpour"]:
                seconds = s["downpour"]["iteration_seconds"]
            else:
                seconds = [s["seconds"]["train"] * (k + 1) / len(costs) for k in range(len(costs))]
            rows[name] = dict(wall_s=wall, train_s=s["seconds"]["train"], driver_rss_mib=rss, passes=len(costs),
                              batch_passes=s["downpour"].get("batch_passes"), final_cost=costs[-1], costs=costs,
                              seconds=seconds, **quality(out))
            print(name, json.dumps({k: v for k, v in rows[name].items() if k not in ("costs", "seconds")}), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    target = rows["threads (Hogwild AdaGrad)"]["final_cost"]
    print(f"\n| engine | train s | passes | final cost | s to cost {target:.4f} | analogy | WS353 | SimLex |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        reach = seconds_to_reach(r["costs"], r["seconds"], target)
        r["seconds_to_target"] = reach
        print(f"| {name} | {r['train_s']:.1f} | {r['passes']} | {r['final_cost']:.4f} | "
              f"{'not reached' if reach is None else f'{reach:.1f}'} | {100 * r['analogy']:.2f}% | {r['ws353']:.3f} | "
              f"{r['simlex']:.3f} |")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"corpus": args.corpus, "args": vars(args), "target_cost": target, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
