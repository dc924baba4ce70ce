"""Phrases against gensim 4: the same phrase table and output, and the time and peak memory of whole processes.

For a corpus and each --times N (the corpus written N times as plain text in a temporary directory;
1: the corpus as given), in one run:
1. gensim: `Phrases(LineSentence(corpus), min_count=5, threshold=10, connector_words=frozenset())`
   learned, frozen and saved in one process; a second process loads the FrozenPhrases and writes
   the corpus transformed (a sentence a line, tokens joined by spaces);
2. `w2v-async phrases CORPUS -o OUT --save TABLE --threads 2` with the same settings
   (--max-word-length 0: gensim has no cap), one process;
then checks that the phrase tables agree (the same phrases, scores equal to 1e-6) and that the two
outputs hold the same tokens in the same order, and prints seconds, peak RSS (each process's VmHWM)
and the ratio of gensim's two processes to ours.

    python scripts/bench_phrases.py ../shared/corpora/registry-en.txt.gz [--times 1,12] [--threads 2]
"""

import argparse
import gzip
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

PEAK = ("\nprint('VmHWM', [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1], "
        "file=sys.stderr)")
GENSIM_LEARN = """import json, sys
from gensim.models.phrases import Phrases
from gensim.models.word2vec import LineSentence
corpus, saved, min_count, threshold = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
model = Phrases(LineSentence(corpus), min_count=min_count, threshold=threshold, connector_words=frozenset())
frozen = model.freeze()
frozen.save(saved)
print(json.dumps({"phrases": len(frozen.phrasegrams), "keys": len(model.vocab), "tokens": model.corpus_word_count}))
""" + PEAK
GENSIM_APPLY = """import sys
from gensim.models.phrases import FrozenPhrases
from gensim.models.word2vec import LineSentence
corpus, saved, out = sys.argv[1], sys.argv[2], sys.argv[3]
frozen = FrozenPhrases.load(saved)
with open(out, "w", encoding="utf-8") as f:
    for sentence in frozen[LineSentence(corpus)]:
        f.write(" ".join(sentence) + "\\n")
""" + PEAK
W2V = "import sys\nfrom w2v_async.cli import main\nsys.argv = ['w2v-async'] + sys.argv[1:]\ntry:\n    main()\nfinally:" \
      + PEAK.replace("\nprint", "\n    print")


