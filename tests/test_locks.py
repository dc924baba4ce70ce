"""The experiment's locks (models/locks.py) exclude each other, and the guarded skip-gram
(word2vec_guarded.py) trains word2vec.c's pairs exactly as the lock-free kernel does."""

import threading

import numba
import numpy as np
import pytest
from numba import njit

from test_train import SMALL, _encode
from w2v_async.config import Word2VecConfig
from w2v_async.engines.threads import train_word2vec
from w2v_async.errors import ConfigError
from w2v_async.models.locks import acquire, acquire_rows, atomic_add, new_locks, release_rows, unlock, yield_cpu
from w2v_async.models.word2vec_guarded import _guarded_update

N_THREADS = 6  # above this machine's cores: holders are descheduled inside the lock, and waiters yield


@njit(nogil=True)
def _distinct(ids, n):
    """As acquire_rows without the locks: ids[:n] sorted and deduplicated in place; returns how many."""
    ids[:n].sort()
    m = 0
    for a in range(n):
        if m == 0 or ids[a] != ids[m - 1]:
            ids[m] = ids[a]
            m += 1
    return m


@njit(nogil=True)
def _hold(locks, n_rows, holders, most, n_iter, use_locks, seed, gate):
    """n_iter times: take the locks of 4 random rows of n_rows (the global lock: n_rows = 1), count
    ourselves as a holder of each, spin a while, and leave. most[r]: the most holders row r ever had.

    gate (int64[2], zeros: the other threads that came, whether the first holds) forces what the
    test must see, whatever the scheduler does: the thread of seed 1 holds its first critical
    section until every other thread has come to take its first lock (so that some wait on a held
    one), and, without locks, until another thread has held its first row with it; the others
    start only once it holds."""
    ids = np.empty(4, np.int32)
    r = np.uint64(seed)
    for it in range(n_iter):
        for q in range(4):
            r ^= r << np.uint64(13)
            r ^= r >> np.uint64(7)
            r ^= r << np.uint64(17)
            ids[q] = np.int32(r % np.uint64(n_rows))
        if it == 0 and seed != 1:  # atomic reads (adding 0) in the loops: never hoisted out of them
            while atomic_add(gate, 1, 0) == 0:
                yield_cpu()
            atomic_add(gate, 0, 1)
        if n_rows == 1:
            m = 1
            if use_locks:
                acquire(locks, 0)
        elif use_locks:
            m = acquire_rows(locks, ids, 4)
        else:
            m = _distinct(ids, 4)
        for q in range(m):
            now = atomic_add(holders, ids[q], 1) + 1
            if now > most[ids[q]]:
                most[ids[q]] = now
        if it == 0 and seed == 1:
            atomic_add(gate, 1, 1)
            while atomic_add(gate, 0, 0) < N_THREADS - 1:
                yield_cpu()
            while not use_locks and atomic_add(most, ids[0], 0) < 2:
                yield_cpu()
        spin = 0
        for k in range(200):  # work inside the critical section, where a second holder would be seen
            spin += k ^ q
        for q in range(m):
            atomic_add(holders, ids[q], -1 + 0 * spin)
        if use_locks:
            if n_rows == 1:
                unlock(locks, 0)
            else:
                release_rows(locks, ids, m)


