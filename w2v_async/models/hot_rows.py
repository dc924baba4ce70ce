"""Per-thread private copies of the hottest rows, merged into the shared matrices with bounded lag.

Every thread writes the most frequent words' rows all the time; with private copies it writes
them to the shared matrices once every K uses instead of at every use (see merge_hot_row).
"""

import numpy as np
from numba import njit, types

from .common import F4_1D, F4_2D, I4_1D, KERNEL_OPTS, private_zeros

# uses of a hot row by all threads together that a private copy may lag behind (merge_hot_row), at
# the model's default --alpha. Measured on 16 cores, registry corpus, 16 threads, epoch-1 loss: 32
# (K = 2) costs 1.3-1.6% against no copies in every mode; 64 (K = 4) costs 3% in pair and CBOW and
# 27% in HogBatch skip-gram, whose output rows take every context's gradient at once.
HOT_ROW_STALENESS = 32
HOT_ROWS_BYTES = 512 * 1024  # per thread, for the 4 hot-row copies: a part of a core's L2

# A thread's private hot rows (see merge_hot_row): (H, offset, uses between merges K), uses of each
# row since its last merge (w_in's H, then w_out's H), and w_in's and w_out's hot rows as of that merge;
# then every w_in row's update factor (--lock-init / --lock-factor, copies included; empty: all 1)
HOT = types.Tuple((types.int64[::1], I4_1D, F4_2D, F4_2D, F4_1D))


def hot_rows(n_words: int, dim: int, n_threads: int, merge_every: int) -> int:
    """How many of the most frequent words each thread trains in private copies of their rows.

    One thread shares nothing, so it keeps none (and stays update for update the plain kernel).
    Neither do threads that would merge after every use (merge_every < 2, see
    hot_row_merge_every): the copies would only add work. Otherwise as many as fit HOT_ROWS_BYTES
    (a copy and a base of w_in's and w_out's rows): the top words' rows are the ones every thread
    writes all the time, and with private copies each thread writes them to the shared matrices
    once every merge_every uses instead of at every use. At most a 16th of the vocabulary: only
    the head of a Zipf distribution is contended.
    """
    if n_threads == 1 or merge_every < 2:
        return 0
    return int(min(n_words // 16, HOT_ROWS_BYTES // (4 * 4 * dim)))


def hot_row_merge_every(n_threads: int, alpha_ratio: float = 1.0) -> int:
    """K, a thread's uses of a hot row between merges: T K stays within HOT_ROW_STALENESS uses
    whatever the thread count T (merge_hot_row says why). alpha_ratio: --alpha over the model's
    default; a larger step tolerates proportionally less delay (delayed SGD is stable while
    step x delay stays bounded), so the budget shrinks by it (and never grows)."""
    return max(1, int(HOT_ROW_STALENESS / max(1.0, alpha_ratio)) // n_threads)


def hot_scratch(n_hot: int, offset: int, merge_every: int, dim: int, lockf=None) -> tuple:
    """A thread's HOT tuple: it trains ids w < n_hot in its rows offset + w of the matrices and
    merges each into row w after merge_every uses (n_hot = 0: no copies); lockf : float32[rows of
    w_in], shared, each input row's update factor (None: 1 for all)."""
    return (np.array([n_hot, offset, merge_every], np.int64), private_zeros(2 * n_hot, np.int32),
            private_zeros((n_hot, dim), np.float32), private_zeros((n_hot, dim), np.float32),
            np.ones(0, np.float32) if lockf is None else lockf)


@njit(types.void(F4_2D, types.int64, types.int64, F4_2D), **KERNEL_OPTS)
def merge_hot_row(matrix, w, offset, base):
    """Add a thread's change to its private copy of hot row w into the shared row, and restart from it.

    matrix[offset + w] is the thread's copy of row w < H = base.shape[0]; base[w] is what the copy
    held after its last merge, so each change is added once (no lock: a Hogwild write):
    matrix[w] += matrix[offset + w] - base[w]; base[w] = matrix[offset + w] = matrix[w].

    Why the sum stays stable at any thread count T: a change is computed against the shared row as
    of the last merge, so it misses the other threads' changes made since (its staleness). Merging
    a row after every K of this thread's uses of it (K = HOT_ROW_STALENESS // T, less with a larger
    --alpha: hot_row_merge_every; see _touch_hot_rows) bounds that staleness to about
    T K <= HOT_ROW_STALENESS uses of the row, whatever T is: a bounded delay, as in lock-free Hogwild.
    Merging on a timer instead (every 10,000 words) let the hottest rows take hundreds of uses in each
    of T threads against one stale value; each copy moved most of the way to its optimum, so the T
    changes added together overshot it about T-fold, and training diverged from 6 threads on.
    """
    shared = matrix[w]
    mine = matrix[offset + w]
    b = base[w]
    for k in range(shared.shape[0]):
        shared[k] += mine[k] - b[k]
        b[k] = shared[k]
        mine[k] = b[k]


@njit(types.void(F4_2D, types.int64, F4_2D), **KERNEL_OPTS)
def merge_hot_rows(matrix, offset, base):
    """merge_hot_row for every hot row w < base.shape[0] (at ticks, pauses and the end of a chunk)."""
    for w in range(base.shape[0]):
        merge_hot_row(matrix, w, offset, base)


@njit(types.void(F4_2D, I4_1D, types.int64[::1], I4_1D, F4_2D), **KERNEL_OPTS)
def _touch_hot_rows(matrix, ids, info, uses, base):
    """Count one use of each private hot row among ids (rows offset + w); merge a row every K uses.

    info = (H, offset, K); uses : int32[H], this matrix's uses of each hot row since its merge.
    """
    n_hot, offset, every = info[0], info[1], info[2]
    for q in range(ids.shape[0]):
        w = ids[q] - offset
        if 0 <= w < n_hot:
            uses[w] += 1
            if uses[w] >= every:
                merge_hot_row(matrix, w, offset, base)
                uses[w] = 0


@njit(**KERNEL_OPTS)
def _sync_hot_rows(w_in, w_out, hot):
    """Merge every private hot row of this thread (HOT tuple hot) into the shared matrices."""
    offset = hot[0][1]
    merge_hot_rows(w_in, offset, hot[2])
    merge_hot_rows(w_out, offset, hot[3])
