#!/usr/bin/env python3
"""w2v-async --subwords against fastText and gensim FastText: same corpus and settings, one run.

Each trainer runs in its own process (its peak RSS its own) and saves a fastText .bin; every .bin is
then read by gensim (load_facebook_vectors) and scored the same way: analogy (semantic /
syntactic), WordSim353, SimLex-999. With --oov-min-count N (default 50) each system trains again
with --min-count N, dropping the analogy questions' rarer words, and answers the questions that
contain them with vectors composed from n-grams (evaluation.composed_analogies). Usage:

    python scripts/bench_subwords.py [--corpus FILE] [--threads 2] [--epochs 5] [--systems ours,gensim,fasttext]
                                     [--fasttext-python /path/to/venv/bin/python] [--oov-min-count 50]

fastText is never a dependency of ours: --fasttext-python names an interpreter that has its Python
package (pip install fasttext-wheel in a separate virtual environment); without one it is skipped.
Defaults are fastText's: dim 100, window 5, 5 epochs, negative 5, minn 3, maxn 6, bucket 2M,
sample 1e-4, min-count 5; each system keeps its own default learning rate unless --alpha is given.
"""

import argparse
import gzip
import json
import os
import platform
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REGISTRY = os.path.join(HERE, "..", "..", "shared", "corpora", "registry-en.txt.gz")
SYSTEMS = ("ours", "gensim", "fasttext")


def run_worker(args) -> None:
    """One trainer in this process (ours runs as the w2v-async command); prints one JSON line."""
    t0 = time.perf_counter()
    if args.worker == "fasttext":  # only fastText and the standard library here: its own environment
        import fasttext

        kw = {} if args.alpha is None else {"lr": args.alpha}
        model = fasttext.train_unsupervised(
            input=args.corpus, model="skipgram" if args.model == "sgns" else "cbow", dim=args.dim, ws=args.window,
            epoch=args.epochs, neg=args.negative, minCount=args.min_count, minn=args.minn, maxn=args.maxn,
            t=args.sample, thread=args.threads, bucket=args.bucket, verbose=0, **kw)
        train_s = time.perf_counter() - t0
        model.save_model(args.output)
        print(json.dumps({"train_s": train_s, "vocab_size": len(model.words)}))
        return
    import logging

    from gensim.models.fasttext import FastText, save_facebook_model

    logging.basicConfig(level=logging.WARNING)
    kw = {} if args.alpha is None else {"alpha": args.alpha}
    model = FastText(vector_size=args.dim, window=args.window, epochs=args.epochs, negative=args.negative,
                     min_count=args.min_count, min_n=args.minn, max_n=args.maxn, sample=args.sample,
                     workers=args.threads, bucket=args.bucket, sg=int(args.model == "sgns"), **kw)
    model.build_vocab(corpus_file=args.corpus)
    t1 = time.perf_counter()
    model.train(corpus_file=args.corpus, total_examples=model.corpus_count, total_words=model.corpus_total_words,
                epochs=args.epochs)
    t2 = time.perf_counter()
    save_facebook_model(model, args.output)
    print(json.dumps({"vocab_s": t1 - t0, "train_s": t2 - t1, "vocab_size": len(model.wv)}))