def _most_holders(n_rows, use_locks, n_iter=20_000):
    locks, holders, most = new_locks(n_rows), np.zeros(n_rows, np.int64), np.zeros(n_rows, np.int64)
    gate = np.zeros(2, np.int64)
    threads = [threading.Thread(target=_hold, args=(locks, n_rows, holders, most, n_iter, use_locks, 1 + t, gate))
               for t in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (locks[:, 0] == 0).all() and (holders == 0).all()  # every lock was given back
    assert gate.tolist() == [N_THREADS - 1, 1]
    return most


@pytest.mark.parametrize("n_rows", [1, 8])
def test_no_two_threads_ever_hold_one_lock(n_rows):
    """The global lock (n_rows 1) and row locks (8 rows, 4 per update, taken in id order: no
    deadlock) admit one holder at a time, also while every thread has come to take one; the same
    loop without the locks shows several (forced: the first holder waits for a second)."""
    assert _most_holders(n_rows, use_locks=True).max() == 1
    assert _most_holders(n_rows, use_locks=False).max() > 1


def test_row_locks_are_taken_sorted_and_once():
    locks, ids = new_locks(10), np.array([7, 2, 7, 0, 2], np.int32)
    m = acquire_rows(locks, ids, 5)
    assert m == 3 and ids[:3].tolist() == [0, 2, 7]
    assert locks[:, 0].tolist() == [1, 0, 1, 0, 0, 0, 0, 1, 0, 0]
    release_rows(locks, ids, m)
    assert not locks.any()


def _guard(kind, n_words):
    if kind == "global":
        return kind, (new_locks(1),)
    if kind == "rows":
        return kind, (new_locks(2 * n_words),)
    return kind, (np.zeros(2 * n_words, np.int64), np.zeros(2 * n_words, np.int64))


@pytest.mark.parametrize("kind", ["global", "rows", "count"])
def test_one_guarded_thread_trains_exactly_the_lock_free_pairs(planted, kind):
    vocab, enc = _encode(planted)
    cfg = Word2VecConfig(threads=1, batching="pair", seed=3, **SMALL)
    free = train_word2vec(enc, vocab, cfg, progress=False)
    guard = _guard(kind, len(vocab))
    res = train_word2vec(enc, vocab, cfg, progress=False, guard=guard)
    assert np.array_equal(free.w_in, res.w_in) and np.array_equal(free.w_out, res.w_out)
    assert (guard[1][0][:, 0] == 0).all() if kind != "count" else True


def _collisions_bounded_by_writes(writes, collided):
    """What holds however threads interleave: a row's first write is never overtaken (no write
    came before it), and a collided write is a write."""
    assert (collided >= 0).all() and (collided <= np.maximum(writes - 1, 0)).all()


def test_counted_writes_are_the_pairs_and_one_thread_never_collides(planted):
    vocab, enc = _encode(planted)
    n = len(vocab)
    one = _guard("count", n)
    res = train_word2vec(enc, vocab, Word2VecConfig(threads=1, batching="pair", **SMALL), progress=False, guard=one)
    writes, collided = one[1]
    assert writes[:n].sum() == sum(res.epoch_examples)  # one context row per pair
    # the center and its distinct negatives: at least 1, at most 1 + negative w_out rows per pair
    assert sum(res.epoch_examples) < writes[n:].sum() <= (1 + SMALL["negative"]) * sum(res.epoch_examples)
    assert collided.sum() == 0
    many = _guard("count", n)
    res = train_word2vec(enc, vocab, Word2VecConfig(threads=N_THREADS, batching="pair", **SMALL), progress=False,
                         guard=many)
    writes, collided = many[1]
    assert writes[:n].sum() == sum(res.epoch_examples)  # atomic counts: none lost between threads
    assert sum(res.epoch_examples) < writes[n:].sum() <= (1 + SMALL["negative"]) * sum(res.epoch_examples)
    _collisions_bounded_by_writes(writes, collided)  # how many collide depends on the scheduler


@njit(nogil=True)
def _counted_pairs(w_in, w_out, pairs, scratch):
    """The counted update (word2vec_guarded) of each (center, context, negative) row of pairs."""
    for p in range(pairs.shape[0]):
        _guarded_update(w_in, w_out, pairs[p, 0], pairs[p, 1], pairs[p, 2:], np.float32(0.025), scratch)


def test_a_write_between_a_counted_pairs_read_and_write_is_a_collision():
    """Two threads update pairs of the same context row 1 (their other rows differ); the first to
    reach row 1 waits, once it has read the rows' versions, until the other has written row 1 (the
    test hold): exactly that write collides, whichever thread waited."""
    from w2v_async.models.hot_rows import hot_scratch
    from w2v_async.models.word2vec import word2vec_scratch
    from w2v_async.models.word2vec_guarded import SGNS_COLLISION_TEST_HOLD_SCRATCH, guarded_scratch

    n, dim = 6, 8
    w_in = np.random.default_rng(0).uniform(-0.5, 0.5, (n, dim)).astype(np.float32)
    w_out = np.zeros((n, dim), np.float32)
    versions, collided, test_hold = np.zeros(2 * n, np.int64), np.zeros(2 * n, np.int64), np.array([1, 0], np.int64)
    scratches = [guarded_scratch(word2vec_scratch("pair", dim, 1, 1, 4, hot_scratch(0, 0, 1, dim)), "count",
                                 (versions, collided, test_hold), 1) for _ in range(2)]
    assert numba.typeof(scratches[0]) == SGNS_COLLISION_TEST_HOLD_SCRATCH
    pairs = [np.array([[0, 1, 2]], np.int32), np.array([[3, 1, 4]], np.int32)]  # (center, context, negative)
    threads = [threading.Thread(target=_counted_pairs, args=(w_in, w_out, pairs[t], scratches[t])) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert test_hold.tolist() == [1, 2]  # both reached row 1, one waited there
    assert versions[1] == 2 and collided.tolist() == [0, 1] + [0] * (2 * n - 2)
    assert sorted(np.flatnonzero(versions).tolist()) == [1, n + 0, n + 2, n + 3, n + 4]


@pytest.mark.parametrize("kind", ["global", "rows"])
def test_locked_threads_learn_the_planted_groups(planted, kind):
    from conftest import group_margin

    vocab, enc = _encode(planted)
    res = train_word2vec(enc, vocab, Word2VecConfig(threads=N_THREADS, batching="pair", **SMALL), progress=False,
                         guard=_guard(kind, len(vocab)))
    assert group_margin(vocab.words, res.w_in) > 0.5  # one thread's margin: locks leave no lost updates


def test_guards_are_for_skip_gram_pairs(planted):
    vocab, enc = _encode(planted)
    with pytest.raises(ConfigError, match="--batching pair"):
        train_word2vec(enc, vocab, Word2VecConfig(threads=1, **SMALL), progress=False, guard=_guard("global", 40))


@pytest.mark.parametrize("n_locks", ["global", "rows"])
def test_one_locked_glove_thread_trains_exactly_the_lock_free_updates(n_locks):
    from conftest import random_cooc
    from w2v_async.config import GloveConfig
    from w2v_async.engines.threads import train_glove

    cooc = random_cooc(30)
    cfg = GloveConfig(dim=8, epochs=3, threads=1)
    free = train_glove(cooc, cfg, progress=False)
    locks = new_locks(1 if n_locks == "global" else 60)
    res = train_glove(cooc, cfg, progress=False, locks=locks)
    assert np.array_equal(free.w_word, res.w_word) and np.array_equal(free.b_ctx, res.b_ctx)
    assert not locks.any()
    many = train_glove(cooc, GloveConfig(dim=8, epochs=3, threads=N_THREADS), progress=False, locks=locks)
    assert many.epoch_cost[-1] < many.epoch_cost[0] and not locks.any()


def test_counted_glove_writes_are_two_per_entry_and_one_thread_never_collides():
    from conftest import random_cooc
    from w2v_async.config import GloveConfig
    from w2v_async.engines.threads import train_glove

    cooc = random_cooc(30)
    cfg = GloveConfig(dim=8, epochs=2, threads=1)
    free = train_glove(cooc, cfg, progress=False)
    counts = (np.zeros(60, np.int64), np.zeros(60, np.int64))
    res = train_glove(cooc, cfg, progress=False, counts=counts)
    assert np.array_equal(free.w_word, res.w_word)  # counting changes no update
    assert counts[0][:30].sum() == counts[0][30:].sum() == 2 * cooc.nnz and counts[1].sum() == 0
    np.testing.assert_array_equal(counts[0][:30], 2 * np.bincount(cooc.rows, minlength=30))
    many = (np.zeros(60, np.int64), np.zeros(60, np.int64))
    train_glove(cooc, GloveConfig(dim=8, epochs=30, threads=N_THREADS), progress=False, counts=many)
    # every entry's two rows once an epoch, whatever the threads did (atomic counts)
    np.testing.assert_array_equal(many[0], 30 * np.concatenate([np.bincount(cooc.rows, minlength=30),
                                                                np.bincount(cooc.cols, minlength=30)]))
    _collisions_bounded_by_writes(*many)  # how many collide depends on the scheduler


def test_a_write_between_a_counted_glove_updates_read_and_write_is_a_collision():
    """Two threads update entries of the same row 0 of W (their rows of W~ differ); the first to
    reach it waits, once it has read the versions, until the other has written it (the test hold):
    exactly that write collides, whichever thread waited."""
    from w2v_async.models.glove_guarded import train_glove_counted_epoch_test_hold

    n, dim = 4, 8
    rng = np.random.default_rng(0)
    params = tuple(np.ascontiguousarray(a, np.float32) for a in
                   (rng.uniform(-0.1, 0.1, (n, dim)), rng.uniform(-0.1, 0.1, (n, dim)), np.zeros(n), np.zeros(n)))
    gradsq = tuple(np.ones_like(p) for p in params)
    hyper = np.array([10.0, 0.75, 0.05, 100.0])
    counters = np.zeros(3, np.int64)
    versions, collided, test_hold = np.zeros(2 * n, np.int64), np.zeros(2 * n, np.int64), np.array([0, 0], np.int64)
    entries = [(np.array([0], np.int32), np.array([c], np.int32), np.array([5.0], np.float32)) for c in (1, 2)]
    threads = [threading.Thread(target=train_glove_counted_epoch_test_hold,
                                args=(params, gradsq, entries[t], hyper, counters, t, versions, collided, test_hold))
               for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert test_hold.tolist() == [0, 2] and counters[1:].tolist() == [1, 1]
    assert versions.tolist() == [2, 0, 0, 0, 0, 1, 1, 0] and collided.tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
