#!/usr/bin/env python3
"""Thread scaling of every mode, beside gensim corpus_file, in one run on one machine.

Reads the corpus once, then trains each mode for one epoch at each thread count in this process
(skip-gram window and pair, CBOW, GloVe training, co-occurrence counting) and prints words/s (GloVe:
entries/s), speedup over the fewest threads and parallel efficiency; gensim corpus_file trains
skip-gram in a worker process at --gensim-threads. Writes JSON and, with matplotlib installed
(pip install -r scripts/requirements.txt), a PNG of throughput against threads with the ideal line.

    python scripts/bench_scaling.py [--corpus FILE] [--threads 1,2,4,8,16] [--modes window,pair,cbow,glove,cooccur]
                                    [--gensim-threads 1,16|none] [--json-out scaling.json] [--plot scaling.png]

Diagnostics for what limits scaling (--diagnose):
  * "window, no hot-row copies": the default mode with every row shared (no private copies);
  * "N processes x 1 thread": N independent one-thread processes at once, the machine's own
    ceiling (clock, memory bandwidth) for N-way work that shares nothing;
  * --quality-threads T: five epochs of the default mode at T threads, evaluated.
"""

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from w2v_async.engines import threads as trainer

from w2v_async.models import hot_rows as hot
from w2v_async.config import GloveConfig, VocabConfig, Word2VecConfig
from w2v_async.data.cooccur import count_cooccurrences
from w2v_async.data.encoded import EncodedCorpus
from w2v_async.data.vocab import read_corpus

HERE = os.path.dirname(os.path.abspath(__file__))
REGISTRY = os.path.join(HERE, "..", "..", "shared", "corpora", "registry-en.txt.gz")
DEMO = os.path.join(HERE, "..", "data", "enwiki.txt")
MODES = {"window": ("sgns", "window"), "pair": ("sgns", "pair"), "cbow": ("cbow", None)}


def word2vec_rate(vocab, enc, mode, threads, epochs=1, copies=True, hot_bytes=None, staleness=None):
    """Words/s of one run (training time only) and the run's result.

    copies=False trains without private hot-row copies; hot_bytes and staleness replace
    models.hot_rows.HOT_ROWS_BYTES and HOT_ROW_STALENESS for this run (diagnostics).
    """
    model, batching = MODES[mode]
    saved = trainer.hot_rows, hot.HOT_ROWS_BYTES, hot.HOT_ROW_STALENESS
    if not copies:
        trainer.hot_rows = lambda *args: 0
    hot.HOT_ROWS_BYTES = hot_bytes or hot.HOT_ROWS_BYTES
    hot.HOT_ROW_STALENESS = staleness or hot.HOT_ROW_STALENESS
    try:
        res = trainer.train_word2vec(enc, vocab, Word2VecConfig(model=model, batching=batching, threads=threads,
                                                                epochs=epochs), progress=False)
    finally:
        trainer.hot_rows, hot.HOT_ROWS_BYTES, hot.HOT_ROW_STALENESS = saved
    return res.words_per_sec, res


def one_process_worker(corpus):
    """--worker: one thread, one epoch of the default mode; prints words/s."""
    _, vocab, enc = read_corpus(corpus, VocabConfig())
    print(json.dumps({"words_per_sec": word2vec_rate(vocab, enc, "window", 1)[0]}))


def processes_rate(corpus, n):
    """Summed words/s of n one-thread processes started together (each reads the corpus first)."""
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", "--corpus", corpus], stdout=subprocess.PIPE,
                              text=True) for _ in range(n)]
    rates = [json.loads(p.communicate()[0].strip().splitlines()[-1])["words_per_sec"] for p in procs]
    return sum(rates)


