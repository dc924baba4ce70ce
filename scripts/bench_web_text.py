"""Web text at scale: what a very long token costs, and the vocabulary's memory with millions of junk types.

1. A corpus of about 3 MB (the benchmark corpus's first lines, or generated Zipf text) with and
   without six lines holding one 30,000-character token: `train --checkpoint-dir` and `cooccur`,
   with the default --max-word-length (100 bytes: the token is skipped) and with 0 (kept): the
   checkpoint's and the .npz's size, and peak RSS.
2. `vocab` over a corpus of --types distinct junk tokens (default 10M) among ordinary words, with
   --max-vocab-size 1,000,000 (one reader counts, however many threads) and 8,000,000 (up to 8
   readers share it), at 1, 2 and 8 threads: peak RSS, seconds, readers, words pruned and the
   vocabulary's size.

Each command runs in its own process; peak RSS is that process's VmHWM (Linux).

    python scripts/bench_web_text.py [--corpus ../shared/corpora/registry-en.txt.gz] [--types 10000000]
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

# the command, then its peak RSS (VmHWM: this process's own; ru_maxrss keeps the forking parent's) on stderr
W2V = [sys.executable, "-c", "import sys; from w2v_async.cli import main; sys.argv = ['w2v-async'] + sys.argv[1:]\n"
       "try:\n    main()\nfinally:\n"
       "    print('VmHWM', [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1], file=sys.stderr)"]


def run(args):
    """(seconds, peak RSS in MB, stdout) of one w2v-async command in its own process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(W2V + [str(a) for a in args], stdout=out, stderr=err)
        _, status, _ = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            sys.exit(f"failed: w2v-async {' '.join(map(str, args))}\n{err.read().decode()[-2000:]}")
        return seconds, int(err.read().decode().rsplit("VmHWM", 1)[1]) / 1024, out.read().decode()


def base_corpus(path, source, n_bytes=3_000_000):
    if source and os.path.exists(source):
        opener = gzip.open if source.endswith(".gz") else open
        with opener(source, "rt", encoding="utf-8") as f, open(path, "w") as out:
            written = 0
            for line in f:
                out.write(line)
                written += len(line)
                if written >= n_bytes:
                    break
        return f"the first {written / 1e6:.1f} MB of {source}"
    rng = np.random.default_rng(0)
    p = 1.0 / np.arange(1, 20_001) ** 1.05
    ids = rng.choice(20_000, size=n_bytes // 6, p=p / p.sum())
    with open(path, "w") as out:
        for s in range(0, ids.shape[0], 20):
            out.write(" ".join(f"w{i}" for i in ids[s: s + 20]) + "\n")
    return f"{n_bytes / 1e6:.1f} MB of generated Zipf text"


def long_tokens(d, source):
    base = os.path.join(d, "base.txt")
    what = base_corpus(base, source)
    long = os.path.join(d, "long.txt")
    shutil.copy(base, long)
    with open(long, "a") as f:
        for _ in range(6):
            f.write("the " + "x" * 30_000 + " of\n")
    print(f"\n1. one 30,000-character token on six lines, added to {what}")
    print("| corpus | --max-word-length | checkpoint | train peak RSS | cooccur .npz | cooccur peak RSS |")
    print("|---|---|---|---|---|---|")
    rows = []
    for name, path in (("base", base), ("long", long)):
        for cap in ("100", "0"):
            ck = os.path.join(d, f"ck-{name}-{cap}")
            _, train_mb, _ = run(["train", path, "-o", os.path.join(d, "v.bin"), "--epochs", "1", "--checkpoint-dir", ck,
                                  "--max-word-length", cap, "--no-cache", "-q"])
            ck_size = max(os.path.getsize(os.path.join(ck, f)) for f in os.listdir(ck))
            npz = os.path.join(d, "c.npz")
            _, cooc_mb, _ = run(["cooccur", path, "-o", npz, "--max-word-length", cap, "--no-cache", "-q"])
            row = {"corpus": name, "max_word_length": int(cap), "checkpoint_bytes": ck_size, "train_peak_mb": train_mb,
                   "npz_bytes": os.path.getsize(npz), "cooccur_peak_mb": cooc_mb}
            rows.append(row)
            print(f"| {name} | {cap} | {ck_size / 1e6:.2f} MB | {train_mb:.0f} MB | {row['npz_bytes'] / 1e6:.2f} MB "
                  f"| {cooc_mb:.0f} MB |", flush=True)
    return rows


def junk_corpus(path, n_types, seed=0):
    """n_types distinct 12-letter junk tokens, each once, every one followed by five ordinary words."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)
    common = [f"word{i}" for i in range(2000)]
    with open(path, "wb") as f:
        for first in range(0, n_types, 1_000_000):
            n = min(1_000_000, n_types - first)
            junk = letters[rng.integers(0, 26, size=(n, 12))]
            junk[:, :6] = letters[(np.arange(first, first + n)[:, None] // 26 ** np.arange(6)) % 26]  # all distinct
            ordinary = rng.integers(0, len(common), size=(n, 5))
            lines = []
            for k in range(n):
                lines.append(junk[k].tobytes() + b" " + " ".join(common[j] for j in ordinary[k]).encode())
            f.write(b"\n".join(lines) + b"\n")


def many_types(d, n_types, threads, sizes):
    path = os.path.join(d, "junk.txt")
    t0 = time.perf_counter()
    junk_corpus(path, n_types)
    print(f"\n2. {n_types:,} distinct junk types among ordinary words ({os.path.getsize(path) / 1e6:.0f} MB, "
          f"made in {time.perf_counter() - t0:.0f} s), vocab --min-count 1")
    print("| --max-vocab-size | --threads | reading threads | seconds | peak RSS | words pruned | vocabulary |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for size in sizes:
        for t in threads:
            seconds, mb, out = run(["vocab", path, "-o", os.path.join(d, "v.tsv"), "--threads", t, "--max-vocab-size",
                                    size, "--min-count", "1", "--json", "-q"])
            summary = json.loads(out)
            rows.append({"max_vocab_size": int(size), "threads": int(t), "seconds": seconds, "peak_mb": mb, **summary})
            print(f"| {int(size):,} | {t} | {summary.get('reading_workers')} | {seconds:.1f} | {mb:.0f} MB | "
                  f"{summary.get('words_pruned', 0):,} | {summary['vocab_size']:,} |", flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="../shared/corpora/registry-en.txt.gz",
                        help="real text for part 1 (generated Zipf text when missing)")
    parser.add_argument("--types", type=int, default=10_000_000, help="distinct junk tokens in part 2")
    parser.add_argument("--threads", default="1,2,8", help="reading threads of part 2")
    parser.add_argument("--parts", default="1,2", help="which parts to run")
    parser.add_argument("--max-vocab-sizes", default="1000000,8000000", help="--max-vocab-size values of part 2")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="bench-web-", dir=".") as d:
        parts = args.parts.split(",")
        results = {"long_tokens": long_tokens(d, args.corpus) if "1" in parts else None,
                   "many_types": many_types(d, args.types, args.threads.split(","), args.max_vocab_sizes.split(",")) if "2" in parts else None}
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
