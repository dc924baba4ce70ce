"""Shared by the benchmark scripts: run one command as its own process and measure it; Zipf corpora."""

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np


def measure(cmd):
    """Run cmd; return (wall seconds, peak RSS in MiB of that process, its last stdout line as JSON or None)."""
    wall, rss, _, result, _ = measure_memory(cmd)
    return wall, rss, result


def _rss_anon_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def quality(path):
    """Analogy accuracy and WS353 / SimLex Spearman of the vectors at path (gensim's test sets)."""
    from w2v_async.evaluation import default_analogy_sets, default_similarity_sets, evaluate  # numba loads lazily
    from w2v_async.io import load_vectors

    report = evaluate(load_vectors(path), path, default_analogy_sets(), default_similarity_sets())
    return {"analogy": report.analogies[0].accuracy, "ws353": report.similarities[0].spearman,
            "simlex": report.similarities[1].spearman}


def _used_bytes(path):
    stats = os.statvfs(path)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize


def measure_memory(cmd, poll_s=0.02, disk=None):
    """Run cmd; return (wall seconds, peak RSS MiB, peak anonymous memory MiB, last stdout line as
    JSON, peak growth in bytes of the disk holding the path disk, or None without one).

    Peak anonymous memory (RssAnon, sampled every poll_s from /proc) leaves out the pages of file
    mappings, which the kernel can drop; peak RSS (the kernel's own maximum) counts them. The disk's
    growth is sampled as often: anything else writing to that disk is counted too.
    """
    t0 = time.perf_counter()
    used0 = _used_bytes(disk) if disk else 0
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = [0, 0]
    done = threading.Event()

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_anon_kib(proc.pid))
            if disk:
                peak[1] = max(peak[1], _used_bytes(disk) - used0)
            done.wait(poll_s)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    watcher.join()
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"benchmark step failed: {' '.join(map(str, cmd))}")
    lines = out.strip().splitlines()
    return wall, usage.ru_maxrss / 1024, peak[0] / 1024, json.loads(lines[-1]) if lines else None, \
        (peak[1] if disk else None)


def word_strings(n):
    """n distinct lowercase words: a, b, ..., z, aa, ab, ... (base-26 spellings of 0 .. n-1)."""
    out = []
    for i in range(n):
        s = ""
        i += 1
        while i:
            i, r = divmod(i - 1, 26)
            s = chr(97 + r) + s
        out.append(s)
    return np.array(out)


def write_zipf_corpus(path, n_tokens, n_ids, exponent, seed=0, line_words=20, names=None, chunk=1_000_000):
    """n_tokens words, 20 a line, drawn with p(rank) ~ rank^-exponent over n_ids types.

    names: the types' spellings (default w0, w1, ...). Returns the number of lines written.
    """
    rng = np.random.default_rng(seed)
    p = np.arange(1, n_ids + 1, dtype=np.float64) ** -exponent
    cdf = np.cumsum(p / p.sum())
    words = names if names is not None else np.array([f"w{i}" for i in range(n_ids)])
    n_lines = 0
    with open(path, "w") as f:
        for start in range(0, n_tokens, chunk):
            n = min(chunk, n_tokens - start)
            ids = np.minimum(np.searchsorted(cdf, rng.random(n)), n_ids - 1)
            lines = words[ids].reshape(-1, line_words) if n % line_words == 0 else words[ids][None, :]
            f.write("\n".join(" ".join(row) for row in lines) + "\n")
            n_lines += len(lines)
    return n_lines
