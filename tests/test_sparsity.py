"""HOGWILD!'s Omega, Delta and rho against a brute-force count over Python sets."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from w2v_async.models.sparsity import hypergraph_stats


def _brute(edges, n_rows):
    sets = [set(e) for e in edges]
    omega = max((len(s) for s in sets), default=0)
    delta = max((sum(v in s for s in sets) for v in range(n_rows)), default=0) / max(len(sets), 1)
    rho = max((sum(bool(s & t) for t in sets) for s in sets), default=0) / max(len(sets), 1)
    return omega, delta, rho


def _flat(edges):
    rows = np.array([v for e in edges for v in e], np.int64)
    bounds = np.concatenate([[0], np.cumsum([len(e) for e in edges])]).astype(np.int64)
    return rows, bounds


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 14), min_size=1, max_size=6), min_size=1, max_size=40))
def test_statistics_equal_a_brute_force_count(edges):
    omega, delta, rho = hypergraph_stats(*_flat(edges), 15)
    b_omega, b_delta, b_rho = _brute(edges, 15)
    assert omega == b_omega and delta == pytest.approx(b_delta) and rho == pytest.approx(b_rho)


def test_disjoint_updates_are_as_sparse_as_can_be_and_a_shared_row_is_not():
    edges = [[2 * i, 2 * i + 1] for i in range(10)]
    assert hypergraph_stats(*_flat(edges), 20) == (2, 0.1, 0.1)
    shared = [e + [20] for e in edges]  # every update also writes row 20 (a frequent word's row)
    assert hypergraph_stats(*_flat(shared), 21) == (3, 1.0, 1.0)
