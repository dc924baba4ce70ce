"""GloVe: Hogwild AdaGrad on the co-occurrence entries (Pennington et al. 2014, Stanford glove.c)."""

import numpy as np
from numba import njit, types

from .common import DIVERGED, F4_1D, F4_2D, KERNEL_OPTS, RUN

GLOVE_PROGRESS_EVERY = 1 << 16  # entries between GloVe's stop and divergence checks

PARAMS_TYPE = types.Tuple((F4_2D, F4_2D, F4_1D, F4_1D))  # w_word, w_ctx, b_word, b_ctx
COO_TYPE = types.Tuple((types.int32[::1], types.int32[::1], types.float32[::1]))  # rows, cols, values


@njit(types.float64(PARAMS_TYPE, PARAMS_TYPE, types.int64, types.int64, types.float32, types.float64[::1]),
      **KERNEL_OPTS)
def glove_update(params, gradsq, i, j, x, hyper):
    """One AdaGrad step on J_ij = f(x) (w_i . w~_j + b_i + b~_j - log x)^2 / 2, as glove.c (2020-).

    params = (w_word, w_ctx, b_word, b_ctx) and gradsq (their squared-gradient sums, same shapes)
    are updated in place; hyper = (x_max, alpha, eta, grad_clip). f(x) = min(1, (x / x_max)^alpha).
    A vector coordinate's gradient is clipped to [-grad_clip, grad_clip], then scaled by eta; a
    bias's is neither: its step is fdiff / sqrt(its sum), a learning rate of 1 (glove.c's
    ``W[vector_size + l1] -= fdiff / sqrt(gradsq[...])``). Returns J_ij before the update; when it
    is not finite nothing is updated (glove.c skips the entry).
    """
    w_word, w_ctx, b_word, b_ctx = params
    g_word, g_ctx, g_b_word, g_b_ctx = gradsq
    wi = w_word[i]
    wj = w_ctx[j]
    gi = g_word[i]
    gj = g_ctx[j]
    diff = b_word[i] + b_ctx[j] - np.float32(np.log(x))
    for k in range(wi.shape[0]):
        diff += wi[k] * wj[k]
    weight = np.float32(1.0) if x > hyper[0] else np.float32((x / hyper[0]) ** hyper[1])
    fdiff = weight * diff
    cost = 0.5 * fdiff * diff
    if not np.isfinite(cost):
        return cost
    eta = np.float32(hyper[2])
    clip = np.float32(hyper[3])
    for k in range(wi.shape[0]):
        t_i = min(max(fdiff * wj[k], -clip), clip) * eta  # eta * dJ/dw_i, clipped
        t_j = min(max(fdiff * wi[k], -clip), clip) * eta  # eta * dJ/dw~_j, clipped
        wi[k] -= t_i / np.sqrt(gi[k])
        wj[k] -= t_j / np.sqrt(gj[k])
        gi[k] += t_i * t_i
        gj[k] += t_j * t_j
    b_word[i] -= fdiff / np.sqrt(g_b_word[i])
    b_ctx[j] -= fdiff / np.sqrt(g_b_ctx[j])
    g_b_word[i] += fdiff * fdiff
    g_b_ctx[j] += fdiff * fdiff
    return cost


@njit(types.Tuple((types.float64, types.int64))(PARAMS_TYPE, PARAMS_TYPE, COO_TYPE, types.float64[::1],
                                                types.int64[::1], types.int64),
      **KERNEL_OPTS)
def train_glove_epoch(params, gradsq, coo, hyper, counters, thread_idx):
    """One pass of one thread over its (shuffled) slice of the co-occurrence entries.

    coo = (rows, cols, values); counters as train_sgns_epoch (stop flag, entries done per thread).
    Every GLOVE_PROGRESS_EVERY entries it publishes its count and returns early when counters[0]
    is not RUN; a non-finite cost sets DIVERGED. Returns (cost sum, entries trained): a caller
    resumes an early return by passing the entries from there on.
    """
    rows, cols, values = coo
    slot = 1 + thread_idx
    done = counters[slot]
    first = done
    cost = 0.0
    for e in range(rows.shape[0]):
        if e > 0 and e % GLOVE_PROGRESS_EVERY == 0:
            counters[slot] = done
            if not np.isfinite(cost):
                counters[0] = DIVERGED
            if counters[0] != RUN:
                break
        cost += glove_update(params, gradsq, rows[e], cols[e], values[e], hyper)
        done += 1
    if not np.isfinite(cost):
        counters[0] = DIVERGED
    counters[slot] = done
    return cost, done - first


F8_2D = types.float64[:, ::1]
F8_1D = types.float64[::1]
PARAMS64_TYPE = types.Tuple((F8_2D, F8_2D, F8_1D, F8_1D))  # w_word, w_ctx, b_word, b_ctx in float64


@njit(types.float64(PARAMS64_TYPE, PARAMS64_TYPE, COO_TYPE, types.float64[::1]), **KERNEL_OPTS)
def glove_gradient(params, grads, coo, hyper):
    """The batch objective of a block of entries, J = sum f(x) (w_i . w~_j + b_i + b~_j - log x)^2 / 2,
    returned, and its gradient added into grads (same shapes as params): dJ/dw_i += f(x) diff w~_j,
    dJ/dw~_j += f(x) diff w_i, dJ/db_i = dJ/db~_j += f(x) diff. hyper = (x_max, alpha, ...).

    For batch methods (Sandblaster L-BFGS): nothing is updated; float64 throughout, so a gradient
    summed over millions of entries keeps the precision a line search needs.
    """
    w_word, w_ctx, b_word, b_ctx = params
    g_word, g_ctx, g_b_word, g_b_ctx = grads
    rows, cols, values = coo
    cost = 0.0
    for e in range(rows.shape[0]):
        i = rows[e]
        j = cols[e]
        x = np.float64(values[e])
        diff = b_word[i] + b_ctx[j] - np.log(x)
        for k in range(w_word.shape[1]):
            diff += w_word[i, k] * w_ctx[j, k]
        fdiff = diff if x > hyper[0] else (x / hyper[0]) ** hyper[1] * diff
        cost += 0.5 * fdiff * diff
        for k in range(w_word.shape[1]):
            g_word[i, k] += fdiff * w_ctx[j, k]
            g_ctx[j, k] += fdiff * w_word[i, k]
        g_b_word[i] += fdiff
        g_b_ctx[j] += fdiff
    return cost
