"""word2vec.c skip-gram with every pair update guarded, for the experiment's schemes (issue 15):
one global lock around each update ("just add a mutex"), the locks of the rows each update
touches (HOGWILD!'s fine-grained locking), or no lock with every row write counted, to measure
how often two threads really write one row within one update's time.

An update of the pair (context, center) reads and writes w_in[context] and the w_out rows of the
center and its negatives: as lock or row ids, context and V + center, V + negative.
"""

import numpy as np
from numba import njit, types
from numba.extending import overload

from .common import KERNEL_OPTS, private_zeros
from .locks import acquire, acquire_rows, atomic_add, hold_for_a_collision, release_rows, unlock
from .word2vec import I8_1D, SGNS_COLLISION_SCRATCH, SGNS_GLOBAL_LOCK_SCRATCH, sgns_update

# Test hook (tests/test_locks.py): the "count" scratch plus a test_hold (locks.hold_for_a_collision)
# as its last item, a type of its own, so that the experiment's kernels compile without the hold
SGNS_COLLISION_TEST_HOLD_SCRATCH = types.Tuple(tuple(SGNS_COLLISION_SCRATCH.types) + (I8_1D,))


def guarded_scratch(buffers: tuple, guard: str, shared: tuple, negative: int) -> tuple:
    """A thread's scratch for a guarded skip-gram: buffers (sentence, negatives, hot rows, grad)
    from word2vec_scratch("pair", ...) and the arrays every thread shares, by guard:
    "global": (lock,) (locks.new_locks(1)); "rows": (row locks,) (new_locks(2 V));
    "count": (versions, collisions) (int64[2 V] each, zeros: writes and collided writes per row),
    and for tests a third array, a test_hold (SGNS_COLLISION_TEST_HOLD_SCRATCH).
    """
    ids = private_zeros(negative + 2, np.int32)
    if guard == "global":
        return buffers + shared
    if guard == "rows":
        return buffers + shared + (ids,)
    return buffers + shared[:2] + (private_zeros(negative + 2, np.int64), ids) + shared[2:]


@njit(**KERNEL_OPTS)
def _pair_rows(context, center, negatives, n_words, ids):
    """The row ids one pair update writes into ids: context, then V + center and V + each
    negative that differs from center. Returns how many."""
    ids[0] = context
    ids[1] = n_words + center
    m = 2
    for q in range(negatives.shape[0]):
        if negatives[q] != center:
            ids[m] = n_words + negatives[q]
            m += 1
    return m


def _guarded_update(w_in, w_out, center, context, negatives, lr, scratch):
    """sgns_update of one pair under the guard that the scratch tuple's type selects."""


@overload(_guarded_update, jit_options=KERNEL_OPTS)
def _guarded_update_for_scratch(w_in, w_out, center, context, negatives, lr, scratch):
    if scratch == SGNS_GLOBAL_LOCK_SCRATCH:
        def one_lock(w_in, w_out, center, context, negatives, lr, scratch):
            lock = scratch[4]
            acquire(lock, 0)
            loss = sgns_update(w_in, w_out, center, context, negatives, lr, scratch[3])
            unlock(lock, 0)
            return loss
        return one_lock
    if scratch == SGNS_COLLISION_SCRATCH or scratch == SGNS_COLLISION_TEST_HOLD_SCRATCH:
        def counted(w_in, w_out, center, context, negatives, lr, scratch):
            versions, collided, snapshot, ids = scratch[4], scratch[5], scratch[6], scratch[7]
            m = _pair_rows(context, center, negatives, versions.shape[0] // 2, ids)
            for a in range(m):
                snapshot[a] = versions[ids[a]]
            _test_hold(scratch, versions, ids, snapshot, m)
            loss = sgns_update(w_in, w_out, center, context, negatives, lr, scratch[3])
            for a in range(m):
                row = ids[a]
                repeat = False
                for b in range(a):
                    repeat = repeat or ids[b] == row
                # another thread wrote this row between our read of it and our write: one of
                # the two updates is (partly) lost or computed from a stale row
                if not repeat and atomic_add(versions, row, 1) != snapshot[a]:
                    atomic_add(collided, row, 1)
            return loss
        return counted

    def row_locks(w_in, w_out, center, context, negatives, lr, scratch):
        locks, ids = scratch[4], scratch[5]
        m = acquire_rows(locks, ids, _pair_rows(context, center, negatives, locks.shape[0] // 2, ids))
        loss = sgns_update(w_in, w_out, center, context, negatives, lr, scratch[3])
        release_rows(locks, ids, m)
        return loss
    return row_locks


def _test_hold(scratch, versions, ids, snapshot, m):
    """Test hook: nothing, but with SGNS_COLLISION_TEST_HOLD_SCRATCH the first update of the hold's
    row waits, after its read of the rows' versions, until another thread has written that row."""


@overload(_test_hold, jit_options=KERNEL_OPTS)
def _test_hold_for_scratch(scratch, versions, ids, snapshot, m):
    if scratch == SGNS_COLLISION_TEST_HOLD_SCRATCH:
        def held(scratch, versions, ids, snapshot, m):
            for a in range(m):
                hold_for_a_collision(scratch[8], versions, ids[a], snapshot[a])
        return held
    return lambda scratch, versions, ids, snapshot, m: None


@njit(**KERNEL_OPTS)
def _sgns_word_guarded(w_in, w_out, sent_buf, i, reach, n, negatives, k, lr, scratch):
    """word2vec.c skip-gram for center word i (as word2vec._sgns_word), each pair guarded."""
    center = sent_buf[i]
    loss = np.float32(0.0)
    q = 0
    for j in range(max(0, i - reach), min(n, i + reach + 1)):
        if j == i:
            continue
        loss += _guarded_update(w_in, w_out, center, sent_buf[j], negatives[q : q + k], lr, scratch)
        q += k
    return loss, q // k

