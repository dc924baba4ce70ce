"""GloVe AdaGrad kernel against the NumPy reference and finite differences."""

import numpy as np
import pytest

from conftest import group_margin
from naive import glove_loss, glove_step
from w2v_async.models import glove

V, D = 6, 4


def _state(seed=0):
    rng = np.random.default_rng(seed)
    params = (rng.uniform(-0.5, 0.5, (V, D)).astype(np.float32), rng.uniform(-0.5, 0.5, (V, D)).astype(np.float32),
              rng.uniform(-0.5, 0.5, V).astype(np.float32), rng.uniform(-0.5, 0.5, V).astype(np.float32))
    gradsq = (rng.uniform(1, 2, (V, D)).astype(np.float32), rng.uniform(1, 2, (V, D)).astype(np.float32),
              rng.uniform(1, 2, V).astype(np.float32), rng.uniform(1, 2, V).astype(np.float32))
    return params, gradsq


@pytest.mark.parametrize("x", [0.5, 7.0, 150.0])  # below and above x_max = 100
def test_glove_update_matches_numpy_reference(x):
    params, gradsq = _state()
    ref_params, ref_gradsq, ref_loss = glove_step(params, gradsq, 1, 3, x, 100.0, 0.75, 0.05)
    loss = glove.glove_update(params, gradsq, 1, 3, np.float32(x), np.array([100.0, 0.75, 0.05, 100.0]))
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    for got, want in zip(params + gradsq, ref_params + ref_gradsq):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    untouched = [r for r in range(V) if r != 1]
    np.testing.assert_array_equal(params[0][untouched], _state()[0][0][untouched])


def test_glove_step_follows_the_finite_difference_gradient():
    """With gradsq = 1, the first step moves each vector coordinate by -eta * dJ/dparam and each
    bias by -dJ/dbias: glove.c gives the biases a learning rate of 1, not eta (the older glove.c
    scaled both by eta; that made our WS353 0.02 lower than Stanford's)."""
    params, _ = _state(1)
    ones = tuple(np.ones_like(p) for p in params)
    i, j, x, eta = 2, 4, 3.0, 1e-3
    w, c, bw, bc = [p.astype(np.float64) for p in params]
    eps = 1e-6

    def grad(f, v):
        return np.array([(f(v + e) - f(v - e)) / (2 * eps) for e in np.eye(v.shape[0]) * eps])

    g_wi = grad(lambda v: glove_loss(v, c[j], bw[i], bc[j], x, 100.0, 0.75), w[i])
    g_bi = (glove_loss(w[i], c[j], bw[i] + eps, bc[j], x, 100.0, 0.75)
            - glove_loss(w[i], c[j], bw[i] - eps, bc[j], x, 100.0, 0.75)) / (2 * eps)
    before = [p.copy() for p in params]
    glove.glove_update(params, ones, i, j, np.float32(x), np.array([100.0, 0.75, eta, 100.0]))
    np.testing.assert_allclose((params[0][i] - before[0][i]) / -eta, g_wi, rtol=1e-3, atol=1e-5)
    assert (params[2][i] - before[2][i]) / -1.0 == pytest.approx(g_bi, rel=1e-3)
    assert np.abs(g_wi).max() > 1e-2  # not a vacuous check


def test_vector_gradients_are_clipped_before_eta():
    """A far-off entry: each coordinate's gradient is cut to grad_clip, so the first step is
    eta * grad_clip at most (glove.c's -grad-clip); the bias step is not clipped."""
    params, _ = _state(2)
    params[0][1] *= 2000.0  # w_i . w~_j in the thousands: fdiff * w~_j far beyond 5
    ones = tuple(np.ones_like(p) for p in params)
    before = [p.copy() for p in params]
    eta, clip = 0.05, 5.0
    glove.glove_update(params, ones, 1, 3, np.float32(500.0), np.array([100.0, 0.75, eta, clip]))
    step_ctx = np.abs(params[1][3] - before[1][3])
    assert step_ctx.max() == pytest.approx(eta * clip, rel=1e-6)  # the context row's gradient is fdiff * w_i
    assert abs(params[3][3] - before[3][3]) > 100 * eta * clip  # the bias moved by the whole fdiff


def test_epoch_kernel_reduces_cost_on_a_consistent_problem():
    """Entries generated from true vectors: repeated epochs drive the weighted cost down."""
    rng = np.random.default_rng(3)
    true_w, true_c = rng.normal(0, 0.5, (V, D)), rng.normal(0, 0.5, (V, D))
    rows, cols = np.meshgrid(np.arange(V), np.arange(V), indexing="ij")
    values = np.exp(true_w @ true_c.T + 2.0).astype(np.float32).ravel()
    coo = (rows.ravel().astype(np.int32), cols.ravel().astype(np.int32), values)
    params = (((rng.random((V, D)) - 0.5) / D).astype(np.float32), ((rng.random((V, D)) - 0.5) / D).astype(np.float32),
              np.zeros(V, np.float32), np.zeros(V, np.float32))
    gradsq = tuple(np.ones_like(p) for p in params)
    counters = np.zeros(2, np.int64)
    costs = [glove.train_glove_epoch(params, gradsq, coo, np.array([100.0, 0.75, 0.05, 100.0]), counters, 0)[0]
             for _ in range(300)]
    assert costs[-1] < 0.05 * costs[0]
    assert counters[1] == 300 * V * V


