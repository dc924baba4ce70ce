"""GloVe's AdaGrad epoch with each update under locks, for the experiment's schemes (issue 15): one
lock that every thread shares, or the locks of the two rows an entry's update writes; and lock-free
with every row write counted, for the observed collision rate."""

import numpy as np
from numba import njit, types

from .common import DIVERGED, KERNEL_OPTS, RUN
from .glove import COO_TYPE, GLOVE_PROGRESS_EVERY, PARAMS_TYPE, glove_update
from .locks import acquire, atomic_add, hold_for_a_collision, unlock


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


@njit(**KERNEL_OPTS)
def _counted_epoch(params, gradsq, coo, hyper, counters, thread_idx, versions, collided, test_hold):
    """train_glove_counted_epoch's loop; test_hold None (the experiment's kernel) prunes the hook."""
    rows, cols, values = coo
    n_words = params[0].shape[0]
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
        j = n_words + cols[e]
        seen_i, seen_j = versions[i], versions[j]
        if test_hold is not None:  # compiled out of train_glove_counted_epoch (None)
            hold_for_a_collision(test_hold, versions, i, seen_i)
            hold_for_a_collision(test_hold, versions, j, seen_j)
        cost += glove_update(params, gradsq, rows[e], cols[e], values[e], hyper)
        if atomic_add(versions, i, 1) != seen_i:
            atomic_add(collided, i, 1)
        if atomic_add(versions, j, 1) != seen_j:
            atomic_add(collided, j, 1)
        done += 1
    if not np.isfinite(cost):
        counters[0] = DIVERGED
    counters[slot] = done
    return cost, done - first


@njit(types.Tuple((types.float64, types.int64))(PARAMS_TYPE, PARAMS_TYPE, COO_TYPE, types.float64[::1],
                                                types.int64[::1], types.int64, types.int64[::1], types.int64[::1]),
      **KERNEL_OPTS)
def train_glove_counted_epoch(params, gradsq, coo, hyper, counters, thread_idx, versions, collided):
    """As glove.train_glove_epoch, lock-free, counting each write of row i of W (versions[i]) and
    of row j of W~ (versions[V + j]), and in collided the writes that another thread's write to
    the same row overtook between this update's read of the row and its write."""
    return _counted_epoch(params, gradsq, coo, hyper, counters, thread_idx, versions, collided, None)


@njit(**KERNEL_OPTS)  # typed on first use: by tests only
def train_glove_counted_epoch_test_hold(params, gradsq, coo, hyper, counters, thread_idx, versions, collided,
                                        test_hold):
    """Test hook: train_glove_counted_epoch whose first update of row test_hold[0] (of versions'
    numbering) waits between its read and its write until another thread has written that row
    (locks.hold_for_a_collision), so that a test sees a collision whatever the scheduler does."""
    return _counted_epoch(params, gradsq, coo, hyper, counters, thread_idx, versions, collided, test_hold)
