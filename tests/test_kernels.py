"""Kernels against the NumPy reference, finite differences, and the alias noise table."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from w2v_async import kernels
from naive import cbow_step, sgns_loss, sgns_step

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
    loss = kernels.sgns_update(w_in, w_out, center, context, np.array(negatives, np.int32), np.float32(lr), grad)
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
    loss = kernels.cbow_update(
        w_in, w_out, center, np.array(contexts, np.int32), np.array(negatives, np.int32), np.float32(lr), grad, neu1
    )
    tol = lr * SIGMOID_TABLE_ERROR * D
    np.testing.assert_allclose(w_in, ref_in, atol=tol)
    np.testing.assert_allclose(w_out, ref_out, atol=tol)
    assert loss == pytest.approx(ref_loss, abs=0.05)


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
    kernels.sgns_update(w_in, w_out, center, context, np.array(negatives, np.int32), np.float32(lr),
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
    loss = kernels.sgns_update(w_in, w_out, 1, 0, np.zeros(0, np.int32), np.float32(0.1), grad)
    np.testing.assert_allclose(w_in[0], [10.0 - 0.1, 0.0], rtol=1e-6)  # v += lr * u
    assert loss == pytest.approx(10.0)  # -log s(-10) ~ 10


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=1, max_size=50))
def test_alias_table_reproduces_distribution_exactly(weights):
    p = np.asarray(weights) / np.sum(weights)
    prob, alias = kernels.build_alias_table(p)
    n = p.shape[0]
    implied = prob.astype(np.float64) / n
    np.add.at(implied, alias, (1.0 - prob.astype(np.float64)) / n)
    np.testing.assert_allclose(implied, p, atol=1e-6)
    assert ((prob >= 0) & (prob <= 1)).all() and ((alias >= 0) & (alias < n)).all()


def test_negative_draws_follow_unigram_power_distribution():
    counts = np.array([1000, 300, 100, 30, 10, 1], np.float64)
    p = counts**0.75 / (counts**0.75).sum()
    prob, alias = kernels.build_alias_table(p)
    draws = np.zeros(200_000, np.int32)
    kernels._draw_negatives(np.uint64(12345), prob, alias, draws)
    freq = np.bincount(draws, minlength=len(p)) / draws.shape[0]
    assert (np.abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / draws.shape[0]) + 1e-4).all(), (freq, p)


def test_rng_bounded_covers_range_uniformly():
    r = np.uint64(99)
    seen = np.zeros(5, np.int64)
    with np.errstate(over="ignore"):  # uint64 multiplication wraps, as in the kernel
        for _ in range(20_000):
            r = kernels.xorshift_next(r)
            seen[kernels.bounded(r * kernels._XORSHIFT_MULT, np.uint64(5))] += 1
    assert seen.min() > 3700 and seen.max() < 4300
