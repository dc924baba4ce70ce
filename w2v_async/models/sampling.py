"""Shared sampling kernels: xorshift RNG, alias noise tables, subsampling, windows and negatives,
the sigmoid tables and the learning-rate schedule."""

import numpy as np
from numba import njit, types

from .common import KERNEL_OPTS

# word2vec.c: sigmoid tabulated on [-MAX_EXP, MAX_EXP]; outside it the gradient saturates.
EXP_TABLE_SIZE = 1000
MAX_EXP = 6.0
_TABLE_SCALE = EXP_TABLE_SIZE / MAX_EXP / 2.0
_x = (np.arange(EXP_TABLE_SIZE, dtype=np.float64) / EXP_TABLE_SIZE * 2.0 - 1.0) * MAX_EXP
SIGMOID_TABLE = (1.0 / (1.0 + np.exp(-_x))).astype(np.float32)
LOG_SIGMOID_TABLE = (-np.log1p(np.exp(-_x))).astype(np.float32)
del _x

_U8 = np.uint64(8)
_U12 = np.uint64(12)
_U25 = np.uint64(25)
_U27 = np.uint64(27)
_U32 = np.uint64(32)
_U24_MASK = np.uint64(0xFFFFFF)
_XORSHIFT_MULT = np.uint64(0x2545F4914F6CDD1D)
_INV_2_24 = np.float32(1.0 / (1 << 24))


@njit(types.uint64(types.uint64), **KERNEL_OPTS)
def xorshift_next(x):
    """xorshift64* (Vigna 2016): the next state; the caller multiplies for output."""
    x ^= x >> _U12
    x ^= x << _U25
    x ^= x >> _U27
    return x


@njit(types.int64(types.uint64, types.uint64), **KERNEL_OPTS)
def bounded(r, n):
    """Map the high 32 bits of r onto [0, n) by multiply-shift (no modulo)."""
    return types.int64(((r >> _U32) * n) >> _U32)


@njit(types.float32(types.uint64), **KERNEL_OPTS)
def unit_float(r):
    """24 middle bits of r as a float32 in [0, 1)."""
    return types.float32((r >> _U8) & _U24_MASK) * _INV_2_24


@njit(types.Tuple((types.float32[::1], types.int32[::1]))(types.float64[::1]), cache=True)
def build_alias_table(p):
    """Vose's alias method for drawing from p (float64[V], sums to 1) in O(1).

    Returns prob : float32[V], alias : int32[V]; draw j uniform, keep j with prob[j] else alias[j].
    """
    n = p.shape[0]
    scaled = np.empty(n, np.float64)
    prob = np.empty(n, np.float32)
    alias = np.empty(n, np.int32)
    small = np.empty(n, np.int64)  # stacks of indices with scaled < 1 and >= 1, in index order
    large = np.empty(n, np.int64)
    n_small = 0
    n_large = 0
    for i in range(n):  # plain loops: numpy's array functions would add seconds to the first compile
        scaled[i] = p[i] * n
        prob[i] = np.float32(1.0)
        alias[i] = i
        if scaled[i] < 1.0:
            small[n_small] = i
            n_small += 1
        else:
            large[n_large] = i
            n_large += 1
    while n_small > 0 and n_large > 0:
        n_small -= 1
        s = small[n_small]
        n_large -= 1
        g = large[n_large]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        if scaled[g] < 1.0:
            small[n_small] = g
            n_small += 1
        else:
            large[n_large] = g
            n_large += 1
    return prob, alias


@njit(**KERNEL_OPTS)
def _sigmoid_grad_loss(f, label, lr):
    """g = (label - sigmoid(f)) * lr (word2vec.c), and the loss -log sigmoid(+-f) of the pair.

    The loss of a positive pair is -log s(f); of a negative, -log s(-f) = f - log s(f).
    """
    if f > MAX_EXP:
        return (label - np.float32(1.0)) * lr, (np.float32(1.0) - label) * f
    if f < -MAX_EXP:
        return label * lr, -label * f
    idx = min(max(int((f + MAX_EXP) * _TABLE_SCALE), 0), EXP_TABLE_SIZE - 1)  # f = nan lands in range
    log_sig = LOG_SIGMOID_TABLE[idx]
    return (label - SIGMOID_TABLE[idx]) * lr, (np.float32(1.0) - label) * f - log_sig


@njit(**KERNEL_OPTS)
def _draw_negatives(r, noise_prob, noise_alias, negatives, n_hot, offset):
    """Fill negatives from the alias table (ids w < n_hot become w + offset); returns the RNG state."""
    n_noise = np.uint64(noise_prob.shape[0])
    for i in range(negatives.shape[0]):
        r = xorshift_next(r)
        out = r * _XORSHIFT_MULT
        j = bounded(out, n_noise)
        w = j if unit_float(out) < noise_prob[j] else noise_alias[j]
        negatives[i] = w + offset if w < n_hot else w
    return r


@njit(**KERNEL_OPTS)
def _draw_window(r, i, n, windows, tables, negatives, per_context, per_word, remap):
    """Draw word i's window (of a sentence of n words) and its negatives into negatives.

    windows = (window, shrink): the window reaches window - (a draw in [0, shrink)) words each
    side, word2vec.c's reduced window in [1, window] with shrink = window, always window with
    shrink = 1 (gensim's shrink_windows=False). remap = (H, offset): negatives w < H are written as
    w + offset. Returns (rng state, reach, number of negatives drawn).
    """
    _, noise_prob, noise_alias = tables
    window, shrink = windows
    r = xorshift_next(r)
    reach = window - bounded(r * _XORSHIFT_MULT, np.uint64(shrink))
    n_ctx = min(n, i + reach + 1) - max(0, i - reach) - 1
    m = n_ctx * per_context + (per_word if n_ctx > 0 else 0)
    r = _draw_negatives(r, noise_prob, noise_alias, negatives[:m], remap[0], remap[1])
    return r, reach, m


@njit(**KERNEL_OPTS)
def _subsample(r, ids, start, end, keep_prob, sent_buf, n_hot, offset):
    """Copy ids[start:end] into sent_buf, keeping word w with probability keep_prob[w].

    Ids w < n_hot are written as w + offset: the thread's private copies of the hot rows.
    """
    n = 0
    for p in range(start, end):
        w = ids[p]
        r = xorshift_next(r)
        if unit_float(r * _XORSHIFT_MULT) < keep_prob[w]:
            sent_buf[n] = w + offset if w < n_hot else w
            n += 1
    return r, n


@njit(**KERNEL_OPTS)
def learning_rate(sched, counters):
    """Linear decay from sched[0] to sched[1] by the words done by all threads / sched[2]."""
    done = 0
    for t in range(1, counters.shape[0]):
        done += counters[t]
    lr = sched[0] - (sched[0] - sched[1]) * (done / sched[2])
    return np.float32(max(lr, sched[1]))