def gensim_rate(corpus, threads):
    """Words/s of gensim corpus_file skip-gram, one epoch, in bench_vs_gensim.py's worker process."""
    out = tempfile.mktemp(suffix=".bin")
    cmd = [sys.executable, os.path.join(HERE, "bench_vs_gensim.py"), "--worker", "gensim", "--model", "sgns",
           "--gensim-mode", "corpus_file", "--corpus", corpus, "--output", out, "--epochs", "1",
           "--threads", str(threads)]
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    if os.path.exists(out):
        os.remove(out)
    return res["words_per_sec"]


def quality(vocab, res):
    from w2v_async.evaluation import default_analogy_sets, default_similarity_sets, evaluate
    from w2v_async.io import keyed_vectors

    report = evaluate(keyed_vectors(vocab.words, res.w_in), "run", default_analogy_sets(), default_similarity_sets())
    return {"analogy": report.analogies[0].accuracy, "ws353": report.similarities[0].spearman,
            "simlex": report.similarities[1].spearman}


def table(rows):
    print("\n| mode | threads | rate /s | speedup | parallel efficiency |")
    print("|---|---|---|---|---|")
    for r in rows:
        base = min((x for x in rows if x["mode"] == r["mode"]), key=lambda x: x["threads"])
        speedup = r["rate"] / base["rate"]
        r["speedup"], r["efficiency"] = speedup, speedup * base["threads"] / r["threads"]
        print(f"| {r['mode']} | {r['threads']} | {r['rate']:,.0f} | {speedup:.2f}x | {100 * r['efficiency']:.0f}% |")


