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
