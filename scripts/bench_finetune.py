"""Fine-tuning (--init) against training from scratch and gensim's update path, in one run.

The corpus is split by lines: A = the first half (the "general" text), B = the second (the
"domain"). For each seed, on the same machine and settings:

- scratch-B: ours trained on B alone;
- A-only: ours trained on A (also saved with --save-model);
- init: ours on B with --init A's model file (--init-vocab extend);
- init-vectors: ours on B with --init A's vectors file (no output rows: what a plain file costs);
- init-lock-0.25, init-alpha-0.01: init with --lock-factor 0.25, or with --alpha 0.01 (how much of
  A is kept against how much B moves it);
- gensim-update: gensim Word2Vec on A, then build_vocab(B, update=True) and train on B;
- scratch-AB: ours on A + B.

Each is scored on gensim's analogy, WordSim353 and SimLex-999 sets, and on the words new in B (in
B's vocabulary, not A's): for each, its 10 nearest neighbours in the A+B model, and the mean cosine
to them in the model scored ("new-word agreement": do the new words land where training on
everything puts them?), and the share of those 10 among its own 10 nearest. Usage:

    python scripts/bench_finetune.py [--corpus FILE] [--seeds 1,2,3] [--threads 2] [--epochs 5]
"""

import argparse
import gzip
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

from benchlib import measure, quality

HERE = os.path.dirname(os.path.abspath(__file__))
REGISTRY = os.path.join(HERE, "..", "..", "shared", "corpora", "registry-en.txt.gz")
DEMO = os.path.join(HERE, "..", "data", "enwiki.txt")
NEIGHBOURS = 10


def gensim_update(args) -> None:
    """Worker process: gensim Word2Vec on A, then build_vocab(B, update=True) and train on B."""
    import logging

    from gensim.models import Word2Vec

    logging.basicConfig(level=logging.WARNING)
    model = Word2Vec(vector_size=args.dim, window=args.window, negative=args.negative, sample=args.sample,
                     min_count=args.min_count, workers=args.threads, epochs=args.epochs, seed=args.seed, sg=1)
    model.build_vocab(corpus_file=args.a)
    model.train(corpus_file=args.a, total_examples=model.corpus_count, total_words=model.corpus_total_words,
                epochs=args.epochs)
    t0 = time.perf_counter()
    model.build_vocab(corpus_file=args.b, update=True)
    model.train(corpus_file=args.b, total_examples=model.corpus_count, total_words=model.corpus_total_words,
                epochs=args.epochs)
    t1 = time.perf_counter()
    model.wv.save_word2vec_format(args.output, binary=True)
    print(json.dumps({"update_s": t1 - t0, "vocab_size": len(model.wv)}))


def vocabulary(path):
    from w2v_async.io import load_vectors

    return load_vectors(path)


