"""word2vec with negative sampling: the skip-gram, HogBatch skip-gram and CBOW updates, one center
word's step for each, and the per-thread scratch whose type selects the model."""

import numpy as np
from numba import njit, types

from numba.extending import overload

from .common import F4_1D, F4_2D, I4_1D, KERNEL_OPTS, private_zeros
from .hot_rows import HOT, _touch_hot_rows
from .sampling import _sigmoid_grad_loss

# Per-thread scratch: sentence, negatives, hot rows, then the model's own; its type selects the model
# inside the shared epoch loop.
SGNS_SCRATCH = types.Tuple((I4_1D, I4_1D, HOT, F4_1D))  # ..., grad
CBOW_SCRATCH = types.Tuple((I4_1D, I4_1D, HOT, F4_1D, I4_1D, F4_1D))  # ..., grad, contexts, neu1
# skip-gram with one negative set per window (HogBatch): ..., contexts, deltas, grads
SGNS_WINDOW_SCRATCH = types.Tuple((I4_1D, I4_1D, HOT, I4_1D, F4_2D, F4_2D))
# word2vec.c skip-gram with each pair update guarded (word2vec_guarded.py, the experiment's schemes):
# ..., grad, then one lock | row locks and their ids | write versions, collisions, snapshot, ids
I4_2D = types.int32[:, ::1]
I8_1D = types.int64[::1]
SGNS_GLOBAL_LOCK_SCRATCH = types.Tuple((I4_1D, I4_1D, HOT, F4_1D, I4_2D))
SGNS_ROW_LOCK_SCRATCH = types.Tuple((I4_1D, I4_1D, HOT, F4_1D, I4_2D, I4_1D))
SGNS_COLLISION_SCRATCH = types.Tuple((I4_1D, I4_1D, HOT, F4_1D, I8_1D, I8_1D, I8_1D, I4_1D))
GUARDED_SCRATCHES = (SGNS_GLOBAL_LOCK_SCRATCH, SGNS_ROW_LOCK_SCRATCH, SGNS_COLLISION_SCRATCH)


def word2vec_scratch(update: str, dim: int, window: int, negative: int, max_sentence: int, hot: tuple) -> tuple:
    """One thread's scratch buffers; their types select the model in the kernels.

    update: "pair" (word2vec.c skip-gram), "window" (HogBatch skip-gram) or "cbow"; hot: the
    thread's hot_rows.hot_scratch tuple.
    """
    buffers = (
        private_zeros(max_sentence, np.int32),
        private_zeros(4 * window * negative, np.int32),  # two words' negatives (pipeline)
        hot,
    )
    if update == "cbow":
        return buffers + (private_zeros(dim, np.float32), private_zeros(2 * window, np.int32),
                          private_zeros(dim, np.float32))
    if update == "window":
        return buffers + (private_zeros(2 * window, np.int32), private_zeros((2 * window, dim), np.float32),
                          private_zeros((2 * window, negative + 1), np.float32))
    return buffers + (private_zeros(dim, np.float32),)


@njit(**KERNEL_OPTS)  # typed on first use, by the one model a run trains
def _negative_sampling(w_out, h, center, negatives, lr, grad_buf):
    """Shared output step of SGNS and CBOW for hidden vector h (float32[d]).

    Updates w_out rows of center (label 1) and negatives (label 0, skipped when equal to center)
    in place, accumulates dLoss/dh * -lr into grad_buf, and returns the loss.
    """
    dim = h.shape[0]
    loss = np.float32(0.0)
    for k in range(dim):
        grad_buf[k] = np.float32(0.0)
    for n in range(negatives.shape[0] + 1):
        if n == 0:
            target = center
            label = np.float32(1.0)
        else:
            target = negatives[n - 1]
            if target == center:
                continue
            label = np.float32(0.0)
        u = w_out[target]
        f = np.float32(0.0)
        for k in range(dim):
            f += h[k] * u[k]
        g, pair_loss = _sigmoid_grad_loss(f, label, lr)
        loss += pair_loss
        for k in range(dim):  # word2vec.c: neu1e += g * syn1neg; syn1neg += g * syn0 (old syn1neg)
            u_k = u[k]
            grad_buf[k] += g * u_k
            u[k] = u_k + g * h[k]
    return loss


def factor(lockf, row):
    """How much of its update input row takes: lockf[row] (gensim's vectors_lockf: 0 for a row
    --lock-init froze), 1 when lockf is empty or not given."""


@overload(factor, jit_options=KERNEL_OPTS)
def _factor(lockf, row):
    if isinstance(lockf, (types.NoneType, types.Omitted)):
        return lambda lockf, row: np.float32(1.0)
    return lambda lockf, row: lockf[row] if lockf.shape[0] > 0 else np.float32(1.0)


