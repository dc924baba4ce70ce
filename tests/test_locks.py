"""The experiment's locks (models/locks.py) exclude each other, and the guarded skip-gram
(word2vec_guarded.py) trains word2vec.c's pairs exactly as the lock-free kernel does."""

import threading

import numpy as np
import pytest
from numba import njit

from test_train import SMALL, _encode
from w2v_async.config import Word2VecConfig
from w2v_async.engines.threads import train_word2vec
from w2v_async.errors import ConfigError
from w2v_async.models.locks import acquire, acquire_rows, atomic_add, new_locks, release_rows, unlock

N_THREADS = 6  # above this machine's cores: holders are descheduled inside the lock, and waiters yield


@njit(nogil=True)
def _hold(locks, n_rows, holders, most, n_iter, use_locks, seed):
    """n_iter times: take the locks of 4 random rows of n_rows (the global lock: n_rows = 1), count
    ourselves as a holder of each, spin a while, and leave. most[r]: the most holders row r ever had."""
    ids = np.empty(4, np.int32)
    r = np.uint64(seed)
    for _ in range(n_iter):
        for q in range(4):
            r ^= r << np.uint64(13)
            r ^= r >> np.uint64(7)
            r ^= r << np.uint64(17)
            ids[q] = np.int32(r % np.uint64(n_rows))
        if not use_locks:
            m = 4
        elif n_rows == 1:
            acquire(locks, 0)
            m = 1
        else:
            m = acquire_rows(locks, ids, 4)
        for q in range(m):
            now = atomic_add(holders, ids[q], 1) + 1
            if now > most[ids[q]]:
                most[ids[q]] = now
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
    threads = [threading.Thread(target=_hold, args=(locks, n_rows, holders, most, n_iter, use_locks, 1 + t))
               for t in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (locks[:, 0] == 0).all() and (holders == 0).all()  # every lock was given back
    return most


@pytest.mark.parametrize("n_rows", [1, 8])
def test_no_two_threads_ever_hold_one_lock(n_rows):
    """The global lock (n_rows 1) and row locks (8 rows, 4 per update, taken in id order: no
    deadlock) admit one holder at a time; the same loop without the locks shows several."""
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
    train_word2vec(enc, vocab, Word2VecConfig(threads=N_THREADS, batching="pair", **SMALL), progress=False,
                   guard=many)
    assert 0 < many[1][1].sum() < many[1][0].sum()  # 40 words: every row is hot, threads collide


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
    assert 0 < many[1].sum() < many[0].sum()  # 30 words, 900 entries: every row is hot
