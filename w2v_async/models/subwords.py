"""fastText's subword model (Bojanowski et al. 2017): a word's input vector is the mean of its own
row of w_in and the rows of its character n-grams, hashed into buckets as fastText hashes them.

The n-gram rows live in w_sub, beside w_in: only the buckets some vocabulary word uses, ordered by
how often training touches them (data/subwords.py), so the hottest sit first and the hot-row scheme
covers them as it covers the most frequent words (a thread trains rows p < H in its private copies
U + t H + p and merges each after K uses, hot_rows.py).

Skip-gram, as fastText, predicts each context word from the center's n-gram mean; its window is one
step of that mean (computed once) against every context and its own negatives, the gradient spread
back once to the center's rows. With h fixed for the window, every target row (each context and
its negatives) is independent of the others, so they run three per pass over h (one load of h and
of the gradient for three rows; three rows that repeat one fall back to one at a time, so the result
is the sequential one). fastText recomputes the mean and writes the center's 20-odd rows
after every context word; here a window costs one read and one write of them. Sharing one set of
negatives across the window (HogBatch's way, each term weighted by the window's size) was measured
and left out: 15% faster and level at 58k words, but 14 analogy points lower at 12.5k (BENCHMARKS.md). CBOW, as fastText,
takes the mean over every context word's row and n-gram rows, and each of them takes the gradient.
"""

import numpy as np
from numba import njit, types

from .common import F4_1D, F4_2D, I4_1D, KERNEL_OPTS, private_zeros
from .hot_rows import _touch_hot_rows, merge_hot_rows
from .sampling import _sigmoid_grad_loss
from .word2vec import CBOW_SCRATCH, SGNS_SCRATCH, _add1, _add3, _dot, _dots3, _negative_sampling, _window_contexts

FNV_OFFSET_32 = 2166136261  # 32-bit FNV-1a, computed in int64 and masked
FNV_PRIME_32 = 16777619
MASK_32 = 0xFFFFFFFF
SIGN_BITS = 0xFFFFFF00  # a byte >= 0x80 cast to int8_t, then to uint32
I8_1D = types.int64[::1]

# The n-gram rows: (w_sub float32[U + T H, d] shared, each word's n-grams int64[V + 1] starts and
# int32[...] rows of w_sub (CSR), this thread's hot info int64[3] (H, offset U + t H, K), its uses
# int32[H], its rows as of the last merge float32[H, d], a window's rows int32[...], the hidden
# vector float32[d], the window's gradient float32[d], a window's contexts int32[2 window])
SUB = types.Tuple((F4_2D, I8_1D, I4_1D, I8_1D, I4_1D, F4_2D, I4_1D, F4_1D, F4_1D, I4_1D))
SGNS_SUB_SCRATCH = types.Tuple(tuple(SGNS_SCRATCH.types) + (SUB,))
CBOW_SUB_SCRATCH = types.Tuple(tuple(CBOW_SCRATCH.types) + (SUB,))
SUB_SCRATCHES = (SGNS_SUB_SCRATCH, CBOW_SUB_SCRATCH)


@njit(inline="always", **KERNEL_OPTS)
def _byte(pool, start, n_bytes, j):
    """Byte j of "<" + pool[start:start + n_bytes - 2] + ">"."""
    if j == 0:
        return 60
    if j == n_bytes - 1:
        return 62
    return np.int64(pool[start + j - 1])