def run(code, args):
    """(seconds, peak RSS in MB, stdout) of `python -c code args` as its own process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code] + [str(a) for a in args], stdout=out, stderr=err)
        _, status, _ = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        errors = err.read().decode()
        if os.waitstatus_to_exitcode(status):
            sys.exit(f"failed: {' '.join(map(str, args))}\n{errors[-3000:]}")
        return seconds, int(errors.rsplit("VmHWM", 1)[1]) / 1024, out.read().decode()


def token_digest(path, block=1 << 26):
    """(tokens, SHA-256 of every token followed by a space): equal for files holding the same tokens in the
    same order, however they are cut into lines."""
    digest, n = hashlib.sha256(), 0
    carry = b""
    with open(path, "rb") as f:
        while True:
            data = f.read(block)
            text = carry + data
            cut = len(text) if not data else max(text.rfind(b" "), text.rfind(b"\n")) + 1
            tokens = text[:cut].split()
            carry = text[cut:]
            if tokens:
                digest.update(b" ".join(tokens) + b" ")
                n += len(tokens)
            if not data:
                return n, digest.hexdigest()


def compare_tables(saved_gensim, our_table):
    """(phrases only gensim has, only we have, the largest score difference relative to max(1, |score|))."""
    from gensim.models.phrases import FrozenPhrases

    from w2v_async.data.phrases_table import PhraseTable

    theirs = FrozenPhrases.load(saved_gensim).phrasegrams
    ours = PhraseTable.load(our_table).passes[0]
    worst = max((abs(ours[p][0] - s) / max(1.0, abs(s)) for p, s in theirs.items() if p in ours), default=0.0)
    return sorted(set(theirs) - set(ours)), sorted(set(ours) - set(theirs)), worst


def one_corpus(corpus, d, args, label):
    g_model, g_out, ours, table = (os.path.join(d, name) for name in ("gensim.model", "gensim.txt", "ours.txt",
                                                                      "ours.tsv"))
    settings = [str(args.min_count), str(args.threshold)]
    learn_s, learn_mb, learned = run(GENSIM_LEARN, [corpus, g_model] + settings)
    apply_s, apply_mb, _ = run(GENSIM_APPLY, [corpus, g_model, g_out])
    our_s, our_mb, summary = run(W2V, ["phrases", corpus, "-o", ours, "--save", table, "--threads", args.threads,
                                       "--min-count", args.min_count, "--threshold", args.threshold,
                                       "--max-word-length", "0", "--json", "-q"])
    learned, summary = json.loads(learned), json.loads(summary)
    only_gensim, only_ours, worst = compare_tables(g_model, table)
    (n_theirs, d_theirs), (n_ours, d_ours) = token_digest(g_out), token_digest(ours)
    row = {"corpus": label, "tokens": summary["tokens"], "gensim_learn_s": learn_s, "gensim_learn_mb": learn_mb,
           "gensim_apply_s": apply_s, "gensim_apply_mb": apply_mb, "ours_s": our_s, "ours_mb": our_mb,
           "ratio": (learn_s + apply_s) / our_s, "phrases_gensim": learned["phrases"], "phrases_ours": summary["phrases"],
           "keys_gensim": learned["keys"], "keys_ours": summary["passes"][0]["keys"],
           "only_gensim": only_gensim[:10], "only_ours": only_ours[:10], "worst_score_difference": worst,
           "output_tokens": [n_theirs, n_ours], "same_output": d_theirs == d_ours,
           "same_table": not only_gensim and not only_ours and worst <= 1e-6}
    print(f"| {label} | {summary['tokens'] / 1e6:.1f}M | {learn_s:.1f} s, {learn_mb:.0f} MB | {apply_s:.1f} s, "
          f"{apply_mb:.0f} MB | {our_s:.2f} s, {our_mb:.0f} MB | **{row['ratio']:.1f}x** | {learned['phrases']:,} / "
          f"{summary['phrases']:,} | {'yes' if row['same_table'] else 'NO'} ({worst:.1e}) | "
          f"{'yes' if row['same_output'] else 'NO'} ({n_ours:,} tokens) |", flush=True)
    for path in (g_model, g_out, ours, table):
        os.remove(path)
    return row


def repeated(corpus, times, d):
    """The corpus written times times as one plain text file in d."""
    path = os.path.join(d, f"corpus-x{times}.txt")
    with (gzip.open(corpus, "rb") if corpus.endswith(".gz") else open(corpus, "rb")) as f:
        text = f.read()
    with open(path, "wb") as f:
        for _ in range(times):
            f.write(text if text.endswith(b"\n") else text + b"\n")
    return path


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpora",
                                                             "registry-en.txt.gz"))
    p.add_argument("--times", default="1", help="comma-separated: the corpus as given (1), or written N times")
    p.add_argument("--threads", default="2")
    p.add_argument("--min-count", default="5")
    p.add_argument("--threshold", default="10")
    p.add_argument("--tmp-dir", default=None, help="where the corpora and outputs go [default: the system's]")
    p.add_argument("--json-out", default=None)
    args = p.parse_args()
    corpus = os.path.abspath(args.corpus)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{corpus}; min_count {args.min_count}, threshold {args.threshold}, no connector words, "
          f"{args.threads} threads")
    print("| corpus | tokens | gensim learn | gensim transform | w2v-async phrases | speed-up | phrases (gensim / ours) "
          "| same table | same output |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as d:
        for times in (int(t) for t in args.times.split(",")):
            path = corpus if times == 1 else repeated(corpus, times, d)
            rows.append(one_corpus(path, d, args, os.path.basename(corpus) + ("" if times == 1 else f" x{times}")))
            if path != corpus:
                os.remove(path)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(rows, f, indent=2)
    if not all(r["same_table"] and r["same_output"] for r in rows):
        sys.exit("the phrase tables or the outputs differ: " + json.dumps(rows))


if __name__ == "__main__":
    main()
