"""HOGWILD!'s sparsity statistics of an update hypergraph (Recht, Re, Wright, Niu, NIPS 2011).

An update is an edge: the set of parameter rows it reads and writes. Omega is the most rows one
update touches; Delta the largest fraction of updates that touch one row; rho the largest
fraction of updates that share a row with one update (itself included). The paper's speedup
argument needs Omega, Delta and rho small: rare collisions. Issue 15's experiment reports them
for the updates a corpus and settings really produce.
"""

import numpy as np
from numba import njit

from .common import KERNEL_OPTS


@njit(**KERNEL_OPTS)  # typed on first use: only the experiment needs it
def hypergraph_stats(rows, bounds, n_rows):
    """(Omega, Delta, rho) of the edges rows[bounds[e]:bounds[e + 1]] over rows 0..n_rows-1.

    A row listed twice in one edge counts once. Cost: the sum over edges of the degrees of their
    rows (an inverted index, and one pass per edge that stamps the edges it meets).
    """
    n_edges = bounds.shape[0] - 1
    stamp = np.full(n_rows, -1, np.int64)
    degree = np.zeros(n_rows, np.int64)
    unique = np.empty(rows.shape[0], np.int64)
    ubounds = np.zeros(n_edges + 1, np.int64)
    k = 0
    omega = 0
    for e in range(n_edges):
        for q in range(bounds[e], bounds[e + 1]):
            v = rows[q]
            if stamp[v] != e:
                stamp[v] = e
                unique[k] = v
                k += 1
                degree[v] += 1
        ubounds[e + 1] = k
        omega = max(omega, k - ubounds[e])
    starts = np.zeros(n_rows + 1, np.int64)
    for v in range(n_rows):
        starts[v + 1] = starts[v] + degree[v]
    fill = starts[:-1].copy()
    incident = np.empty(k, np.int64)  # the edges of row v: incident[starts[v]:starts[v + 1]]
    for e in range(n_edges):
        for q in range(ubounds[e], ubounds[e + 1]):
            v = unique[q]
            incident[fill[v]] = e
            fill[v] += 1
    met = np.full(n_edges, -1, np.int64)
    most = 0
    for e in range(n_edges):
        count = 0
        for q in range(ubounds[e], ubounds[e + 1]):
            v = unique[q]
            for p in range(starts[v], starts[v + 1]):
                f = incident[p]
                if met[f] != e:
                    met[f] = e
                    count += 1
        most = max(most, count)
    max_degree = degree.max() if n_rows > 0 else 0
    return omega, max_degree / max(n_edges, 1), most / max(n_edges, 1)


@njit(**KERNEL_OPTS)  # typed on first use: only the experiment needs it
def update_edges(batch, n_sent, n_words, per_context, min_rank):
    """The updates of a word2vec_batch.sample_batch batch as hypergraph edges over 2 V rows:
    w_in rows 0..V-1, w_out rows V..2V-1 (row V + w).

    per_context > 0: word2vec.c skip-gram pairs (context; center and its per_context negatives),
    one edge per pair. per_context 0: HogBatch windows (every context; center and the word's
    negatives), one edge per center word. Words of rank below min_rank (ids < min_rank) are left
    out of the edges: the sparsity of the rest of the vocabulary. Returns (rows int64[], bounds
    int64[E + 1]) for hypergraph_stats.
    """
    words, sent_bounds, reach, neg_bounds, negatives = batch
    n_max = 0
    for s in range(n_sent):
        for i in range(sent_bounds[s], sent_bounds[s + 1]):
            n_max += (2 * reach[i] + 1) * (2 + neg_bounds[i + 1] - neg_bounds[i])
    rows = np.empty(n_max, np.int64)
    bounds = np.zeros(n_max + 1, np.int64)
    k = 0
    e = 0
    for s in range(n_sent):
        a = sent_bounds[s]
        n = sent_bounds[s + 1] - a
        for i in range(n):
            center = words[a + i]
            negs = negatives[neg_bounds[a + i]: neg_bounds[a + i + 1]]
            q = 0
            lo, hi = max(0, i - reach[a + i]), min(n, i + reach[a + i] + 1)
            if hi - lo < 2:
                continue
            for j in range(lo, hi):
                if j == i:
                    continue
                if words[a + j] >= min_rank:
                    rows[k] = words[a + j]
                    k += 1
                if per_context > 0:  # the pair's outputs close its edge
                    k = _outputs(rows, k, center, negs[q: q + per_context], n_words, min_rank)
                    q += per_context
                    e += 1
                    bounds[e] = k
            if per_context == 0:
                k = _outputs(rows, k, center, negs, n_words, min_rank)
                e += 1
                bounds[e] = k
    return rows[:k], bounds[: e + 1]


@njit(**KERNEL_OPTS)
def _outputs(rows, k, center, negs, n_words, min_rank):
    """Append the w_out rows of center and its negatives (not below min_rank) at rows[k:]."""
    if center >= min_rank:
        rows[k] = n_words + center
        k += 1
    for w in negs:
        if w >= min_rank and w != center:
            rows[k] = n_words + w
            k += 1
    return k
