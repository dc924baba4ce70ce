#!/usr/bin/env python3
"""What checkpointing costs: the same training with and without --checkpoint-dir, in one run.

For skip-gram (the default) and GloVe, trains once without checkpoints and once with a checkpoint
every --every minutes plus every epoch end, each as its own `w2v-async` process, and reports the
training time of both, the number of checkpoints, the seconds each took (the threads wait while
one is written) and its size on disk. Then times loading the newest checkpoint. Usage:

    python scripts/bench_checkpoint.py [--corpus FILE] [--threads 2] [--every 0.25] [--glove-epochs 3]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

from benchlib import measure

HERE = os.path.dirname(os.path.abspath(__file__))
REGISTRY = os.path.join(HERE, "..", "..", "shared", "corpora", "registry-en.txt.gz")
DEMO = os.path.join(HERE, "..", "data", "enwiki.txt")


def run_pair(w2v, tmp, name, train_args, every):
    """Train without, then with checkpoints; returns a result row."""
    plain_out, ck_out = os.path.join(tmp, f"{name}-plain.bin"), os.path.join(tmp, f"{name}-ck.bin")
    ck = os.path.join(tmp, f"{name}-ck")
    _, _, plain = measure([w2v, "train", *train_args, "-o", plain_out, "-q", "--json"])
    _, rss, with_ck = measure([w2v, "train", *train_args, "-o", ck_out, "-q", "--json",
                               "--checkpoint-dir", ck, "--checkpoint-every", str(every)])
    sizes = [os.path.getsize(os.path.join(ck, f)) for f in os.listdir(ck)]
    from w2v_async.io import load_checkpoint

    t0 = time.perf_counter()
    load_checkpoint(ck)
    load_s = time.perf_counter() - t0
    seconds = with_ck["seconds"]["checkpoints"]
    row = {
        "model": name, "train_s": plain["seconds"]["train"], "train_with_checkpoints_s": with_ck["seconds"]["train"],
        "checkpoints": len(seconds), "checkpoint_s_mean": sum(seconds) / len(seconds),
        "checkpoint_s_max": max(seconds), "checkpoint_mb": max(sizes) / 1e6, "load_s": load_s,
        "peak_rss_mib": rss,
    }
    print(f"{name}: train {row['train_s']:.1f} s without checkpoints, {row['train_with_checkpoints_s']:.1f} s with "
          f"{row['checkpoints']} ({row['checkpoint_s_mean']:.2f} s each on average, max "
          f"{row['checkpoint_s_max']:.2f} s, {row['checkpoint_mb']:.1f} MB each); loading one: {load_s:.2f} s",
          flush=True)
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=REGISTRY if os.path.exists(REGISTRY) else DEMO)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--every", type=float, default=0.25, help="minutes between timed checkpoints")
    p.add_argument("--glove-epochs", type=int, default=3)
    p.add_argument("--json-out", default=None)
    args = p.parse_args()

    w2v = shutil.which("w2v-async") or os.path.join(os.path.dirname(sys.executable), "w2v-async")
    tmp = tempfile.mkdtemp(prefix="w2v-ckpt-bench-")
    try:
        common = ["--dim", str(args.dim), "--threads", str(args.threads)]
        rows = [run_pair(w2v, tmp, "sgns", [args.corpus, *common], args.every)]
        cooc = os.path.join(tmp, "cooc.npz")
        measure([w2v, "cooccur", args.corpus, "-o", cooc, "--threads", str(args.threads), "-q", "--json"])
        rows.append(run_pair(w2v, tmp, "glove", ["--model", "glove", "--cooccur", cooc, "--epochs",
                                                  str(args.glove_epochs), *common], args.every))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"corpus": args.corpus, "threads": args.threads, "every_min": args.every, "rows": rows}, f,
                      indent=2)


if __name__ == "__main__":
    main()