@njit(**KERNEL_OPTS)  # typed on first use, as every kernel here: only a --subwords run needs them
def word_ngrams(pool, start, end, minn, maxn, bucket, out, at):
    """fastText's computeSubwords for the word pool[start:end] (UTF-8): the n-grams of "<word>" of
    minn..maxn characters (a character: a byte and its continuation bytes), except "<" and ">"
    alone, each hashed by 32-bit FNV-1a over its bytes, every byte sign-extended first as fastText's
    int8_t cast does, then taken modulo bucket; written to out from at, in fastText's order.
    Returns the position after the last."""
    n_bytes = end - start + 2
    for i in range(n_bytes):
        if (_byte(pool, start, n_bytes, i) & 0xC0) == 0x80:
            continue
        h = FNV_OFFSET_32
        j = i
        n = 1
        while j < n_bytes and n <= maxn:
            while True:  # one character: a byte and its continuation bytes
                b = _byte(pool, start, n_bytes, j)
                h = ((h ^ (b | SIGN_BITS if b >= 128 else b)) * FNV_PRIME_32) & MASK_32
                j += 1
                if j >= n_bytes or (_byte(pool, start, n_bytes, j) & 0xC0) != 0x80:
                    break
            if n >= minn and not (n == 1 and (i == 0 or j == n_bytes)):
                out[at] = h % bucket
                at += 1
            n += 1
    return at


@njit(**KERNEL_OPTS)
def all_ngrams(pool, ends, minn, maxn, bucket, starts):
    """word_ngrams for every word of a packed vocabulary (word w: pool[ends[w - 1]:ends[w]]): their
    buckets (int32: --bucket is below 2^31) one word after another; starts (int64[V + 1]) receives
    where each word's begin. A first pass counts them into a scratch the size of the longest word's,
    so the result is exactly 4 bytes an n-gram, whatever the vocabulary."""
    n_words = ends.shape[0]
    longest = 0
    prev = 0
    for w in range(n_words):
        longest = max(longest, ends[w] - prev)
        prev = ends[w]
    scratch = np.empty((longest + 2) * max(0, maxn - minn + 1), np.int32)  # c + 2 characters: c + 2 n-grams a size
    at = 0
    prev = 0
    for w in range(n_words):
        starts[w] = at
        if maxn > 0:
            at += word_ngrams(pool, prev, ends[w], minn, maxn, bucket, scratch, 0)
        prev = ends[w]
    starts[n_words] = at
    out = np.empty(at, np.int32)
    prev = 0
    for w in range(n_words):
        if maxn > 0:
            word_ngrams(pool, prev, ends[w], minn, maxn, bucket, out, starts[w])
        prev = ends[w]
    return out


@njit(**KERNEL_OPTS)
def bucket_weights(starts, found, counts, weight, used):
    """weight[b] += the count of every word holding bucket b (once per time it holds it) and
    used[b] = True for those buckets, from the words' n-gram buckets (all_ngrams)."""
    for w in range(starts.shape[0] - 1):
        for j in range(starts[w], starts[w + 1]):
            weight[found[j]] += counts[w]
            used[found[j]] = True


@njit(**KERNEL_OPTS)
def renumber(found, row_of):
    """found[j] = row_of[found[j]], in place: buckets to rows without a second array."""
    for j in range(found.shape[0]):
        found[j] = row_of[found[j]]


@njit(**KERNEL_OPTS)
def compose(w_in, w_sub, starts, rows, out):
    """Every word's vector as fastText's getWordVector: the mean of its row and its n-grams' rows."""
    for w in range(out.shape[0]):
        v = out[w]
        v[:] = w_in[w]
        for q in range(starts[w], starts[w + 1]):
            _add1(v, np.float32(1.0), w_sub[rows[q]])
        inv = np.float32(1.0) / np.float32(1 + starts[w + 1] - starts[w])
        for k in range(v.shape[0]):
            v[k] *= inv


def sub_scratch(buffers: tuple, w_sub: np.ndarray, starts: np.ndarray, rows: np.ndarray, hot: tuple,
                longest: int, window: int, negative: int) -> tuple:
    """A thread's scratch for the subword model: buffers from word2vec_scratch ("pair" for
    skip-gram, "cbow") and the SUB tuple; hot = (info int64[3], uses int32[H], base float32[H, d])
    for the n-gram rows; longest: the most n-grams a word has."""
    dim = w_sub.shape[1]
    return buffers + ((w_sub, starts, rows, hot[0], hot[1], hot[2],
                       private_zeros(max(1, 2 * window * (longest + 1)), np.int32),
                       private_zeros(dim, np.float32), private_zeros(dim, np.float32),
                       private_zeros(2 * window * (negative + 2), np.int32)),)


