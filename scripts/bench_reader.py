#!/usr/bin/env python3
"""The corpus reader alone: counting (and counting + encoding) tokens/s at several thread counts,
against gensim's build_vocab on the same file in the same run.

Each measurement reads the whole corpus in this process after a warm-up run (the kernels are
compiled and the file is in the page cache), best of --repeat. gensim's build_vocab (corpus_file)
is single-threaded whatever its workers; it runs once. Usage:

    python scripts/bench_reader.py CORPUS [--threads 1,2] [--repeat 2] [--json-out FILE]
"""

import argparse
import json
import os
import platform
import tempfile
import time

from w2v_async.config import VocabConfig
from w2v_async.data.corpus import CorpusReader
from w2v_async.data.vocab import scan_corpus


def best_of(repeat, fn):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def gensim_build_vocab(corpus: str) -> float:
    from gensim.models import Word2Vec

    model = Word2Vec(min_count=5)
    t0 = time.perf_counter()
    model.build_vocab(corpus_file=corpus)
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--no-gensim", action="store_true")
    p.add_argument("--json-out", default=None)
    args = p.parse_args()
    cfg = VocabConfig(min_count=5)
    reader = CorpusReader(args.corpus)
    scan_corpus(reader, cfg, encode=False, threads=1)  # warm-up: compiles, fills the page cache
    n = reader.stats.n_tokens
    size = sum(os.path.getsize(p) for p in reader.paths)
    print(f"{args.corpus}: {n:,} tokens, {size / 1e6:.0f} MB; {platform.machine()}, {os.cpu_count()} cores", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(args.corpus))) as spill:
        for threads in [int(t) for t in args.threads.split(",")]:
            count = best_of(args.repeat, lambda: scan_corpus(CorpusReader(args.corpus), cfg, encode=False,
                                                             threads=threads))
            encode = best_of(args.repeat, lambda: scan_corpus(CorpusReader(args.corpus), cfg, directory=spill,
                                                              threads=threads))
            rows.append(dict(threads=threads, count_s=count, encode_s=encode))
            print(json.dumps(rows[-1]), flush=True)
    gensim_s = None if args.no_gensim else gensim_build_vocab(args.corpus)
    print("\n| threads | count s | count M tokens/s | count + encode s | M tokens/s | x gensim build_vocab |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{gensim_s / r['count_s']:.1f}" if gensim_s else "-"
        print(f"| {r['threads']} | {r['count_s']:.2f} | {n / r['count_s'] / 1e6:.1f} | {r['encode_s']:.2f} | "
              f"{n / r['encode_s'] / 1e6:.1f} | {ratio} |")
    if gensim_s:
        print(f"\ngensim 4 build_vocab(corpus_file): {gensim_s:.1f} s ({n / gensim_s / 1e6:.1f} M tokens/s)")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"corpus": args.corpus, "tokens": n, "bytes": size, "cores": os.cpu_count(),
                       "rows": rows, "gensim_build_vocab_s": gensim_s}, f, indent=2)


if __name__ == "__main__":
    main()
