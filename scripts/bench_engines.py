#!/usr/bin/env python3
"""The threaded engine against the Ray engine (Downpour SGD) on one corpus, in one run.

Trains skip-gram with `--engine threads` (T threads) and `--engine ray` (R replicas, M shards),
each as its own `w2v-async` process with the same settings, and reports wall time, words/s,
the Ray run's mean staleness and pushes, and analogy / WS353 / SimLex of both. From the Ray run's
per-batch costs (replica compute, the time it waits for pulls and pushes, the shards' busy time,
the bytes moved) it estimates how Ray throughput would grow with machines (one replica and one
shard each, 10 Gb/s between them). Usage:

    python scripts/bench_engines.py [--corpus FILE] [--threads 2] [--replicas 2] [--ps-shards 2]
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
    args = p.parse_args()

    w2v = shutil.which("w2v-async") or os.path.join(os.path.dirname(sys.executable), "w2v-async")
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


if __name__ == "__main__":
    main()
