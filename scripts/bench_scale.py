#!/usr/bin/env python3
"""w2v-async against gensim corpus_file at N tokens: counting, one training epoch and cooccur, with
tokens/s and peak anonymous memory of each stage, in one run on one machine.

Generates a synthetic corpus in a temporary folder: a Zipf vocabulary that grows with N as real text
does (Heaps' law, V = 34 N^0.55 types to draw from: about 240k at 10M tokens, 850k at 100M, 3M at 1B),
20 words a line. Each stage runs as its own process; its peak anonymous memory (RssAnon, sampled from
/proc) leaves out file pages the kernel can drop. Usage:

    python scripts/bench_scale.py [--tokens 1000000000] [--threads 2] [--tmp-dir DIR]
                                  [--skip gensim,gensim-train,cooccur,train] [--corpus FILE]
                                  [--cooccur-max-final-vocab N]

--corpus measures a corpus already on disk (one generated earlier, say) instead of generating one.
cooccur's output grows with the distinct word pairs, not the tokens: at 1B synthetic tokens with
its 3M-word vocabulary about 3.4 billion (41 GB); --cooccur-max-final-vocab 400000 (GloVe's
published vocabulary size) keeps it near 20 GB. The peak growth of the disk under --tmp-dir is
reported for each stage (the runs, the output and the cache).

Counting is compared two ways: whole processes (start-up included), and in-process seconds (our
`vocab --json` seconds against gensim's own build_vocab timing). gensim-train (build_vocab + one
epoch) takes about an hour at 1B tokens on 2 cores; skip it there.
"""

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

from benchlib import measure_memory, word_strings, write_zipf_corpus

HERE = os.path.dirname(os.path.abspath(__file__))


