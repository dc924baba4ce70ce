#!/usr/bin/env python3
"""GloVe quality against Stanford's glove.c, several seeds each, in one run on one machine.

Both pipelines count the same corpus with the same settings (min-count 5, symmetric window 10,
dim 100, x-max 100, alpha 0.75, eta 0.05, 15 iterations, W + W~) and are evaluated the same way
(questions-words, WS353, SimLex through w2v_async.evaluation). Stanford's tools are not a
dependency: build them from https://github.com/stanfordnlp/GloVe (`make`) and pass their build/
folder. Without --stanford-bin only w2v-async runs. Usage:

    python scripts/bench_glove_parity.py [--corpus FILE] [--seeds 1 2 3] [--threads 2]
                                         [--stanford-bin GloVe/build] [--json-out FILE]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from benchlib import measure, quality

HERE = os.path.dirname(os.path.abspath(__file__))
REGISTRY = os.path.join(HERE, "..", "..", "shared", "corpora", "registry-en.txt.gz")


def stanford_vectors(bin_dir, corpus, tmp, seed, args):
    """vocab_count, cooccur, shuffle (seeded) and glove (seeded) as Stanford's demo.sh runs them."""
    def tool(name, stdin, stdout, *flags):
        with open(stdin, "rb") as fin, open(stdout, "wb") as fout:
            subprocess.run([os.path.join(bin_dir, name), *map(str, flags), "-verbose", "0"], stdin=fin, stdout=fout,
                           stderr=subprocess.DEVNULL, check=True)

    vocab, cooc, shuf = (os.path.join(tmp, n) for n in ("s-vocab.txt", "s-cooc.bin", f"s-cooc.shuf{seed}.bin"))
    if not os.path.exists(cooc):
        text = os.path.join(tmp, "corpus.txt")
        if corpus.endswith(".gz"):  # Stanford's tools read plain text on stdin
            subprocess.run(f"gzip -dc {corpus} > {text}", shell=True, check=True)
        else:
            text = corpus
        tool("vocab_count", text, vocab, "-min-count", args.min_count)
        tool("cooccur", text, cooc, "-memory", args.memory, "-vocab-file", vocab, "-window-size", args.window)
    tool("shuffle", cooc, shuf, "-memory", args.memory, "-seed", seed)
    save = os.path.join(tmp, f"s-vectors{seed}")
    wall, _, _ = measure([os.path.join(bin_dir, "glove"), "-save-file", save, "-threads", str(args.threads),
                          "-input-file", shuf, "-x-max", "100", "-iter", str(args.epochs), "-vector-size",
                          str(args.dim), "-binary", "0", "-vocab-file", vocab, "-verbose", "0", "-seed", str(seed),
                          "-model", "2"])
    os.remove(shuf)
    return save + ".txt", wall


def ours_vectors(w2v, corpus, tmp, seed, args):
    vocab, cooc = os.path.join(tmp, "vocab.tsv"), os.path.join(tmp, "cooc.npz")
    common = ["--min-count", str(args.min_count), "-q", "--json"]
    if not os.path.exists(cooc):
        measure([w2v, "vocab", corpus, "-o", vocab] + common)
        measure([w2v, "cooccur", corpus, "--vocab", vocab, "-o", cooc, "--window", str(args.window), "--memory",
                 str(args.memory), "--threads", str(args.threads)] + common)
    out = os.path.join(tmp, f"glove{seed}.bin")
    wall, _, _ = measure([w2v, "train", "--model", "glove", "--cooccur", cooc, "--vocab", vocab, "-o", out,
                          "--x-max", "100", "--epochs", str(args.epochs), "--dim", str(args.dim), "--threads",
                          str(args.threads), "--seed", str(seed), "--no-cache"] + common)
    return out, wall


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=REGISTRY)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--memory", type=float, default=1.0)
    p.add_argument("--stanford-bin", default=None, help="the build/ folder of Stanford's GloVe (vocab_count, ...)")
    p.add_argument("--json-out", default=None)
    args = p.parse_args()

    w2v = shutil.which("w2v-async") or os.path.join(os.path.dirname(sys.executable), "w2v-async")
    systems = [("w2v-async", lambda tmp, seed: ours_vectors(w2v, args.corpus, tmp, seed, args))]
    if args.stanford_bin:
        systems.append(("Stanford glove.c", lambda tmp, seed: stanford_vectors(args.stanford_bin, args.corpus, tmp,
                                                                               seed, args)))
    tmp = tempfile.mkdtemp(prefix="w2v-glove-parity-")
    rows = []
    try:
        for seed in args.seeds:
            for name, run in systems:
                path, wall = run(tmp, seed)
                rows.append(dict(system=name, seed=seed, train_wall_s=wall, **quality(path)))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\ncorpus {args.corpus}; dim {args.dim}, window {args.window}, min-count {args.min_count}, x-max 100, "
          f"{args.epochs} iterations, {args.threads} threads, W + W~")
    print("\n| system | seed | training s (wall) | analogy | WS353 | SimLex |")
    print("|---|---|---|---|---|---|")
    means = {}
    for name, _ in systems:
        mine = [r for r in rows if r["system"] == name]
        for r in mine:
            print(f"| {name} | {r['seed']} | {r['train_wall_s']:.1f} | {100 * r['analogy']:.2f}% | {r['ws353']:.3f} | "
                  f"{r['simlex']:.3f} |")
        means[name] = {k: statistics.mean(r[k] for r in mine) for k in ("analogy", "ws353", "simlex")}
        m = means[name]
        print(f"| {name} | mean | | {100 * m['analogy']:.2f}% | {m['ws353']:.3f} | {m['simlex']:.3f} |")
    if len(means) == 2:
        ours, theirs = means["w2v-async"], means["Stanford glove.c"]
        print(f"\nw2v-async minus Stanford: analogy {100 * (ours['analogy'] - theirs['analogy']):+.2f} points, "
              f"WS353 {ours['ws353'] - theirs['ws353']:+.4f}, SimLex {ours['simlex'] - theirs['simlex']:+.4f}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"args": vars(args), "rows": rows, "means": means}, f, indent=2)


if __name__ == "__main__":
    main()