def shared_flags(args, min_count):
    return ["--dim", str(args.dim), "--window", str(args.window), "--epochs", str(args.epochs), "--negative",
            str(args.negative), "--minn", str(args.minn), "--maxn", str(args.maxn), "--bucket", str(args.bucket),
            "--sample", str(args.sample), "--min-count", str(min_count), "--threads", str(args.threads)]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=REGISTRY)
    p.add_argument("--systems", default="ours,gensim,fasttext")
    p.add_argument("--fasttext-python", default=os.environ.get("FASTTEXT_PYTHON"))
    p.add_argument("--model", choices=["sgns", "cbow"], default="sgns")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negative", type=int, default=5)
    p.add_argument("--minn", type=int, default=3)
    p.add_argument("--maxn", type=int, default=6)
    p.add_argument("--bucket", type=int, default=2_000_000)
    p.add_argument("--sample", type=float, default=1e-4)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--oov-min-count", type=int, default=50, help="0: no OOV runs")
    p.add_argument("--alpha", type=float, default=None, help="every system's starting rate (default: each its own)")
    p.add_argument("--json-out", default=None)
    p.add_argument("--worker", choices=["gensim", "fasttext"], help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return run_worker(args)

    from benchlib import measure

    from w2v_async.evaluation import composed_analogies, default_analogy_sets, default_similarity_sets, evaluate
    from w2v_async.io import load_vectors

    systems = [s for s in args.systems.split(",") if s != "fasttext" or args.fasttext_python]
    if "fasttext" in args.systems and not args.fasttext_python:
        print("fasttext skipped: give --fasttext-python (an interpreter with fasttext-wheel installed)", file=sys.stderr)
    tmp = tempfile.mkdtemp(prefix="w2v-subwords-")
    rows, trained = [], []
    try:
        plain = args.corpus
        if plain.endswith(".gz"):  # every system reads the same plain text
            plain = os.path.join(tmp, "corpus.txt")
            with gzip.open(args.corpus, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        w2v = shutil.which("w2v-async") or os.path.join(os.path.dirname(sys.executable), "w2v-async")
        for min_count in [args.min_count] + ([args.oov_min_count] if args.oov_min_count else []):
            for system in systems:
                out = os.path.join(tmp, f"{system}-{min_count}.bin")
                worker = [__file__, "--worker", system, "--corpus", plain, "--output", out, "--model", args.model]
                worker += [f"--{k.replace('_', '-')}={v}" for k, v in (("threads", args.threads), ("epochs", args.epochs),
                           ("dim", args.dim), ("window", args.window), ("negative", args.negative), ("minn", args.minn),
                           ("maxn", args.maxn), ("bucket", args.bucket), ("sample", args.sample),
                           ("min_count", min_count))] + ([f"--alpha={args.alpha}"] if args.alpha else [])
                if system == "ours":
                    cmd = [w2v, "train", plain, "-o", out, "--subwords", "--model", args.model, "-q", "--json",
                           "--no-cache"] + shared_flags(args, min_count) + (["--alpha", str(args.alpha)] if args.alpha else [])
                else:
                    cmd = [args.fasttext_python if system == "fasttext" else sys.executable] + worker
                wall, rss, res = measure(cmd)
                trained.append((system, min_count, out, res["seconds"]["train"] if system == "ours" else res["train_s"],
                                wall, rss))
        # scored once every trainer has run: a process forked from this one after it loaded vectors
        # would count their pages in its peak RSS
        for system, min_count, out, train_s, wall, rss in trained:
            kv = load_vectors(out)
            report = evaluate(kv, out, default_analogy_sets(), default_similarity_sets())
            a = report.analogies[0]
            row = dict(system=system, min_count=min_count, train_s=train_s, wall_s=wall, rss_mib=rss,
                       vocab=len(kv), analogy=a.accuracy, semantic=a.semantic, syntactic=a.syntactic,
                       ws353=report.similarities[0].spearman, simlex=report.similarities[1].spearman,
                       composed=composed_analogies(kv, default_analogy_sets()[0]) if min_count != args.min_count
                       else None)
            print(json.dumps(row), flush=True)
            rows.append(row)
            os.unlink(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\ncorpus {args.corpus}; {args.model}, {args.threads} threads, dim {args.dim}, window {args.window}, "
          f"negative {args.negative}, minn {args.minn}, maxn {args.maxn}, bucket {args.bucket}, sample {args.sample}, "
          f"epochs {args.epochs}; machine {platform.machine()}, {os.cpu_count()} cores")
    print("\n| system | min-count | train s | wall s | peak RSS MiB | vocab | analogy | semantic | syntactic | WS353 | "
          "SimLex | unseen-word questions answered | right |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        c = r["composed"]
        print(f"| {r['system']} | {r['min_count']} | {r['train_s']:.1f} | {r['wall_s']:.1f} | {r['rss_mib']:.0f} | "
              f"{r['vocab']:,} | {100 * r['analogy']:.2f}% | {100 * (r['semantic'] or 0):.2f}% | "
              f"{100 * (r['syntactic'] or 0):.2f}% | {r['ws353']:.3f} | {r['simlex']:.3f} | "
              + (f"{c['answered']:,} | {100 * (c['accuracy'] or 0):.2f}% |" if c else "- | - |"))
    base = [r for r in rows if r["min_count"] == args.min_count]
    ours = next((r for r in base if r["system"] == "ours"), None)
    for other in (r for r in base if r["system"] != "ours"):
        if ours:
            print(f"ours vs {other['system']}: training {other['train_s'] / ours['train_s']:.2f}x, whole process "
                  f"{other['wall_s'] / ours['wall_s']:.2f}x; analogy {100 * (ours['analogy'] - other['analogy']):+.2f} "
                  f"points, WS353 {ours['ws353'] - other['ws353']:+.3f}, SimLex {ours['simlex'] - other['simlex']:+.3f}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
