#!/usr/bin/env python3
"""GloVe at a 1,000,000-word vocabulary: generate a Zipf corpus, count within --memory, train.

Writes a corpus whose word frequencies follow p(rank) ~ rank^-s over --ids word types (enough
tokens that about a million of them occur), then runs `w2v-async cooccur` and
`w2v-async train --model glove` as separate processes and reports each one's wall time and peak
RSS against the --memory cap. Usage:

    python scripts/bench_glove_scale.py [--tokens 10000000] [--ids 1500000] [--memory 0.5]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

from benchlib import measure, write_zipf_corpus


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=10_000_000)
    p.add_argument("--ids", type=int, default=1_500_000, help="word types to draw from")
    p.add_argument("--exponent", type=float, default=0.8)
    p.add_argument("--memory", type=float, default=0.5, help="GB cap for the counting buffers")
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--dim", type=int, default=50)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    w2v = shutil.which("w2v-async") or os.path.join(os.path.dirname(sys.executable), "w2v-async")
    tmp = tempfile.mkdtemp(prefix="w2v-glove-scale-")
    try:
        corpus, cooc = os.path.join(tmp, "zipf.txt"), os.path.join(tmp, "cooc.npz")
        t0 = time.perf_counter()
        write_zipf_corpus(corpus, args.tokens, args.ids, args.exponent)
        print(f"generated {args.tokens:,} tokens over {args.ids:,} ids in {time.perf_counter() - t0:.1f} s",
              flush=True)
        cooc_s, cooc_rss, summary = measure(
            [w2v, "cooccur", corpus, "-o", cooc, "--min-count", "1", "--window", str(args.window),
             "--memory", str(args.memory), "--threads", str(args.threads), "-q", "--json"])
        output_mib = os.path.getsize(cooc) / 2**20  # the arrays and the vocabulary, as written
        after_read = summary["peak_rss_mib"]["after_reading"]
        print(json.dumps(dict(stage="cooccur", seconds=cooc_s, peak_rss_mib=cooc_rss, vocab=summary["vocab_size"],
                              nnz=summary["nnz"], runs=summary["runs"], rss_after_reading_mib=after_read,
                              counting_rss_mib=cooc_rss - after_read, memory_cap_mib=args.memory * 1024,
                              output_mib=output_mib,
                              within_cap_plus_output=cooc_rss - after_read <= args.memory * 1024 + output_mib)),
              flush=True)
        train_s, train_rss, tsum = measure(
            [w2v, "train", "--model", "glove", "--cooccur", cooc, "-o", os.path.join(tmp, "g.bin"),
             "--dim", str(args.dim), "--epochs", str(args.epochs), "--threads", str(args.threads), "-q", "--json"])
        print(json.dumps(dict(stage="train", seconds=train_s, peak_rss_mib=train_rss,
                              epoch_cost=tsum["epoch_cost"])), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
