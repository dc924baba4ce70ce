"""Kernels against the NumPy reference, finite differences, and the alias noise table."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from w2v_async.models import hot_rows

from w2v_async.models import sampling

from w2v_async.models import word2vec
from naive import cbow_step, sgns_loss, sgns_step, sgns_window_step

V, D = 6, 4
SIGMOID_TABLE_ERROR = 0.0032  # max |sigmoid - table| on [-6, 6] with 1000 cells (slope <= 1/4)


def _matrices(seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    w_in = rng.uniform(-scale, scale, (V, D)).astype(np.float32)
    w_out = rng.uniform(-scale, scale, (V, D)).astype(np.float32)
    return w_in, w_out


@pytest.mark.parametrize("negatives", [[2, 3, 4], [1, 1, 5], [0, 2, 0]])  # duplicates, center itself
def test_sgns_update_matches_numpy_reference(negatives):
    w_in, w_out = _matrices()
    center, context, lr = 0, 1, 0.5
    ref_in, ref_out, ref_loss = sgns_step(w_in, w_out, center, context, negatives, lr)
    grad = np.zeros(D, np.float32)
    loss = word2vec.sgns_update(w_in, w_out, center, context, np.array(negatives, np.int32), np.float32(lr), grad)
    tol = lr * SIGMOID_TABLE_ERROR * 4 * 0.5 * D
    np.testing.assert_allclose(w_in, ref_in, atol=tol)
    np.testing.assert_allclose(w_out, ref_out, atol=tol)
    assert loss == pytest.approx(ref_loss, abs=0.02 * (len(negatives) + 1))
    changed = np.abs(w_in - _matrices()[0]).sum(axis=1) > 0
    assert changed.tolist() == [i == context for i in range(V)]


def test_cbow_update_matches_numpy_reference():
    w_in, w_out = _matrices(1)
    center, contexts, negatives, lr = 3, [0, 1, 5], [2, 4], 0.5
    ref_in, ref_out, ref_loss = cbow_step(w_in, w_out, center, contexts, negatives, lr)
    grad = np.zeros(D, np.float32)
    neu1 = np.zeros(D, np.float32)
    loss = word2vec.cbow_update(
        w_in, w_out, center, np.array(contexts, np.int32), np.array(negatives, np.int32), np.float32(lr), grad, neu1
    )
    tol = lr * SIGMOID_TABLE_ERROR * D
    np.testing.assert_allclose(w_in, ref_in, atol=tol)
    np.testing.assert_allclose(w_out, ref_out, atol=tol)
    assert loss == pytest.approx(ref_loss, abs=0.05)


@pytest.mark.parametrize(
    "contexts, negatives",
    [([1, 2, 5], [2, 3, 4]), ([1, 1, 5], [3, 3, 4]), ([4], [0, 2, 0]), ([0, 3, 2, 5], [])],
)  # contexts and negatives repeated, negatives equal to the center, no negatives
def test_sgns_window_update_matches_numpy_minibatch_reference(contexts, negatives):
    w_in, w_out = _matrices(3)
    center, lr = 0, 0.5
    ref_in, ref_out, ref_loss = sgns_window_step(w_in, w_out, center, contexts, negatives, lr)
    n_in, n_out = len(contexts), len(negatives) + 1
    loss = word2vec.sgns_window_update(
        w_in, w_out, center, np.array(contexts, np.int32), np.array(negatives, np.int32), np.float32(lr),
        np.zeros((n_in, D), np.float32), np.zeros((n_in, n_out), np.float32),
    )
    tol = lr * SIGMOID_TABLE_ERROR * 4 * 0.5 * D * n_in  # a row sums up to n_in table-rounded gradients
    np.testing.assert_allclose(w_in, ref_in, atol=tol)
    np.testing.assert_allclose(w_out, ref_out, atol=tol)
    assert loss == pytest.approx(ref_loss, abs=0.02 * n_in * n_out)
    touched_in = set(contexts)
    touched_out = {center} | set(negatives)
    assert [i for i in range(V) if not np.array_equal(w_in[i], _matrices(3)[0][i])] == sorted(touched_in)
    assert [i for i in range(V) if not np.array_equal(w_out[i], _matrices(3)[1][i])] == sorted(touched_out)


def test_sgns_window_update_differs_from_sequential_pair_updates():
    """The minibatch step reads old rows: after one context moves w_out[center], the next context
    must still see the old w_out[center]. Sequential word2vec.c updates give a different result."""
    w_in, w_out = _matrices(4)
    contexts, negatives, lr = [1, 2], [3], 0.5
    batch_in, batch_out = w_in.copy(), w_out.copy()
    word2vec.sgns_window_update(batch_in, batch_out, 0, np.array(contexts, np.int32), np.array(negatives, np.int32),
                               np.float32(lr), np.zeros((2, D), np.float32), np.zeros((2, 2), np.float32))
    seq_in, seq_out = w_in.astype(np.float64), w_out.astype(np.float64)
    for c in contexts:
        seq_in, seq_out, _ = sgns_step(seq_in, seq_out, 0, c, negatives, lr)
    assert np.abs(batch_out - seq_out).max() > 1e-3


def test_a_hot_row_is_merged_after_every_k_uses_and_only_then():
    """Rows 0-1 are hot with copies at rows 4-5 (offset 4), K = 3: the shared row sees a thread's
    change at its third use, not before, and the count restarts; other ids are not counted."""
    rng = np.random.default_rng(6)
    m = np.zeros((6, D), np.float32)
    m[:4] = rng.standard_normal((4, D))
    base = np.zeros((2, D), np.float32)
    hot_rows.merge_hot_rows(m, 4, base)  # the copies start from the shared rows
    info, uses = np.array([2, 4, 3], np.int64), np.zeros(2, np.int32)
    start = m[:4].copy()
    for n_use in range(1, 7):
        m[4] += np.float32(1.0)  # the thread trains its copy of row 0
        hot_rows._touch_hot_rows(m, np.array([4, 2, 3], np.int32), info, uses, base)  # one use of row 0
        merged = n_use // 3 * 3
        np.testing.assert_allclose(m[0], start[0] + merged, rtol=1e-6)
        assert uses[0] == n_use % 3 and uses[1] == 0
    np.testing.assert_array_equal(m[1:4], start[1:4])


def test_merge_hot_rows_adds_each_threads_change_once():
    """Two threads' private copies of shared rows 0-1 (at rows 4-5 and 6-7): after both merge, the
    shared rows hold the start plus both changes, and each copy restarts from the shared row."""
    rng = np.random.default_rng(5)
    m = np.zeros((8, D), np.float32)
    m[:2] = rng.standard_normal((2, D))
    bases = [np.zeros((2, D), np.float32), np.zeros((2, D), np.float32)]
    for offset, base in zip((4, 6), bases):  # first merge: copies and bases start from the shared rows
        hot_rows.merge_hot_rows(m, offset, base)
    start = m[:2].copy()
    np.testing.assert_array_equal(m[4:6], start)
    np.testing.assert_array_equal(m[6:8], start)
    change_a, change_b = rng.standard_normal((2, 2, D)).astype(np.float32)
    m[4:6] += change_a
    m[6:8] += change_b
    hot_rows.merge_hot_rows(m, 4, bases[0])
    hot_rows.merge_hot_rows(m, 6, bases[1])
    np.testing.assert_allclose(m[:2], start + change_a + change_b, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(m[6:8], m[:2])
    hot_rows.merge_hot_rows(m, 4, bases[0])  # nothing new: the shared rows stay
    np.testing.assert_allclose(m[:2], start + change_a + change_b, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(m[4:6], m[:2])


def _numeric_grad(fn, x, eps=1e-5):
    g = np.zeros_like(x)
    for i in range(x.size):
        step = np.zeros_like(x)
        step.flat[i] = eps
        g.flat[i] = (fn(x + step) - fn(x - step)) / (2 * eps)
    return g


def test_sgns_update_is_minus_lr_times_finite_difference_gradient():
    """With a tiny lr the kernel's change of each row is -lr * dLoss/drow (sigmoid-table accuracy)."""
    w_in, w_out = _matrices(2)
    center, context, negatives, lr = 0, 1, [2, 3, 4], 1e-2
    v = w_in[context].astype(np.float64)
    u = w_out[[center] + negatives].astype(np.float64)
    grad_v = _numeric_grad(lambda x: sgns_loss(x, u[0], u[1:]), v)
    grad_u = _numeric_grad(lambda x: sgns_loss(v, x[0], x[1:]), u)
    before_in, before_out = w_in.copy(), w_out.copy()
    word2vec.sgns_update(w_in, w_out, center, context, np.array(negatives, np.int32), np.float32(lr),
                        np.zeros(D, np.float32))
    step_v = (w_in[context] - before_in[context]) / -lr
    step_u = (w_out[[center] + negatives] - before_out[[center] + negatives]) / -lr
    bound = SIGMOID_TABLE_ERROR * np.abs(u).sum(axis=0).max() + 1e-3
    np.testing.assert_allclose(step_v, grad_v, atol=bound)
    np.testing.assert_allclose(step_u, grad_u, atol=SIGMOID_TABLE_ERROR + 1e-3)
    assert np.abs(grad_v).max() > 10 * bound  # the check is not vacuous