def new_word_agreement(reference, scored, new_words):
    """Over the new words: the mean cosine, in scored, to their NEIGHBOURS nearest in reference, and
    the share of those neighbours among the NEIGHBOURS nearest in scored (the overlap, which a
    model whose vectors all share one direction cannot inflate as it inflates cosines); and how
    many words were scored."""
    cosines, overlaps = [], []
    for w in new_words:
        if w not in scored.key_to_index or w not in reference.key_to_index:
            continue
        near = [n for n, _ in reference.most_similar(w, topn=NEIGHBOURS) if n in scored.key_to_index]
        if near:
            cosines.append(float(np.mean([scored.similarity(w, n) for n in near])))
            mine = {n for n, _ in scored.most_similar(w, topn=NEIGHBOURS)}
            overlaps.append(len(mine.intersection(near)) / NEIGHBOURS)
    mean = (lambda v: float(np.mean(v)) if v else float("nan"))
    return mean(cosines), mean(overlaps), len(cosines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=REGISTRY if os.path.exists(REGISTRY) else DEMO)
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negative", type=int, default=5)
    p.add_argument("--sample", type=float, default=1e-3)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--new-words", type=int, default=300, help="how many of B's new words to score (most frequent)")
    p.add_argument("--json-out", default=None)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--a", help=argparse.SUPPRESS)
    p.add_argument("--b", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return gensim_update(args)

    tmp = tempfile.mkdtemp(prefix="w2v-finetune-")
    try:
        opener = gzip.open if args.corpus.endswith(".gz") else open
        with opener(args.corpus, "rt", encoding="utf-8") as f:
            lines = f.readlines()
        half = len(lines) // 2
        paths = {name: os.path.join(tmp, f"{name}.txt") for name in ("A", "B", "AB")}
        for name, part in (("A", lines[:half]), ("B", lines[half:]), ("AB", lines)):
            with open(paths[name], "w", encoding="utf-8") as f:
                f.writelines(part)
        del lines
        w2v = shutil.which("w2v-async") or os.path.join(os.path.dirname(sys.executable), "w2v-async")
        results = {}
        for seed in [int(s) for s in args.seeds.split(",")]:
            common = ["--dim", str(args.dim), "--window", str(args.window), "--negative", str(args.negative),
                      "--sample", str(args.sample), "--min-count", str(args.min_count), "--epochs",
                      str(args.epochs), "--threads", str(args.threads), "--seed", str(seed), "-q", "--json",
                      "--cache-dir", os.path.join(tmp, "cache")]
            out = {name: os.path.join(tmp, f"{name}-{seed}.bin") for name in
                   ("scratch-B", "A-only", "init", "init-vectors", "init-lock-0.25", "init-alpha-0.01",
                    "gensim-update", "scratch-AB")}
            model_a = os.path.join(tmp, f"A-{seed}.npz")
            runs = [
                ("A-only", [w2v, "train", paths["A"], "-o", out["A-only"], "--save-model", model_a, *common]),
                ("scratch-B", [w2v, "train", paths["B"], "-o", out["scratch-B"], *common]),
                ("init", [w2v, "train", paths["B"], "-o", out["init"], "--init", model_a, *common]),
                ("init-vectors", [w2v, "train", paths["B"], "-o", out["init-vectors"], "--init", out["A-only"],
                                  *common]),
                ("init-lock-0.25", [w2v, "train", paths["B"], "-o", out["init-lock-0.25"], "--init", model_a,
                                    "--lock-factor", "0.25", *common]),
                ("init-alpha-0.01", [w2v, "train", paths["B"], "-o", out["init-alpha-0.01"], "--init", model_a,
                                     *common, "--alpha", "0.01"]),
                ("gensim-update", [sys.executable, __file__, "--worker", "--a", paths["A"], "--b", paths["B"],
                                   "--output", out["gensim-update"], "--seed", str(seed), "--threads",
                                   str(args.threads), "--epochs", str(args.epochs), "--dim", str(args.dim),
                                   "--window", str(args.window), "--negative", str(args.negative), "--sample",
                                   str(args.sample), "--min-count", str(args.min_count)]),
                ("scratch-AB", [w2v, "train", paths["AB"], "-o", out["scratch-AB"], *common]),
            ]
            for name, cmd in runs:
                wall, rss, summary = measure(cmd)
                seconds = summary.get("update_s") if name == "gensim-update" else summary["seconds"]["train"]
                results.setdefault(name, []).append({"seed": seed, "train_s": seconds, "wall_s": wall,
                                                     "peak_rss_mb": rss, **quality(out[name])})
                print(f"seed {seed} {name}: {results[name][-1]}", file=sys.stderr)
            reference = vocabulary(out["scratch-AB"])
            a_words, b_only = set(vocabulary(out["A-only"]).key_to_index), vocabulary(out["scratch-B"])
            new_words = [w for w in b_only.index_to_key if w not in a_words][: args.new_words]
            for name in out:
                if name == "scratch-AB":
                    continue
                cosine, overlap, n = new_word_agreement(reference, vocabulary(out[name]), new_words)
                results[name][-1].update(new_word_cosine=cosine, new_word_overlap=overlap, new_words_scored=n)
        print(f"| run | train s | analogy | WS353 | SimLex | new words: cosine to A+B's {NEIGHBOURS} nearest | "
              f"overlap with them |")
        print("|---|---|---|---|---|---|---|")
        for name, rows in results.items():
            def mean(key):
                values = [r[key] for r in rows if key in r and r[key] == r[key]]
                return statistics.mean(values) if values else float("nan")
            print(f"| {name} | {mean('train_s'):.1f} | {100 * mean('analogy'):.2f}% | {mean('ws353'):.3f} | "
                  f"{mean('simlex'):.3f} | {mean('new_word_cosine'):.3f} | {mean('new_word_overlap'):.3f} |")
        if args.json_out:
            with open(args.json_out, "w") as f:
                json.dump({"args": vars(args), "results": results}, f, indent=1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
