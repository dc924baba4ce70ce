"""Sandblaster's coordinator: L-BFGS by commands to parameter shards, against scipy's L-BFGS-B
(a test oracle only) and a dense BFGS inverse Hessian."""

import math

import numpy as np
import pytest
import scipy.optimize

from w2v_async.engines.sandblaster import LbfgsSettings, lbfgs, two_loop, wolfe_search
from w2v_async.engines.sandblaster_actors import ShardGroup, VectorShard
from w2v_async.models import glove

V, D = 12, 3
SIZES = [(V, D), (V, D), (V,), (V,)]
HYPER = np.array([10.0, 0.75, 0.05, 100.0])


def _problem(seed=0):
    """A small GloVe problem: 70% of the word pairs, random counts (not consistent: the loss stays > 0)."""
    rng = np.random.default_rng(seed)
    rows, cols = [a.ravel().astype(np.int32) for a in np.meshgrid(np.arange(V), np.arange(V), indexing="ij")]
    keep = rng.random(rows.shape[0]) < 0.7
    coo = (rows[keep], cols[keep], rng.uniform(0.5, 50, int(keep.sum())).astype(np.float32))

    def fg(x):
        params, o = [], 0
        for shape in SIZES:
            n = int(np.prod(shape))
            params.append(np.ascontiguousarray(x[o : o + n].reshape(shape)))
            o += n
        grads = tuple(np.zeros_like(p) for p in params)
        f = glove.glove_gradient(tuple(params), grads, coo, HYPER)
        return f, np.concatenate([g.ravel() for g in grads])

    return fg, rng.normal(0, 0.3, 2 * V * D + 2 * V)


def _shards(x0, cuts, history):
    shards = [VectorShard(x0[a:b], history) for a, b in zip(cuts[:-1], cuts[1:])]
    return shards, ShardGroup(shards)


def _run(fg, x0, cuts, settings, h=None):
    shards, group = _shards(x0, cuts, settings.history)
    for s, a, b in zip(shards, cuts[:-1], cuts[1:]):
        if h is not None:
            s.v["h"] = h[a:b].copy()

    def evaluate(point, gradient):  # what the replicas do: fetch the point, push the gradient
        f, g = fg(np.concatenate([s.get(point) for s in shards]))
        for s, a, b in zip(shards, cuts[:-1], cuts[1:]):
            s.zero(gradient)
            s.add(gradient, g[a:b])
        return f

    state = lbfgs(group, evaluate, settings)
    return state, np.concatenate([s.get("x") for s in shards])


def test_iterates_match_scipy_lbfgs_b():
    fg, x0 = _problem()
    n = 40
    state, x = _run(fg, x0, [0, 17, 50, x0.shape[0]], LbfgsSettings(max_iter=n, gtol=0.0))
    losses = []
    ref = scipy.optimize.minimize(fg, x0, jac=True, method="L-BFGS-B", callback=lambda xk: losses.append(fg(xk)[0]),
                                  options=dict(maxcor=10, maxiter=n, gtol=0.0, ftol=0.0))
    assert state.iteration == ref.nit == n and state.stop == "max_iter"
    np.testing.assert_allclose(state.history, losses, rtol=1e-10)
    np.testing.assert_allclose(x, ref.x, rtol=1e-7, atol=1e-9)
    assert state.history[-1] < 0.05 * fg(x0)[0]  # it really optimised


def test_the_diagonal_preconditioner_is_lbfgs_in_scaled_variables():
    """With diagonal=True and the shards' h, the iterates are scipy's L-BFGS-B on z = x / sqrt(h)."""
    fg, x0 = _problem(2)
    h = np.random.default_rng(5).uniform(0.05, 20.0, x0.shape[0])
    r = np.sqrt(h)
    n = 30
    state, x = _run(fg, x0, [0, 17, 50, x0.shape[0]], LbfgsSettings(max_iter=n, gtol=0.0, diagonal=True), h=h)

    def scaled(z):
        f, g = fg(r * z)
        return f, r * g

    losses = []
    ref = scipy.optimize.minimize(scaled, x0 / r, jac=True, method="L-BFGS-B",
                                  callback=lambda zk: losses.append(scaled(zk)[0]),
                                  options=dict(maxcor=10, maxiter=n, gtol=0.0, ftol=0.0))
    np.testing.assert_allclose(state.history, losses, rtol=1e-9)
    np.testing.assert_allclose(x, r * ref.x, rtol=1e-6, atol=1e-8)
    plain, _ = _run(fg, x0, [0, x0.shape[0]], LbfgsSettings(max_iter=n, gtol=0.0))
    assert not np.allclose(plain.history[:5], state.history[:5], rtol=1e-3)  # h changed the path


