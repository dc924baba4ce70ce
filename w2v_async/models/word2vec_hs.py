"""Hierarchical softmax (word2vec.c -hs 1, gensim hs=1): the center word is predicted by the
logistic units of the inner nodes on its Huffman path (huffman.py), whose rows form syn1, alone
or beside negative sampling (the two losses summed, as word2vec.c and gensim do).

The inner nodes near the root are on every word's path, so every thread writes them at every
step: the hot-row scheme covers them as it covers the most frequent words (hot_rows.py). The
nodes are numbered from the root down, so nodes p < H are the hottest; a thread trains them in its
private rows offset + p of syn1 (syn1 has V rows for the V - 1 nodes, so the same offsets as w_in
and w_out work) and merges each after K of its uses, K from the same staleness budget
(hot_row_merge_every): a use is one SGD step on the row (a pair, a window, a CBOW window)."""

import numpy as np
from numba import njit, types

from .common import F4_2D, I4_1D, KERNEL_OPTS, private_zeros
from .hot_rows import _touch_hot_rows, merge_hot_rows
from .sampling import MAX_EXP, _sigmoid_grad_loss
from .word2vec import (CBOW_SCRATCH, SGNS_SCRATCH, SGNS_WINDOW_SCRATCH, _add1, _add3, _dot, _dots3, factor,
                       _negative_sampling, _window_contexts, ns_window_deltas)

# The tree and syn1: (syn1 float32[V + T H, d] shared, path starts int64[V + 1], path nodes int32[L],
# path codes int8[L] (shared, read only), this thread's uses of its hot nodes int32[H], their rows
# as of the last merge float32[H, d], the center's path as rows int32[longest path])
HS = types.Tuple((F4_2D, types.int64[::1], I4_1D, types.int8[::1], I4_1D, F4_2D, I4_1D))
SGNS_HS_SCRATCH = types.Tuple(tuple(SGNS_SCRATCH.types) + (HS,))
SGNS_WINDOW_HS_SCRATCH = types.Tuple(tuple(SGNS_WINDOW_SCRATCH.types) + (HS,))
CBOW_HS_SCRATCH = types.Tuple(tuple(CBOW_SCRATCH.types) + (HS,))
HS_SCRATCHES = (SGNS_HS_SCRATCH, SGNS_WINDOW_HS_SCRATCH, CBOW_HS_SCRATCH)


def hs_scratch(buffers: tuple, update: str, syn1: np.ndarray, paths: tuple, n_hot: int) -> tuple:
    """A thread's scratch for hierarchical softmax: buffers from word2vec_scratch(update, ...)
    (HogBatch's grads widened to the longest path) and the HS tuple; paths from
    huffman.huffman_paths; syn1 float32[V + T H, d], shared."""
    starts, nodes, codes = paths
    longest = int(np.max(np.diff(starts))) if starts.shape[0] > 1 else 0
    dim = syn1.shape[1]
    if update == "window":
        grads = buffers[5]
        buffers = buffers[:5] + (private_zeros((grads.shape[0], max(grads.shape[1], longest, 1)), np.float32),)
    return buffers + ((syn1, starts, nodes, codes, private_zeros(max(n_hot, 1), np.int32),
                       private_zeros((n_hot, dim), np.float32), private_zeros(max(longest, 1), np.int32)),)


@njit(inline="always", **KERNEL_OPTS)
def _hs_grad_loss(f, code, lr):
    """word2vec.c's hierarchical-softmax unit: g = (1 - code - s(f)) lr, no update where |f| >=
    MAX_EXP (word2vec.c and gensim skip it); the loss -log s(f) for code 0, -log s(-f) for 1."""
    g, loss = _sigmoid_grad_loss(f, np.float32(1.0) - np.float32(code), lr)
    if f >= MAX_EXP or f <= -MAX_EXP:
        g = np.float32(0.0)
    return g, loss


@njit(**KERNEL_OPTS)
def center_path(hs, center, info):
    """The center's path (hs tuple, center's row in sent_buf, hot info (H, offset, K)): its nodes
    written as syn1 rows into hs[6] (nodes p < H as this thread's copies, offset + p), and
    returned as (rows, codes)."""
    starts, nodes, codes, rows = hs[1], hs[2], hs[3], hs[6]
    n_hot, offset = info[0], info[1]
    w = center - offset if center >= starts.shape[0] - 1 else center  # a hot copy's row: its word
    first = starts[w]
    length = starts[w + 1] - first
    for j in range(length):
        p = nodes[first + j]
        rows[j] = p + offset if p < n_hot else p
    return rows[:length], codes[first: first + length]


