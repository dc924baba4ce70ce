"""GloVe's AdaGrad epoch with each update under locks, for the experiment's schemes (issue 15): one
lock that every thread shares, or the locks of the two rows an entry's update writes."""

import numpy as np
from numba import njit, types

from .common import DIVERGED, KERNEL_OPTS, RUN
from .glove import COO_TYPE, GLOVE_PROGRESS_EVERY, PARAMS_TYPE, glove_update
from .locks import acquire, unlock


@njit(types.Tuple((types.float64, types.int64))(PARAMS_TYPE, PARAMS_TYPE, COO_TYPE, types.float64[::1],
                                                types.int64[::1], types.int64, types.int32[:, ::1]),
      **KERNEL_OPTS)
def train_glove_locked_epoch(params, gradsq, coo, hyper, counters, thread_idx, locks):
    """As glove.train_glove_epoch, each entry's update holding locks (locks.new_locks): with one
    lock, that lock ("just add a mutex"); with 2 V, the locks of row i of W (with b_i) and row
    V + j of W~ (with b~_j), taken in that order, which is always increasing (no deadlock)."""
    rows, cols, values = coo
    n_words = params[0].shape[0]
    per_row = locks.shape[0] > 1
    slot = 1 + thread_idx
    done = counters[slot]
    first = done
    cost = 0.0
    for e in range(rows.shape[0]):
        if e > 0 and e % GLOVE_PROGRESS_EVERY == 0:
            counters[slot] = done
            if not np.isfinite(cost):
                counters[0] = DIVERGED
            if counters[0] != RUN:
                break
        i = rows[e]
        j = cols[e]
        if per_row:
            acquire(locks, i)
            acquire(locks, n_words + j)
        else:
            acquire(locks, 0)
        cost += glove_update(params, gradsq, i, j, values[e], hyper)
        if per_row:
            unlock(locks, n_words + j)
            unlock(locks, i)
        else:
            unlock(locks, 0)
        done += 1
    if not np.isfinite(cost):
        counters[0] = DIVERGED
    counters[slot] = done
    return cost, done - first