def heaps_types(n_tokens: int) -> int:
    """Word types to draw from for a corpus of n_tokens (Heaps' law, fitted to a few million at 1B)."""
    return int(34 * n_tokens ** 0.55)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=1_000_000_000)
    p.add_argument("--exponent", type=float, default=1.05, help="Zipf exponent of the word frequencies")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--tmp-dir", default=None, help="where the corpus and outputs go (needs ~7 bytes a token)")
    p.add_argument("--skip", default="", help="comma-separated stages to leave out: gensim (both), gensim-train, "
                                              "cooccur, train")
    p.add_argument("--window", type=int, default=10, help="cooccur's window")
    p.add_argument("--memory", type=float, default=1.0, help="cooccur's --memory (GB)")
    p.add_argument("--cooccur-max-final-vocab", type=int, default=None,
                   help="cooccur on the most frequent N words only (its output grows with the distinct pairs)")
    p.add_argument("--corpus", default=None, help="measure this corpus instead of generating one")
    p.add_argument("--json-out", default=None)
    args = p.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    w2v = shutil.which("w2v-async") or os.path.join(os.path.dirname(sys.executable), "w2v-async")
    tmp = tempfile.mkdtemp(prefix="w2v-scale-", dir=args.tmp_dir)
    rows = []

    def stage(name, cmd, tokens, seconds_key=None):
        wall, rss, anon, summary, disk = measure_memory(cmd, disk=tmp)
        seconds = wall if seconds_key is None else seconds_key(summary)
        row = dict(stage=name, wall_s=wall, seconds=seconds, tokens_per_s=(tokens or 0) / seconds, peak_anon_mib=anon,
                   peak_rss_mib=rss, peak_disk_gb=disk / 1e9)
        rows.append(row)
        print(json.dumps(row), flush=True)
        return summary

    try:
        if args.corpus:
            corpus, n = args.corpus, None  # the tokens, from the vocabulary stage
        else:
            corpus = os.path.join(tmp, "corpus.txt")
            n_types = heaps_types(args.tokens)
            t0 = time.perf_counter()
            write_zipf_corpus(corpus, args.tokens, n_types, args.exponent, names=word_strings(n_types))
            print(f"generated {args.tokens:,} tokens over {n_types:,} types, {os.path.getsize(corpus) / 1e9:.2f} GB, "
                  f"in {time.perf_counter() - t0:.0f} s", flush=True)
            n = args.tokens
        vocab = os.path.join(tmp, "vocab.tsv")
        common = ["--min-count", str(args.min_count), "-q", "--json"]
        summary = stage("w2v-async: count the vocabulary",
                        [w2v, "vocab", corpus, "-o", vocab, "--threads", str(args.threads)] + common, n)
        rows[-1].update(count_s=summary["seconds"])
        if n is None:
            n = summary["tokens"]
            rows[-1].update(tokens_per_s=n / rows[-1]["seconds"])
            print(f"{corpus}: {n:,} tokens, {os.path.getsize(corpus) / 1e9:.2f} GB", flush=True)
        print(f"vocabulary: {summary['vocab_size']:,} words with count >= {args.min_count}", flush=True)
        if "train" not in skip:
            train = [w2v, "train", corpus, "--vocab", vocab, "-o", os.path.join(tmp, "v.bin"), "--epochs", "1",
                     "--threads", str(args.threads)] + common
            summary = stage("w2v-async: read + encode + 1 epoch (whole process)", train, n)
            rows[-1].update(scan_s=summary["seconds"]["scan"], train_s=summary["seconds"]["train"])
        if "cooccur" not in skip:
            top = args.cooccur_max_final_vocab
            limit = [] if top is None else ["--max-final-vocab", str(top)]
            summary = stage(f"w2v-async: cooccur (window {args.window}, --memory {args.memory:g}"
                            + ("" if top is None else f", top {top:,} words") + ")",
                            [w2v, "cooccur", corpus, "--vocab", vocab, "-o", os.path.join(tmp, "c.npz"), "--window",
                             str(args.window), "--memory", str(args.memory), "--threads", str(args.threads)]
                            + limit + common, n)
            rows[-1].update(nnz=summary["nnz"], runs=summary["runs"], run_entries=summary["run_entries"],
                            compactions=summary["compactions"], vocab_size=summary["vocab_size"],
                            scan_s=summary["seconds"]["scan"], count_s=summary["seconds"]["count"],
                            output_gb=os.path.getsize(os.path.join(tmp, "c.npz")) / 1e9)
            print(f"cooccur: {summary['nnz']:,} non-zero entries over {summary['vocab_size']:,} words "
                  f"({rows[-1]['output_gb']:.1f} GB) from {summary['run_entries']:,} spilled entries, "
                  f"{summary['compactions']} compaction(s); its corpus came in {summary['seconds']['scan']:.1f} s "
                  "(from the cache that train stored, when train ran)", flush=True)
            os.remove(os.path.join(tmp, "c.npz"))
        if "gensim" not in skip:
            gensim = [sys.executable, os.path.join(HERE, "bench_vs_gensim.py"), "--worker", "gensim", "--model", "sgns",
                      "--gensim-mode", "corpus_file", "--corpus", corpus, "--output", os.path.join(tmp, "g.bin"),
                      "--threads", str(args.threads), "--min-count", str(args.min_count)]
            summary = stage("gensim corpus_file: build_vocab (whole process)", gensim + ["--epochs", "0"], n)
            rows[-1].update(vocab_s=summary["vocab_s"])
            if "gensim-train" not in skip:
                summary = stage("gensim corpus_file: build_vocab + 1 epoch (whole process)", gensim + ["--epochs", "1"],
                                n)
                rows[-1].update(vocab_s=summary["vocab_s"], train_s=summary["train_s"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{n:,} tokens; {args.threads} threads; {platform.machine()}, {os.cpu_count()} cores")
    print("\n| stage | seconds | tokens/s | peak anonymous MiB | peak RSS MiB | peak disk GB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['stage']} | {r['seconds']:.1f} | {r['tokens_per_s']:,.0f} | {r['peak_anon_mib']:,.0f} | "
              f"{r['peak_rss_mib']:,.0f} | {r['peak_disk_gb']:.1f} |")
    ours = next(r for r in rows if r["stage"].startswith("w2v-async: count"))
    theirs = next((r for r in rows if r["stage"].startswith("gensim corpus_file: build_vocab (")), None)
    if theirs is not None:
        print(f"\ncounting, whole processes: w2v-async {ours['wall_s']:.1f} s against gensim {theirs['wall_s']:.1f} s "
              f"({theirs['wall_s'] / ours['wall_s']:.2f}x); in-process: {ours['count_s']:.1f} s against gensim "
              f"build_vocab {theirs['vocab_s']:.1f} s ({theirs['vocab_s'] / ours['count_s']:.2f}x)")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