@njit(**KERNEL_OPTS)  # typed on first use, by the one model a run trains
def hs_accumulate(syn1, h, rows, codes, lr, grad_buf):
    """The hierarchical-softmax step of hidden vector h (float32[d]) on the center's path: each
    node's row u (syn1[rows[j]]) is a logistic unit with label 1 - codes[j]; u += g h in place
    (with the old h), g u is added to grad_buf. Returns the path's loss before the update."""
    dim = h.shape[0]
    loss = np.float32(0.0)
    for j in range(rows.shape[0]):
        u = syn1[rows[j]]
        g, node_loss = _hs_grad_loss(_dot(h, u), codes[j], lr)
        loss += node_loss
        for k in range(dim):  # word2vec.c: neu1e += g * syn1; syn1 += g * neu1 (old syn1)
            u_k = u[k]
            grad_buf[k] += g * u_k
            u[k] = u_k + g * h[k]
    return loss


@njit(**KERNEL_OPTS)  # typed on first use, by the one model a run trains
def sgns_hs_update(w_in, w_out, syn1, center, context, negatives, rows, codes, lr, grad_buf, lockf=None):
    """word2vec.c's skip-gram pair with -hs 1: w_in[context] predicts center through its path
    (rows, codes) and, when negatives is not empty, against them; both at the old row, their
    gradients summed. Returns the pair's loss (both parts) before the update."""
    v = w_in[context]
    if negatives.shape[0] > 0:
        loss = _negative_sampling(w_out, v, center, negatives, lr, grad_buf)
    else:
        loss = np.float32(0.0)
        grad_buf[:] = np.float32(0.0)
    loss += hs_accumulate(syn1, v, rows, codes, lr, grad_buf)
    _add1(v, factor(lockf, context), grad_buf)
    return loss


@njit(**KERNEL_OPTS)  # typed on first use, by the one model a run trains
def cbow_hs_update(w_in, w_out, syn1, center, contexts, negatives, rows, codes, lr, grad_buf, neu1, lockf=None):
    """word2vec.c's CBOW with -hs 1: the mean of w_in[contexts] predicts center through its path
    and, when negatives is not empty, against them; every context row takes the summed gradient."""
    dim = neu1.shape[0]
    neu1[:] = np.float32(0.0)
    for j in range(contexts.shape[0]):
        _add1(neu1, np.float32(1.0), w_in[contexts[j]])
    inv = np.float32(1.0) / np.float32(contexts.shape[0])
    for k in range(dim):
        neu1[k] *= inv
    if negatives.shape[0] > 0:
        loss = _negative_sampling(w_out, neu1, center, negatives, lr, grad_buf)
    else:
        loss = np.float32(0.0)
        grad_buf[:] = np.float32(0.0)
    loss += hs_accumulate(syn1, neu1, rows, codes, lr, grad_buf)
    for j in range(contexts.shape[0]):
        _add1(w_in[contexts[j]], factor(lockf, contexts[j]), grad_buf)
    return loss


@njit(**KERNEL_OPTS)  # typed on first use, by the one model a run trains
def hs_window_deltas(w_in, syn1, contexts, rows, codes, lr, deltas, grads):
    """HogBatch skip-gram's hierarchical-softmax step: the window's contexts share the center's
    path, so one window is one minibatch step of contexts x path nodes, at the old rows:
    G[c, j] = (1 - code_j - s(v_c . u_j)) lr; u_j += sum_c G[c, j] v_c, and sum_j G[c, j] u_j is
    added to deltas[c]. grads : float32[>= c, >= path length]. Returns the summed loss."""
    n_in = contexts.shape[0]
    n_out = rows.shape[0]
    loss = np.float32(0.0)
    for c in range(n_in):
        v = w_in[contexts[c]]
        j = 0
        while j + 3 <= n_out:
            f0, f1, f2 = _dots3(v, syn1[rows[j]], syn1[rows[j + 1]], syn1[rows[j + 2]])
            grads[c, j] = f0
            grads[c, j + 1] = f1
            grads[c, j + 2] = f2
            j += 3
        while j < n_out:
            grads[c, j] = _dot(v, syn1[rows[j]])
            j += 1
        for j in range(n_out):
            g, node_loss = _hs_grad_loss(grads[c, j], codes[j], lr)
            grads[c, j] = g
            loss += node_loss
    for c in range(n_in):  # input deltas from the old node rows
        delta = deltas[c]
        j = 0
        while j + 3 <= n_out:
            _add3(delta, grads[c, j], syn1[rows[j]], grads[c, j + 1], syn1[rows[j + 1]],
                  grads[c, j + 2], syn1[rows[j + 2]])
            j += 3
        while j < n_out:
            _add1(delta, grads[c, j], syn1[rows[j]])
            j += 1
    for j in range(n_out):  # node rows from the old input rows
        u = syn1[rows[j]]
        c = 0
        while c + 3 <= n_in:
            _add3(u, grads[c, j], w_in[contexts[c]], grads[c + 1, j], w_in[contexts[c + 1]],
                  grads[c + 2, j], w_in[contexts[c + 2]])
            c += 3
        while c < n_in:
            _add1(u, grads[c, j], w_in[contexts[c]])
            c += 1
    return loss