def plot(rows, path):
    try:
        import matplotlib
    except ImportError:
        print("no plot: matplotlib is not installed; pip install -r scripts/requirements.txt", file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for mode in dict.fromkeys(r["mode"] for r in rows):
        pts = sorted((r["threads"], r["rate"]) for r in rows if r["mode"] == mode)
        (line,) = ax.plot(*zip(*pts), marker="o", label=mode)
        t0, r0 = pts[0]
        ax.plot([p[0] for p in pts], [r0 * p[0] / t0 for p in pts], ls=":", color=line.get_color())
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("threads")
    ax.set_ylabel("words/s (GloVe, cooccur: entries/s, words/s); dotted: ideal")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=REGISTRY if os.path.exists(REGISTRY) else DEMO)
    p.add_argument("--threads", default="1,2,4,8,16")
    p.add_argument("--modes", default="window,pair,cbow,glove,cooccur")
    p.add_argument("--gensim-threads", default=None,
                   help="thread counts for gensim corpus_file (skip-gram); default: the fewest and the most of "
                        "--threads; 'none' skips")
    p.add_argument("--diagnose", action="store_true", help="add the no-copies and N-processes rows")
    p.add_argument("--variants", action="store_true",
                   help="at the most threads: each word2vec mode without hot-row copies, with 4x and 16x the "
                        "hot-row bytes, and with twice the staleness budget")
    p.add_argument("--base-repeats", type=int, default=1,
                   help="runs at the fewest threads (the efficiency baseline); the median counts")
    p.add_argument("--quality-threads", default="", help="thread counts for a 5-epoch default-mode run, evaluated")
    p.add_argument("--json-out", default="scaling.json")
    p.add_argument("--plot", default="scaling.png")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="w2v-scaling-")
    try:
        corpus = args.corpus
        if corpus.endswith(".gz"):  # gensim corpus_file and the worker processes read plain text
            corpus = os.path.join(tmp, "corpus.txt")
            with gzip.open(args.corpus, "rb") as src, open(corpus, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        if args.worker:
            return one_process_worker(corpus)
        run(args, corpus, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, corpus, tmp):
    threads = [int(x) for x in args.threads.split(",")]
    modes = args.modes.split(",")
    t0 = time.perf_counter()
    _, vocab, enc = read_corpus(corpus, VocabConfig())
    print(f"corpus {args.corpus}: {enc.n_words:,} words, vocabulary {len(vocab):,} [{time.perf_counter() - t0:.1f} s]",
          flush=True)
    rows, extra = [], []

    def record(mode, t, rate, into=rows, **more):
        into.append(dict(mode=mode, threads=t, rate=rate, **more))
        print(json.dumps(into[-1]), flush=True)

    # compile every kernel first (numba caches them), on the first 200 sentences
    small = EncodedCorpus(enc.ids[: enc.sent_starts[200]], enc.sent_starts[:201])
    for mode in MODES:
        word2vec_rate(vocab, small, mode, 2)
    trainer.train_glove(count_cooccurrences(small, vocab, window=10, tmp_dir=tmp), GloveConfig(epochs=1, threads=1),
                        progress=False)
    for mode in [m for m in modes if m in MODES]:
        for t in threads:
            repeats = args.base_repeats if t == min(threads) else 1
            runs = sorted((word2vec_rate(vocab, enc, mode, t) for _ in range(repeats)), key=lambda x: x[0])
            rate, res = runs[len(runs) // 2]
            record(mode, t, rate, runs=[x[0] for x in runs], loss=res.epoch_loss)
    if args.variants:
        most = max(threads)
        variants = {"no hot-row copies": dict(copies=False),
                    "hot rows x4": dict(hot_bytes=4 * hot.HOT_ROWS_BYTES),
                    "hot rows x16": dict(hot_bytes=16 * hot.HOT_ROWS_BYTES),
                    "staleness x2": dict(staleness=2 * hot.HOT_ROW_STALENESS)}
        for mode in [m for m in modes if m in MODES]:
            for name, kw in variants.items():
                rate, res = word2vec_rate(vocab, enc, mode, most, **kw)
                record(f"{mode}, {name}", most, rate, extra, loss=res.epoch_loss, variant=True)
    if args.diagnose:
        for t in threads:
            record("window, no hot-row copies", t, word2vec_rate(vocab, enc, "window", t, copies=False)[0], extra)
        for t in sorted({min(threads), max(threads)}):  # each process reads the corpus: two points only
            record("N processes x 1 thread", t, processes_rate(corpus, t), extra)
    cooc = None
    if "cooccur" in modes or "glove" in modes:
        for t in threads if "cooccur" in modes else [max(threads)]:
            t1 = time.perf_counter()
            cooc = count_cooccurrences(enc, vocab, window=10, threads=t, tmp_dir=tmp)
            seconds = time.perf_counter() - t1
            if "cooccur" in modes:
                record("cooccur (words/s)", t, enc.n_words / seconds, seconds=seconds)
    if "glove" in modes:
        for t in threads:
            res = trainer.train_glove(cooc, GloveConfig(epochs=1, threads=t), progress=False)
            record("glove (entries/s)", t, res.entries_trained / res.seconds)
    if args.gensim_threads is None:
        args.gensim_threads = f"{min(threads)},{max(threads)}"
    for t in [int(x) for x in args.gensim_threads.split(",") if x and x != "none"]:
        record("gensim corpus_file sgns", t, gensim_rate(corpus, t))
    for t in [int(x) for x in args.quality_threads.split(",") if x]:
        rate, res = word2vec_rate(vocab, enc, "window", t, epochs=5)
        record("quality: window, 5 epochs", t, rate, extra, loss=res.epoch_loss, **quality(vocab, res))

    import numba

    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; python "
          f"{platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}")
    table(rows + [r for r in extra if not r["mode"].startswith("quality") and not r.get("variant")])
    for r in extra:
        if r.get("variant"):
            base = next(x for x in rows if x["mode"] == r["mode"].split(",")[0] and x["threads"] == r["threads"])
            print(f"{r['mode']}: {r['rate'] / base['rate']:.2f}x the default at {r['threads']} threads; "
                  f"loss {r['loss'][0]:.4f} (default {base.get('loss', [float('nan')])[0]:.4f})")
    with open(args.json_out, "w") as f:
        json.dump({"args": vars(args), "machine": platform.machine(), "cores": os.cpu_count(), "rows": rows,
                   "extra": extra}, f, indent=2)
    plot(rows, args.plot)


if __name__ == "__main__":
    main()