@njit(**KERNEL_OPTS)  # typed on first use, by the one model a run trains
def sgns_update(w_in, w_out, center, context, negatives, lr, grad_buf, lockf=None):
    """One skip-gram negative-sampling step: w_in[context] predicts center against negatives.

    w_in, w_out : float32[V, d], updated in place; negatives : int32[k]; grad_buf : float32[d] scratch.
    Returns the loss -log s(v.u_c) - sum_n log s(-v.u_n) before the update.
    """
    v = w_in[context]
    loss = _negative_sampling(w_out, v, center, negatives, lr, grad_buf)
    _add1(v, factor(lockf, context), grad_buf)
    return loss


@njit(**KERNEL_OPTS)  # typed on first use, by the one model a run trains
def cbow_update(w_in, w_out, center, contexts, negatives, lr, grad_buf, neu1, lockf=None):
    """One CBOW step: the mean of w_in[contexts] predicts center against negatives.

    contexts : int32[c], c >= 1; neu1, grad_buf : float32[d] scratch. As word2vec.c, every context
    row receives the full (undivided) gradient. Returns the loss before the update.
    """
    dim = neu1.shape[0]
    for k in range(dim):
        neu1[k] = np.float32(0.0)
    for j in range(contexts.shape[0]):
        row = w_in[contexts[j]]
        for k in range(dim):
            neu1[k] += row[k]
    inv = np.float32(1.0) / np.float32(contexts.shape[0])
    for k in range(dim):
        neu1[k] *= inv
    loss = _negative_sampling(w_out, neu1, center, negatives, lr, grad_buf)
    for j in range(contexts.shape[0]):
        _add1(w_in[contexts[j]], factor(lockf, contexts[j]), grad_buf)
    return loss


@njit(inline="always", **KERNEL_OPTS)
def _dots3(v, u0, u1, u2):
    """v . u0, v . u1, v . u2 in one pass over the columns (v is read once, not three times)."""
    f0 = np.float32(0.0)
    f1 = np.float32(0.0)
    f2 = np.float32(0.0)
    for k in range(v.shape[0]):
        x = v[k]
        f0 += x * u0[k]
        f1 += x * u1[k]
        f2 += x * u2[k]
    return f0, f1, f2


@njit(inline="always", **KERNEL_OPTS)
def _dot(v, u):
    f = np.float32(0.0)
    for k in range(v.shape[0]):
        f += v[k] * u[k]
    return f


@njit(inline="always", **KERNEL_OPTS)
def _add3(y, g0, x0, g1, x1, g2, x2):
    """y += g0 x0 + g1 x1 + g2 x2 in one pass (y is loaded and stored once, not three times)."""
    for k in range(y.shape[0]):
        y[k] += g0 * x0[k] + g1 * x1[k] + g2 * x2[k]


@njit(inline="always", **KERNEL_OPTS)
def _add1(y, g, x):
    for k in range(y.shape[0]):
        y[k] += g * x[k]


@njit(**KERNEL_OPTS)  # typed on first use, by the one model a run trains
def sgns_window_update(w_in, w_out, center, contexts, negatives, lr, deltas, grads, lockf=None):
    """One HogBatch skip-gram step (Ji et al. 2016): a whole window against one set of negatives
    (ns_window_deltas), the input rows' deltas added at the end. Returns the pairs' summed loss."""
    loss = ns_window_deltas(w_in, w_out, center, contexts, negatives, lr, deltas, grads)
    for c in range(contexts.shape[0]):
        _add1(w_in[contexts[c]], factor(lockf, contexts[c]), deltas[c])
    return loss


