#!/usr/bin/env python3
"""The whole w2v-async GloVe pipeline on a corpus: each stage's wall time and peak RSS, then quality.

Stages run as separate `w2v-async` processes (vocab -> cooccur -> train), so each stage's peak
RSS is its own. Usage:

    python scripts/bench_glove.py [--corpus FILE] [--x-max 100 10] [--threads 2] [--epochs 15]
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
    p.add_argument("--x-max", type=float, nargs="+", default=[100.0, 10.0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--memory", type=float, default=1.0)
    p.add_argument("--json-out", default=None)
    args = p.parse_args()

    w2v = shutil.which("w2v-async") or os.path.join(os.path.dirname(sys.executable), "w2v-async")
    tmp = tempfile.mkdtemp(prefix="w2v-glove-bench-")
    rows = []
    try:
        vocab, cooc = os.path.join(tmp, "vocab.tsv"), os.path.join(tmp, "cooc.npz")
        common = ["--min-count", str(args.min_count)]
        vocab_s, vocab_rss, _ = measure([w2v, "vocab", args.corpus, "-o", vocab, "-q", "--json"] + common)
        cooc_s, cooc_rss, cooc_summary = measure(
            [w2v, "cooccur", args.corpus, "--vocab", vocab, "-o", cooc, "--window", str(args.window),
             "--memory", str(args.memory), "--threads", str(args.threads), "-q", "--json"] + common)
        print(f"vocab {vocab_s:.1f} s ({vocab_rss:.0f} MiB); cooccur {cooc_s:.1f} s ({cooc_rss:.0f} MiB, "
              f"{cooc_summary['nnz']:,} non-zero, {cooc_summary['runs']} runs)", flush=True)
        for x_max in args.x_max:
            for which in ("word+context", "word"):
                out = os.path.join(tmp, f"glove-{x_max}-{which}.bin")
                train_s, train_rss, summary = measure(
                    [w2v, "train", "--model", "glove", "--cooccur", cooc, "-o", out, "--x-max", str(x_max),
                     "--epochs", str(args.epochs), "--dim", str(args.dim), "--threads", str(args.threads),
                     "--vectors", which, "-q", "--json"])
                rows.append(dict(
                    x_max=x_max, vectors=which, vocab_s=vocab_s, cooccur_s=cooc_s, train_wall_s=train_s,
                    train_s=summary["seconds"]["train"], total_s=vocab_s + cooc_s + train_s,
                    peak_rss_mib=max(vocab_rss, cooc_rss, train_rss), nnz=cooc_summary["nnz"],
                    final_cost=summary["epoch_cost"][-1], **quality(out),
                ))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\ncorpus {args.corpus}; dim {args.dim}, window {args.window}, min-count {args.min_count}, "
          f"{args.epochs} epochs, {args.threads} threads, --memory {args.memory} GB")
    print("\n| x-max | vectors | vocab s | cooccur s | train s (wall) | pipeline s | peak RSS MiB | analogy | WS353 | SimLex |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['x_max']:g} | {r['vectors']} | {r['vocab_s']:.1f} | {r['cooccur_s']:.1f} | "
              f"{r['train_s']:.1f} ({r['train_wall_s']:.1f}) | {r['total_s']:.1f} | {r['peak_rss_mib']:.0f} | "
              f"{100 * r['analogy']:.2f}% | {r['ws353']:.3f} | {r['simlex']:.3f} |")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
