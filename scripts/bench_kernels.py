#!/usr/bin/env python3
"""Time one skip-gram window in isolation: HogBatch (sgns_window_update) against word2vec.c pairs.

A window of C context words and K negatives, every row already in L1: pure compute, no cache
misses, no sampling. Usage:

    python scripts/bench_kernels.py [--dim 100] [--contexts 6] [--negative 5] [--calls 1000000]
"""

import argparse
import time

import numpy as np
from numba import njit

from w2v_async.models import word2vec


@njit(nogil=True)
def _windows(w_in, w_out, contexts, negatives, deltas, grads, n):
    loss = 0.0
    for i in range(n):  # no negative equals the center (row 0), so the in-place compaction keeps them all
        loss += word2vec.sgns_window_update(w_in, w_out, 0, contexts, negatives, np.float32(1e-4), deltas, grads)
    return loss


@njit(nogil=True)
def _pairs(w_in, w_out, contexts, negatives, grad, n):
    loss = 0.0
    k = negatives.shape[0]
    for i in range(n):
        for c in range(contexts.shape[0]):  # word2vec.c: each pair its own k negatives
            loss += word2vec.sgns_update(w_in, w_out, 0, contexts[c], negatives[c * k:(c + 1) * k],
                                        np.float32(1e-4), grad)
    return loss


def best_of(fn, repeats=5):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--contexts", type=int, default=6)
    p.add_argument("--negative", type=int, default=5)
    p.add_argument("--calls", type=int, default=1_000_000)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    n_rows = 1 + args.contexts + args.contexts * args.negative
    w_in = ((rng.random((n_rows, args.dim), dtype=np.float32) - 0.5) / args.dim)
    w_out = ((rng.random((n_rows, args.dim), dtype=np.float32) - 0.5) / args.dim)
    contexts = np.arange(1, 1 + args.contexts, dtype=np.int32)
    negatives = np.arange(1 + args.contexts, n_rows, dtype=np.int32)
    deltas = np.zeros((args.contexts, args.dim), np.float32)
    grads = np.zeros((args.contexts, args.negative + 1), np.float32)
    grad = np.zeros(args.dim, np.float32)
    window_negs = negatives[: args.negative].copy()
    _windows(w_in, w_out, contexts, window_negs, deltas, grads, 1)
    _pairs(w_in, w_out, contexts, negatives, grad, 1)
    t_window = best_of(lambda: _windows(w_in, w_out, contexts, window_negs, deltas, grads, args.calls))
    t_pairs = best_of(lambda: _pairs(w_in, w_out, contexts, negatives, grad, args.calls))
    print(f"dim {args.dim}, {args.contexts} contexts, {args.negative} negatives, best of 5 x {args.calls:,} windows")
    print(f"HogBatch window (sgns_window_update): {1e9 * t_window / args.calls:7.0f} ns per window")
    print(f"word2vec.c pairs (sgns_update x {args.contexts}):  {1e9 * t_pairs / args.calls:7.0f} ns per window")
    print(f"ratio: {t_pairs / t_window:.2f}x")


if __name__ == "__main__":
    main()