def test_saturated_scores_get_word2vec_c_gradients():
    """Beyond |f| > 6 the positive gets g = 0 when f >> 0 and g = lr when f << 0 (word2vec.c)."""
    w_in = np.zeros((2, 2), np.float32)
    w_out = np.zeros((2, 2), np.float32)
    w_in[0] = [10.0, 0.0]
    w_out[1] = [-1.0, 0.0]  # f = -10 for the positive pair
    grad = np.zeros(2, np.float32)
    loss = word2vec.sgns_update(w_in, w_out, 1, 0, np.zeros(0, np.int32), np.float32(0.1), grad)
    np.testing.assert_allclose(w_in[0], [10.0 - 0.1, 0.0], rtol=1e-6)  # v += lr * u
    assert loss == pytest.approx(10.0)  # -log s(-10) ~ 10


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=1, max_size=50))
def test_alias_table_reproduces_distribution_exactly(weights):
    p = np.asarray(weights) / np.sum(weights)
    prob, alias = sampling.build_alias_table(p)
    n = p.shape[0]
    implied = prob.astype(np.float64) / n
    np.add.at(implied, alias, (1.0 - prob.astype(np.float64)) / n)
    np.testing.assert_allclose(implied, p, atol=1e-6)
    assert ((prob >= 0) & (prob <= 1)).all() and ((alias >= 0) & (alias < n)).all()