@njit(**KERNEL_OPTS)
def _gather(sub, word, at):
    """Append word's n-gram rows (hot ones as this thread's copies) to sub's row buffer from at;
    returns the new end."""
    starts, rows, info, buf = sub[1], sub[2], sub[3], sub[6]
    n_hot, offset = info[0], info[1]
    for q in range(starts[word], starts[word + 1]):
        p = rows[q]
        buf[at] = p + offset if p < n_hot else p
        at += 1
    return at


@njit(**KERNEL_OPTS)
def _mean(w_in, w_sub, words, rows, h):
    """h = the mean of w_in[words] and w_sub[rows]."""
    h[:] = np.float32(0.0)
    for j in range(words.shape[0]):
        _add1(h, np.float32(1.0), w_in[words[j]])
    j = 0
    while j + 3 <= rows.shape[0]:  # three rows per pass: h is loaded and stored once for them
        _add3(h, np.float32(1.0), w_sub[rows[j]], np.float32(1.0), w_sub[rows[j + 1]], np.float32(1.0),
              w_sub[rows[j + 2]])
        j += 3
    while j < rows.shape[0]:
        _add1(h, np.float32(1.0), w_sub[rows[j]])
        j += 1
    inv = np.float32(1.0) / np.float32(words.shape[0] + rows.shape[0])
    for k in range(h.shape[0]):
        h[k] *= inv


@njit(**KERNEL_OPTS)
def _spread(w_in, w_sub, words, rows, grad):
    """Every input row takes the whole gradient, as fastText's Model::update."""
    for j in range(words.shape[0]):
        _add1(w_in[words[j]], np.float32(1.0), grad)
    for j in range(rows.shape[0]):
        _add1(w_sub[rows[j]], np.float32(1.0), grad)


@njit(inline="always", **KERNEL_OPTS)
def _target(targets, o):
    """The w_out row of target o (a positive is stored as its complement; past the end: -1)."""
    if o >= targets.shape[0]:
        return -1
    t = targets[o]
    return ~t if t < 0 else t


@njit(inline="always", **KERNEL_OPTS)
def _label(targets, o):
    return np.float32(1.0) if targets[o] < 0 else np.float32(0.0)


@njit(**KERNEL_OPTS)  # typed on first use, by the one model a run trains
def sgns_sub_update(w_in, w_out, w_sub, words, rows, contexts, negatives, k, lr, h, acc, targets):
    """One skip-gram window of the subword model: h, the mean of w_in[words] (the center, one id)
    and w_sub[rows], predicts each context word (w_out, label 1) against its own k negatives
    (label 0), at the old h; the summed gradient goes once to each of the center's rows. targets:
    int32 scratch for the window's (k + 1) contexts' rows. Returns the window's loss."""
    _mean(w_in, w_sub, words, rows, h)
    acc[:] = np.float32(0.0)
    n_out = 0  # the targets, compacted into negatives: each context, then its negatives that differ from it
    for c in range(contexts.shape[0]):
        targets[n_out] = ~contexts[c]  # label 1, marked by the complement
        n_out += 1
        for q in range(c * k, (c + 1) * k):
            if negatives[q] != contexts[c]:
                targets[n_out] = negatives[q]
                n_out += 1
    loss = np.float32(0.0)
    o = 0
    while o < n_out:
        t0, t1, t2 = _target(targets, o), _target(targets, o + 1), _target(targets, o + 2)
        if o + 3 <= n_out and t0 != t1 and t0 != t2 and t1 != t2:  # three rows, scores in one pass over h
            u0, u1, u2 = w_out[t0], w_out[t1], w_out[t2]
            f0, f1, f2 = _dots3(h, u0, u1, u2)
            g0, l0 = _sigmoid_grad_loss(f0, _label(targets, o), lr)
            g1, l1 = _sigmoid_grad_loss(f1, _label(targets, o + 1), lr)
            g2, l2 = _sigmoid_grad_loss(f2, _label(targets, o + 2), lr)
            loss += l0 + l1 + l2
            _add3(acc, g0, u0, g1, u1, g2, u2)
            _add1(u0, g0, h)
            _add1(u1, g1, h)
            _add1(u2, g2, h)
            o += 3
        else:
            u = w_out[t0]
            g, pair_loss = _sigmoid_grad_loss(_dot(h, u), _label(targets, o), lr)
            loss += pair_loss
            _add1(acc, g, u)
            _add1(u, g, h)
            o += 1
    _spread(w_in, w_sub, words, rows, acc)
    return loss