def test_row_weights_and_the_shards_preconditioner_layout():
    """row_weights sums f(X_ij) per row and per column; set_row_weights gives each shard 1 / the
    weight of every parameter's row, in split_params's layout."""
    from w2v_async.engines.sandblaster import row_weights
    from w2v_async.engines.sandblaster_actors import split_params

    fg, _ = _problem(3)
    rows, cols, values = fg.__closure__[[c.cell_contents.__class__ for c in fg.__closure__].index(tuple)].cell_contents

    class Cooc:
        vocab, nnz = range(V), rows.shape[0]

    Cooc.rows, Cooc.cols, Cooc.values = rows, cols, values
    word, ctx = row_weights(Cooc, 10.0, 0.75, chunk=7)
    f = np.minimum(values.astype(np.float64) / 10.0, 1.0) ** 0.75
    for i in range(V):
        assert word[i] == pytest.approx(f[rows == i].sum(), rel=1e-12)
        assert ctx[i] == pytest.approx(f[cols == i].sum(), rel=1e-12)
    expected = split_params((np.repeat(1 / word, D).reshape(V, D), np.repeat(1 / ctx, D).reshape(V, D), 1 / word,
                             1 / ctx), 3)
    for s in range(3):
        shard = VectorShard(np.zeros(expected[s].shape[0]), 1)
        shard.set_row_weights(word[s::3], ctx[s::3], D)
        np.testing.assert_allclose(shard.v["h"], expected[s], rtol=1e-15)


def test_how_the_rows_are_sharded_does_not_change_the_iterates():
    fg, x0 = _problem(1)
    settings = LbfgsSettings(max_iter=40, gtol=0.0, history=5)
    one, x_one = _run(fg, x0, [0, x0.shape[0]], settings)
    four, x_four = _run(fg, x0, [0, 5, 6, 40, x0.shape[0]], settings)
    np.testing.assert_allclose(four.history, one.history, rtol=1e-12)
    np.testing.assert_allclose(x_four, x_one, rtol=1e-9, atol=1e-12)
    assert len(one.pairs) == 5  # the history ring buffer was full and reused


def test_two_loop_is_the_dense_bfgs_inverse_hessian_times_the_gradient():
    rng = np.random.default_rng(2)
    n, m = 9, 4
    g = rng.normal(size=n)
    pairs = []
    for _ in range(m):
        s = rng.normal(size=n)
        pairs.append((s, s + 0.3 * rng.normal(size=n)))  # s.y > 0
    shards, group = _shards(g, [0, 4, n], m)
    for k, (s, y) in enumerate(pairs):
        for shard, a, b in zip(shards, [0, 4], [4, n]):
            shard.v["g"][:] = g[a:b]
            shard.v[f"s{k}"][:], shard.v[f"y{k}"][:] = s[a:b], y[a:b]
    two_loop(group, [(k, float(s @ y), float(y @ y)) for k, (s, y) in enumerate(pairs)])
    s, y = pairs[-1]
    h = np.eye(n) * (s @ y) / (y @ y)
    for s, y in pairs:  # BFGS update of the inverse Hessian, oldest pair first
        rho = 1.0 / (s @ y)
        h = (np.eye(n) - rho * np.outer(s, y)) @ h @ (np.eye(n) - rho * np.outer(y, s)) + rho * np.outer(s, s)
    np.testing.assert_allclose(np.concatenate([sh.get("d") for sh in shards]), -h @ g, rtol=1e-10)


@pytest.mark.parametrize("t0", [0.01, 1.0, 40.0])  # extrapolate, accept at once, zoom back
def test_line_search_returns_a_strong_wolfe_step(t0):
    f = lambda t: (t - 3.0) ** 2 + math.sin(2 * t)  # noqa: E731
    df = lambda t: 2 * (t - 3.0) + 2 * math.cos(2 * t)  # noqa: E731
    settings = LbfgsSettings()
    last = []

    def phi(t):
        last.append(t)
        return f(t), df(t)

    t, f_t, d_t, evals = wolfe_search(phi, f(0.0), df(0.0), t0, settings)
    assert f_t <= f(0.0) + settings.c1 * t * df(0.0)
    assert abs(d_t) <= -settings.c2 * df(0.0)
    assert last[-1] == t and evals == len(last) and (f_t, d_t) == (f(t), df(t))


def test_stops_on_the_gradient_norm_and_on_the_loss_change():
    fg, x0 = _problem(3)
    loose, _ = _run(fg, x0, [0, x0.shape[0]], LbfgsSettings(max_iter=500, gtol=1e-2, ftol=0.0))
    assert loose.stop == "gradient" and loose.gnorm <= 1e-2 < math.sqrt(np.sum(fg(x0)[1] ** 2))
    flat, _ = _run(fg, x0, [0, x0.shape[0]], LbfgsSettings(max_iter=500, gtol=0.0, ftol=1e-3))
    assert flat.stop == "loss" and flat.iteration < loose.iteration
    assert (flat.history[-2] - flat.history[-1]) / flat.history[-2] <= 1e-3