@njit(**KERNEL_OPTS)  # typed on first use, by the one model a run trains
def ns_window_deltas(w_in, w_out, center, contexts, negatives, lr, deltas, grads):
    """HogBatch skip-gram's negative-sampling step for a whole window, the input rows' changes
    written to deltas[:c] (sgns_window_update adds them; hierarchical softmax adds its own to them).

    Every context row v_c = w_in[contexts[c]] predicts center (label 1) and each negative
    (label 0; negatives equal to center are dropped), all at the parameters as they were before
    the step: a minibatch gradient step on
        sum_c [-log s(v_c . u_center) - sum_n log s(-v_c . u_n)].
    With G[c, o] = (label_o - s(v_c . u_o)) lr: v_c += sum_o G[c, o] u_o and
    u_o += sum_c G[c, o] v_c. Each output row is read and written once per window instead of once
    per (context, center) pair, and the products run three rows per pass.
    negatives is compacted in place; deltas : float32[>= c, d] and grads : float32[>= c, k + 1]
    are scratch. Returns the summed loss of the pairs before the update.
    """
    n_in = contexts.shape[0]
    n_out = 1  # targets: center, then the negatives that differ from it
    for q in range(negatives.shape[0]):
        if negatives[q] != center:
            negatives[n_out - 1] = negatives[q]
            n_out += 1
    loss = np.float32(0.0)
    for c in range(n_in):  # scores, then G
        v = w_in[contexts[c]]
        o = 0
        while o + 3 <= n_out:
            f0, f1, f2 = _dots3(v, w_out[center if o == 0 else negatives[o - 1]],
                                w_out[negatives[o]], w_out[negatives[o + 1]])
            grads[c, o] = f0
            grads[c, o + 1] = f1
            grads[c, o + 2] = f2
            o += 3
        while o < n_out:
            grads[c, o] = _dot(v, w_out[center if o == 0 else negatives[o - 1]])
            o += 1
        for o in range(n_out):
            g, pair_loss = _sigmoid_grad_loss(grads[c, o], np.float32(1.0) if o == 0 else np.float32(0.0), lr)
            grads[c, o] = g
            loss += pair_loss
    for c in range(n_in):  # input deltas from the old output rows
        delta = deltas[c]
        delta[:] = np.float32(0.0)
        o = 0
        while o + 3 <= n_out:
            _add3(delta, grads[c, o], w_out[center if o == 0 else negatives[o - 1]],
                  grads[c, o + 1], w_out[negatives[o]],
                  grads[c, o + 2], w_out[negatives[o + 1]])
            o += 3
        while o < n_out:
            _add1(delta, grads[c, o], w_out[center if o == 0 else negatives[o - 1]])
            o += 1
    for o in range(n_out):  # output rows from the old input rows
        u = w_out[center if o == 0 else negatives[o - 1]]
        c = 0
        while c + 3 <= n_in:
            _add3(u, grads[c, o], w_in[contexts[c]], grads[c + 1, o], w_in[contexts[c + 1]],
                  grads[c + 2, o], w_in[contexts[c + 2]])
            c += 3
        while c < n_in:
            _add1(u, grads[c, o], w_in[contexts[c]])
            c += 1
    return loss


@njit(**KERNEL_OPTS)
def _sgns_word(w_in, w_out, sent_buf, i, reach, n, negatives, k, lr, scratch):
    """Skip-gram for center word i: every context word in reach predicts it (word2vec.c order)."""
    grad_buf = scratch[3]
    center = sent_buf[i]
    loss = np.float32(0.0)
    q = 0
    for j in range(max(0, i - reach), min(n, i + reach + 1)):
        if j == i:
            continue
        loss += sgns_update(w_in, w_out, center, sent_buf[j], negatives[q : q + k], lr, grad_buf, scratch[2][4])
        q += k
    return loss, q // k


@njit(**KERNEL_OPTS)
def _window_contexts(sent_buf, i, reach, n, contexts):
    """Copy the words within reach of position i (not i itself) into contexts; returns how many."""
    n_ctx = 0
    for j in range(max(0, i - reach), min(n, i + reach + 1)):
        if j != i:
            contexts[n_ctx] = sent_buf[j]
            n_ctx += 1
    return n_ctx


@njit(**KERNEL_OPTS)
def _cbow_word(w_in, w_out, sent_buf, i, reach, n, negatives, k, lr, scratch):
    """CBOW for center word i: the mean of the context words in reach predicts it."""
    grad_buf, contexts, neu1 = scratch[3], scratch[4], scratch[5]
    n_ctx = _window_contexts(sent_buf, i, reach, n, contexts)
    if n_ctx == 0:
        return np.float32(0.0), 0
    hot = scratch[2]  # each context row takes the window's whole gradient: one use each, per window
    _touch_hot_rows(w_in, contexts[:n_ctx], hot[0], hot[1][: hot[0][0]], hot[2])
    return cbow_update(w_in, w_out, sent_buf[i], contexts[:n_ctx], negatives[:k], lr, grad_buf, neu1, hot[4]), 1


@njit(**KERNEL_OPTS)
def _sgns_window_word(w_in, w_out, sent_buf, i, reach, n, negatives, k, lr, scratch):
    """Skip-gram for center word i as one HogBatch step: its whole window shares k negatives."""
    contexts, deltas, grads = scratch[3], scratch[4], scratch[5]
    n_ctx = _window_contexts(sent_buf, i, reach, n, contexts)
    if n_ctx == 0:
        return np.float32(0.0), 0
    return sgns_window_update(w_in, w_out, sent_buf[i], contexts[:n_ctx], negatives[:k], lr, deltas, grads,
                              scratch[2][4]), n_ctx