@njit(**KERNEL_OPTS)  # typed on first use, by the one model a run trains
def cbow_sub_update(w_in, w_out, w_sub, center, contexts, rows, negatives, lr, h, grad_buf):
    """fastText's CBOW: the mean of the contexts' rows and all their n-grams' rows predicts center
    against negatives; each of those rows takes the whole gradient. Returns the loss."""
    _mean(w_in, w_sub, contexts, rows, h)
    loss = _negative_sampling(w_out, h, center, negatives, lr, grad_buf)
    _spread(w_in, w_sub, contexts, rows, grad_buf)
    return loss


@njit(**KERNEL_OPTS)
def _word_id(w_in_rows, word, info):
    """The vocabulary id of a sentence's word (a hot word is its thread's copy, offset + w)."""
    return word - info[1] if word >= w_in_rows else word


@njit(**KERNEL_OPTS)
def _sgns_sub_word(w_in, w_out, sent_buf, i, reach, n, negatives, k, lr, scratch):
    """Skip-gram of the subword model for center word i: one step of its n-gram mean against every
    context word in reach, each with its k negatives (drawn per pair, as fastText)."""
    sub, info = scratch[4], scratch[2][0]
    contexts = sub[9]
    n_ctx = _window_contexts(sent_buf, i, reach, n, contexts)
    if n_ctx == 0:
        return np.float32(0.0), 0
    n_rows = _gather(sub, _word_id(sub[1].shape[0] - 1, sent_buf[i], info), 0)
    rows = sub[6][:n_rows]
    _touch_hot_rows(sub[0], rows, sub[3], sub[4], sub[5])
    return sgns_sub_update(w_in, w_out, sub[0], sent_buf[i: i + 1], rows, contexts[:n_ctx], negatives, k, lr,
                           sub[7], sub[8], contexts[n_ctx:]), n_ctx


@njit(**KERNEL_OPTS)
def _cbow_sub_word(w_in, w_out, sent_buf, i, reach, n, negatives, k, lr, scratch):
    """CBOW of the subword model for center word i: its context words and all their n-grams."""
    grad_buf, contexts, hot, sub = scratch[3], scratch[4], scratch[2], scratch[6]
    n_ctx = _window_contexts(sent_buf, i, reach, n, contexts)
    if n_ctx == 0:
        return np.float32(0.0), 0
    info = hot[0]
    _touch_hot_rows(w_in, contexts[:n_ctx], info, hot[1][: info[0]], hot[2])  # as CBOW: per window
    n_words = sub[1].shape[0] - 1
    n_rows = 0
    for j in range(n_ctx):
        n_rows = _gather(sub, _word_id(n_words, contexts[j], info), n_rows)
    rows = sub[6][:n_rows]
    _touch_hot_rows(sub[0], rows, sub[3], sub[4], sub[5])
    return cbow_sub_update(w_in, w_out, sub[0], sent_buf[i], contexts[:n_ctx], rows, negatives[:k], lr, sub[7],
                           grad_buf), 1


@njit(**KERNEL_OPTS)
def _sync_sub_rows(sub):
    """Merge this thread's private n-gram rows into w_sub (at the ticks, as the word rows)."""
    merge_hot_rows(sub[0], sub[3][1], sub[5])
