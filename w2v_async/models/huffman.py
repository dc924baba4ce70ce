"""The Huffman tree of hierarchical softmax, built as word2vec.c's CreateBinaryTree, and each
word's path through it: the inner nodes from the root down and the branch taken at each."""

import numpy as np
from numba import njit, types

from .common import KERNEL_OPTS


@njit(types.Tuple((types.int64[::1], types.int8[::1]))(types.int64[::1]), **KERNEL_OPTS)
def _build_tree(counts):
    """word2vec.c's CreateBinaryTree over counts (sorted from the most frequent down): the parent
    of each of the 2 V - 1 nodes (leaves 0..V-1, inner node a at V + a, the root at 2 V - 2, its
    own parent -1) and the branch (0 or 1) that leads to each node from its parent."""
    n = counts.shape[0]
    count = np.empty(2 * n - 1, np.int64)
    count[:n] = counts
    count[n:] = np.iinfo(np.int64).max
    parent = np.full(2 * n - 1, -1, np.int64)
    binary = np.zeros(2 * n - 1, np.int8)
    pos1 = n - 1  # the next leaf, from the least frequent up
    pos2 = n  # the next inner node, in the order they were made (their counts never decrease)
    for a in range(n - 1):
        if pos1 >= 0 and count[pos1] < count[pos2]:
            min1 = pos1
            pos1 -= 1
        else:
            min1 = pos2
            pos2 += 1
        if pos1 >= 0 and count[pos1] < count[pos2]:
            min2 = pos1
            pos1 -= 1
        else:
            min2 = pos2
            pos2 += 1
        count[n + a] = count[min1] + count[min2]
        parent[min1] = n + a
        parent[min2] = n + a
        binary[min2] = 1
    return parent, binary


@njit(types.Tuple((types.int64[::1], types.int32[::1], types.int8[::1]))(types.int64[::1], types.int8[::1]),
      **KERNEL_OPTS)
def _paths(parent, binary):
    """Each leaf's path from the root: (starts int64[V + 1], nodes int32[], codes int8[]), its
    inner nodes numbered from the root (0) down in the reverse of the order they were made, so the
    most frequently used inner nodes have the smallest numbers, as the most frequent words do."""
    n = (parent.shape[0] + 1) // 2
    starts = np.zeros(n + 1, np.int64)
    for w in range(n):
        depth = 0
        b = w
        while parent[b] >= 0:
            depth += 1
            b = parent[b]
        starts[w + 1] = starts[w] + depth
    nodes = np.empty(starts[n], np.int32)
    codes = np.empty(starts[n], np.int8)
    top = 2 * n - 2  # the root's node index; inner node b is numbered top - b
    for w in range(n):
        j = starts[w + 1]
        b = w
        while parent[b] >= 0:  # leaf to root, written from the end of the word's path
            j -= 1
            codes[j] = binary[b]
            nodes[j] = top - parent[b]
            b = parent[b]
    return starts, nodes, codes


def huffman_paths(counts: np.ndarray):
    """The hierarchical-softmax paths of a vocabulary whose counts are sorted from the most
    frequent word down (word2vec.c's order).

    Returns (starts int64[V + 1], nodes int32[L], codes int8[L]): word w's path is nodes and codes
    [starts[w]:starts[w + 1]], from the root down; codes[j] is the branch taken below nodes[j]
    (word2vec.c's code, the label of that node's logistic unit is 1 - code). Inner nodes are
    numbered 0 (the root) to V - 2. A one-word vocabulary has no inner node and empty paths.
    """
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    if counts.shape[0] < 2:
        return np.zeros(counts.shape[0] + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int8)
    if np.any(counts[:-1] < counts[1:]):
        raise ValueError("huffman_paths needs counts sorted from the most frequent word down")
    return _paths(*_build_tree(counts))