@njit(**KERNEL_OPTS)  # typed on first use, by the one model a run trains
def sgns_window_hs_update(w_in, w_out, syn1, center, contexts, negatives, rows, codes, lr, deltas, grads,
                          lockf=None):
    """One HogBatch skip-gram window with hierarchical softmax, and negative sampling when
    negatives is not empty: both steps at the old input rows, their deltas summed and added once."""
    n_in = contexts.shape[0]
    if negatives.shape[0] > 0:
        loss = ns_window_deltas(w_in, w_out, center, contexts, negatives, lr, deltas, grads)
    else:
        loss = np.float32(0.0)
        deltas[:n_in] = np.float32(0.0)
    loss += hs_window_deltas(w_in, syn1, contexts, rows, codes, lr, deltas, grads)
    for c in range(n_in):
        _add1(w_in[contexts[c]], factor(lockf, contexts[c]), deltas[c])
    return loss


@njit(**KERNEL_OPTS)
def _touch_path(hs, rows, info):
    """One use of each of this thread's hot node rows on the path (merged every K uses)."""
    _touch_hot_rows(hs[0], rows, info, hs[4][: info[0]], hs[5])


@njit(**KERNEL_OPTS)
def _sgns_hs_word(w_in, w_out, sent_buf, i, reach, n, negatives, k, lr, scratch):
    """word2vec.c skip-gram with -hs for center word i: every context word in reach predicts it."""
    grad_buf, hs, info = scratch[3], scratch[4], scratch[2][0]
    center = sent_buf[i]
    rows, codes = center_path(hs, center, info)
    loss = np.float32(0.0)
    q = 0
    n_pairs = 0
    for j in range(max(0, i - reach), min(n, i + reach + 1)):
        if j == i:
            continue
        _touch_path(hs, rows, info)
        loss += sgns_hs_update(w_in, w_out, hs[0], center, sent_buf[j], negatives[q: q + k], rows, codes, lr,
                               grad_buf, scratch[2][4])
        q += k
        n_pairs += 1
    return loss, n_pairs


@njit(**KERNEL_OPTS)
def _sgns_window_hs_word(w_in, w_out, sent_buf, i, reach, n, negatives, k, lr, scratch):
    """HogBatch skip-gram with -hs for center word i: its window is one step on its path (and k
    shared negatives)."""
    contexts, deltas, grads, hs, info = scratch[3], scratch[4], scratch[5], scratch[6], scratch[2][0]
    n_ctx = _window_contexts(sent_buf, i, reach, n, contexts)
    if n_ctx == 0:
        return np.float32(0.0), 0
    rows, codes = center_path(hs, sent_buf[i], info)
    _touch_path(hs, rows, info)
    return sgns_window_hs_update(w_in, w_out, hs[0], sent_buf[i], contexts[:n_ctx], negatives[:k], rows, codes,
                                 lr, deltas, grads, scratch[2][4]), n_ctx


@njit(**KERNEL_OPTS)
def _cbow_hs_word(w_in, w_out, sent_buf, i, reach, n, negatives, k, lr, scratch):
    """CBOW with -hs for center word i: the mean of its context words predicts it on its path."""
    grad_buf, contexts, neu1, hs, hot = scratch[3], scratch[4], scratch[5], scratch[6], scratch[2]
    n_ctx = _window_contexts(sent_buf, i, reach, n, contexts)
    if n_ctx == 0:
        return np.float32(0.0), 0
    info = hot[0]
    _touch_hot_rows(w_in, contexts[:n_ctx], info, hot[1][: info[0]], hot[2])  # as CBOW: per window
    rows, codes = center_path(hs, sent_buf[i], info)
    _touch_path(hs, rows, info)
    return cbow_hs_update(w_in, w_out, hs[0], sent_buf[i], contexts[:n_ctx], negatives[:k], rows, codes, lr,
                          grad_buf, neu1, hot[4]), 1


@njit(**KERNEL_OPTS)
def _sync_hs_rows(hs, info):
    """Merge this thread's private node rows into syn1 (at the ticks, as the word rows)."""
    merge_hot_rows(hs[0], info[1], hs[5])
