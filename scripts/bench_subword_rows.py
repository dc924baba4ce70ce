"""What building a subword model's n-gram rows costs for a large vocabulary: peak RSS and seconds
of data/subwords.subword_rows over N synthetic words (lowercase, 4-14 letters, Zipf counts), each N
in a process of its own, with fastText's settings (--minn 3 --maxn 6 --bucket 2000000). The kernels
are compiled (or loaded from numba's cache) before the baseline RSS is read. With --reference,
each N also runs the layout's sorting reference (np.unique over every n-gram, as subword_rows was
built before it counted into --bucket slots), in the same run.

    python scripts/bench_subword_rows.py --words 1000000,3000000,10000000 --reference
"""

import argparse
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
from w2v_async.data.subwords import SubwordRows, subword_rows, word_buckets


def reference(words, counts, minn, maxn, bucket):
    starts, found = word_buckets(words, minn, maxn, bucket)
    used, inverse = np.unique(found.astype(np.int64), return_inverse=True)
    weight = np.bincount(inverse, weights=np.repeat(np.asarray(counts, np.float64), np.diff(starts)),
                         minlength=used.shape[0])
    order = np.lexsort((used, -weight))
    row_of = np.empty(used.shape[0], np.int32)
    row_of[order] = np.arange(used.shape[0], dtype=np.int32)
    return SubwordRows(starts, row_of[inverse].astype(np.int32), used[order])


def vm_hwm_mib():
    return int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) / 1024

n = int(sys.argv[1])
build = reference if sys.argv[2] == "reference" else subword_rows
build(["warmup", "words"], np.array([2, 1]), 3, 6, 2_000_000)  # compiled or loaded from the cache
rng = np.random.default_rng(0)
letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)
lengths = rng.integers(4, 15, n)
pool = letters[rng.integers(0, 26, int(lengths.sum()))].tobytes().decode()
ends = np.cumsum(lengths)
words = [pool[e - k:e] for e, k in zip(ends.tolist(), lengths.tolist())]
counts = (1e9 / np.arange(1, n + 1)).astype(np.int64) + 1
del pool, ends, lengths
before = vm_hwm_mib()
with open('/proc/self/clear_refs', 'w') as f:
    f.write('5')  # reset VmHWM to the current RSS
base = vm_hwm_mib()
t0 = time.perf_counter()
sub = build(words, counts, 3, 6, 2_000_000)
seconds = time.perf_counter() - t0
peak = vm_hwm_mib()
print(json.dumps({"how": sys.argv[2], "words": n, "ngrams": int(sub.rows.shape[0]), "rows": int(sub.buckets.shape[0]), "seconds": seconds,
                  "rss_before_mib": base, "peak_mib": peak, "growth_mib": peak - base,
                  "bytes_per_ngram": (peak - base) * 2**20 / max(sub.rows.shape[0], 1),
                  "result_mib": (sub.rows.nbytes + sub.starts.nbytes + sub.buckets.nbytes) / 2**20}))
"""


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--words", default="1000000,3000000")
    p.add_argument("--reference", action="store_true", help="also the sorting reference, each N")
    args = p.parse_args()
    for n in args.words.split(","):
        for how in ("counting", "reference") if args.reference else ("counting",):
            done = subprocess.run([sys.executable, "-c", CHILD, n, how], capture_output=True, text=True)
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                continue
            print(done.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