def _planted_cooc(tmp_path):
    from conftest import planted_corpus
    from w2v_async.config import VocabConfig
    from w2v_async.data.cooccur import count_cooccurrences
    from w2v_async.data.corpus import CorpusReader
    from w2v_async.data.vocab import scan_corpus

    vocab, enc = scan_corpus(CorpusReader(str(planted_corpus(tmp_path / "p.txt", mix=0.1))), VocabConfig(min_count=1))
    return count_cooccurrences(enc, vocab, window=5)


def test_glove_single_thread_is_bit_identical_and_learns_planted_groups(tmp_path):
    from w2v_async.config import GloveConfig
    from w2v_async.engines.threads import train_glove

    cooc = _planted_cooc(tmp_path)
    cfg = GloveConfig(dim=16, epochs=25, x_max=10.0, threads=1, seed=3)
    a = train_glove(cooc, cfg, progress=False)
    b = train_glove(cooc, cfg, progress=False)
    assert np.array_equal(a.vectors(), b.vectors()) and a.epoch_cost == b.epoch_cost
    assert a.epoch_cost[-1] < 0.5 * a.epoch_cost[0]
    assert group_margin(cooc.vocab.words, a.vectors()) > 0.5
    two = train_glove(cooc, GloveConfig(dim=16, epochs=25, x_max=10.0, threads=2, seed=3), progress=False)
    # two Hogwild threads on 40 words collide on most updates: the converged cost (~1e-3) varies
    # 0.7-1.8x between runs, so check that they learn rather than match one thread's last digits
    assert two.epoch_cost[-1] < 0.5 * two.epoch_cost[0]
    assert group_margin(cooc.vocab.words, two.vectors()) > 0.3


def _params64(seed=0, v=V, d=D):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.3, (v, d)), rng.normal(0, 0.3, (v, d)), rng.normal(0, 0.3, v), rng.normal(0, 0.3, v))


def test_batch_gradient_is_the_sum_of_the_entries_gradients():
    """One pass over a block gives the sum of the per-entry costs and gradients (with repeated rows
    and columns), each checked against finite differences of glove_loss."""
    rng = np.random.default_rng(5)
    n = 40
    rows, cols = rng.integers(0, V, n).astype(np.int32), rng.integers(0, V, n).astype(np.int32)
    values = rng.uniform(0.5, 150.0, n).astype(np.float32)  # below and above x_max
    params = _params64()
    hyper = np.array([100.0, 0.75, 0.05, 100.0])
    grads = tuple(np.zeros_like(p) for p in params)
    cost = glove.glove_gradient(params, grads, (rows, cols, values), hyper)
    expected = tuple(np.zeros_like(p) for p in params)
    expected_cost, eps = 0.0, 1e-6
    for i, j, x in zip(rows, cols, values.astype(np.float64)):
        w, c, bw, bc = params
        expected_cost += glove_loss(w[i], c[j], bw[i], bc[j], x, 100.0, 0.75)
        for k in range(D):
            for target, vec, other in ((expected[0], w[i], c[j]), (expected[1], c[j], w[i])):
                e = np.zeros(D)
                e[k] = eps
                f = (lambda a: glove_loss(a, other, bw[i], bc[j], x, 100.0, 0.75)) if target is expected[0] else \
                    (lambda a: glove_loss(other, a, bw[i], bc[j], x, 100.0, 0.75))
                target[i if target is expected[0] else j, k] += (f(vec + e) - f(vec - e)) / (2 * eps)
        g_b = (glove_loss(w[i], c[j], bw[i] + eps, bc[j], x, 100.0, 0.75)
               - glove_loss(w[i], c[j], bw[i] - eps, bc[j], x, 100.0, 0.75)) / (2 * eps)
        expected[2][i] += g_b
        expected[3][j] += g_b
    assert cost == pytest.approx(expected_cost, rel=1e-12)
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    # two blocks summed equal the one pass: what replicas pushing partial gradients rely on
    halves = tuple(np.zeros_like(p) for p in params)
    cost2 = sum(glove.glove_gradient(params, halves, tuple(a[s] for a in (rows, cols, values)), hyper)
                for s in (slice(0, 17), slice(17, n)))
    assert cost2 == pytest.approx(cost, rel=1e-12)
    for got, want in zip(halves, grads):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