def test_negative_draws_follow_unigram_power_distribution():
    counts = np.array([1000, 300, 100, 30, 10, 1], np.float64)
    p = counts**0.75 / (counts**0.75).sum()
    prob, alias = sampling.build_alias_table(p)
    draws = np.zeros(200_000, np.int32)
    sampling._draw_negatives(np.uint64(12345), prob, alias, draws, 0, 0)
    freq = np.bincount(draws, minlength=len(p)) / draws.shape[0]
    assert (np.abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / draws.shape[0]) + 1e-4).all(), (freq, p)


def test_rng_bounded_covers_range_uniformly():
    r = np.uint64(99)
    seen = np.zeros(5, np.int64)
    with np.errstate(over="ignore"):  # uint64 multiplication wraps, as in the kernel
        for _ in range(20_000):
            r = sampling.xorshift_next(r)
            seen[sampling.bounded(r * sampling._XORSHIFT_MULT, np.uint64(5))] += 1
    assert seen.min() > 3700 and seen.max() < 4300


@pytest.mark.parametrize("model, expected", [("cbow", [1, 2, 2, 2, 1]), ("sgns", [1, 1, 1, 1, 1])])
def test_cbow_counts_a_hot_context_use_in_every_window_that_updates_it(model, expected):
    """With window 1 every interior word is a context of two windows. CBOW gives each context row
    the window's whole gradient, so each window counts a use of its hot context rows: the private
    copies then lag at most K real updates (counting once per occurrence let them lag 2 x reach
    times more, which cost CBOW analogy points at window 10: issue 16). Skip-gram keeps its
    calibrated count, once per occurrence."""
    from w2v_async.config import Word2VecConfig
    from w2v_async.engines.base import thread_scratch
    from w2v_async.models import word2vec_loops
    from w2v_async.models.common import RUN

    n, dim = 5, 8
    cfg = Word2VecConfig(model=model, dim=dim, window=1, negative=2, sample=0.0, threads=1,
                         batching=None if model == "cbow" else "pair")
    w_in = np.zeros((2 * n, dim), np.float32)
    w_in[:n] = np.random.default_rng(0).uniform(-0.1, 0.1, (n, dim))
    w_out = np.zeros((2 * n, dim), np.float32)
    hot = hot_rows.hot_scratch(n, n, 1 << 30, dim)  # every row hot, copies at rows n.., never merged by count
    scratch = thread_scratch(cfg, n, hot)
    corpus = (np.arange(n, dtype=np.int32), np.array([0, n], np.int64), np.array([0], np.int64))
    noise_prob, noise_alias = sampling.build_alias_table(np.full(n, 1.0 / n))
    tables = (np.ones(n, np.float32), noise_prob, noise_alias)
    kernel = word2vec_loops.epoch_kernel("cbow" if model == "cbow" else "pair")
    kernel(w_in, w_out, corpus, tables, np.array([0.025, 0.0001, n], np.float64), np.array([7], np.uint64),
           np.array([RUN, 0], np.int64), 0, (1, 1), scratch)
    assert hot[1][:n].tolist() == expected  # w_in's uses of each hot row
    assert np.abs(w_in[:n]).sum() > 0 and np.array_equal(w_in[:n], w_in[n:])  # trained, and merged at the end
