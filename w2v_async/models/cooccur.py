"""GloVe co-occurrence counting kernels (Stanford cooccur semantics): emit pairs, radix-sort and
reduce them, k-way merge sorted runs."""

import numpy as np
from numba import njit, types

from .common import CORPUS, KERNEL_OPTS

COOC_SIG = types.Tuple((types.int64, types.int64))(CORPUS, types.int64, types.int64, types.int64,
                                                     types.int64[::1], types.float32[::1])


@njit(COOC_SIG, **KERNEL_OPTS)
def fill_cooccurrences(corpus, first, window, n_words, keys, values):
    """Emit left-context pairs of sentences[first:] into keys/values until the next one would overflow.

    For every word w at position p and each earlier word c at distance d <= window in the same
    sentence: key = w * n_words + c, value = 1 / d (Stanford's cooccur weighting). Returns
    (index into sentences of the first sentence not emitted, entries filled). The caller makes
    keys hold at least window * longest sentence entries.
    """
    ids, sent_starts, sentences = corpus
    capacity = keys.shape[0]
    n = 0
    for q in range(first, sentences.shape[0]):
        s = sentences[q]
        start = sent_starts[s]
        end = sent_starts[s + 1]
        if n + (end - start) * window > capacity:
            return q, n
        for p in range(start, end):
            row = np.int64(ids[p]) * n_words
            for d in range(1, min(window, p - start) + 1):
                keys[n] = row + ids[p - d]
                values[n] = np.float32(1.0) / np.float32(d)
                n += 1
    return sentences.shape[0], n


@njit(types.void(types.int64[::1], types.float32[::1], types.int64, types.int64), **KERNEL_OPTS)
def add_transpose(keys, values, n, n_words):
    """Append the transpose of entries [0, n) at [n, 2n): X_ij += X_ji makes counts symmetric."""
    for i in range(n):
        k = keys[i]
        keys[n + i] = (k % n_words) * n_words + k // n_words
        values[n + i] = values[i]


RADIX_BITS = 16


@njit(types.Tuple((types.int64, types.boolean))(types.int64[::1], types.float32[::1], types.int64[::1],
                                                types.float32[::1], types.int64), **KERNEL_OPTS)
def sort_reduce(keys, values, tmp_keys, tmp_values, max_key):
    """Sort (keys, values) by key and sum the values of equal keys; keys are in [0, max_key].

    LSD radix sort on 16-bit digits, ping-ponging between the arrays and tmp_*, then an in-place
    reduction (summed in float64). Returns (m, in_tmp): the first m entries of tmp_* (in_tmp) or of keys/values hold
    the sorted unique keys and their sums.
    """
    n = keys.shape[0]
    src_k, src_v, dst_k, dst_v = keys, values, tmp_keys, tmp_values
    in_tmp = False
    counts = np.empty((1 << RADIX_BITS) + 1, np.int64)
    mask = (1 << RADIX_BITS) - 1
    shift = 0
    while shift == 0 or (max_key >> shift) > 0:
        counts[:] = 0
        for i in range(n):
            counts[((src_k[i] >> shift) & mask) + 1] += 1
        for d in range(1, counts.shape[0]):
            counts[d] += counts[d - 1]
        for i in range(n):
            d = (src_k[i] >> shift) & mask
            pos = counts[d]
            dst_k[pos] = src_k[i]
            dst_v[pos] = src_v[i]
            counts[d] = pos + 1
        src_k, src_v, dst_k, dst_v = dst_k, dst_v, src_k, src_v
        in_tmp = not in_tmp
        shift += RADIX_BITS
    m = 0
    acc = 0.0  # float64: a float32 running sum would depend on how the entries were split into runs
    for i in range(n):
        if m > 0 and src_k[i] == src_k[m - 1]:
            acc += src_v[i]
        else:
            if m > 0:
                src_v[m - 1] = acc
            src_k[m] = src_k[i]
            acc = np.float64(src_v[i])
            m += 1
    if m > 0:
        src_v[m - 1] = acc
    return m, in_tmp


@njit(**KERNEL_OPTS)
def _sift_down(heap, size, i, head_keys):
    while True:
        smallest = i
        left = 2 * i + 1
        right = left + 1
        if left < size and head_keys[heap[left]] < head_keys[heap[smallest]]:
            smallest = left
        if right < size and head_keys[heap[right]] < head_keys[heap[smallest]]:
            smallest = right
        if smallest == i:
            return
        heap[i], heap[smallest] = heap[smallest], heap[i]
        i = smallest


@njit(nogil=True, cache=True)
def merge_runs(keys, values, offsets, out_keys, out_values):
    """k-way merge of sorted runs keys[offsets[r]:offsets[r + 1]], summing equal keys.

    Writes each key once, in order, with its values summed in float64 (stored as float32);
    returns the number of entries written.
    """
    n_runs = offsets.shape[0] - 1
    pos = offsets[:-1].copy()
    head_keys = np.empty(n_runs, np.int64)
    heap = np.empty(n_runs, np.int64)
    size = 0
    for r in range(n_runs):
        if pos[r] < offsets[r + 1]:
            head_keys[r] = keys[pos[r]]
            heap[size] = r
            size += 1
    for i in range(size // 2 - 1, -1, -1):
        _sift_down(heap, size, i, head_keys)
    n_out = -1
    last = -1
    acc = 0.0
    while size > 0:
        r = heap[0]
        k = head_keys[r]
        if k != last:
            if n_out >= 0:
                out_values[n_out] = acc
            n_out += 1
            out_keys[n_out] = k
            acc = 0.0
            last = k
        acc += values[pos[r]]
        pos[r] += 1
        if pos[r] < offsets[r + 1]:
            head_keys[r] = keys[pos[r]]
        else:
            size -= 1
            heap[0] = heap[size]
        _sift_down(heap, size, 0, head_keys)
    if n_out >= 0:
        out_values[n_out] = acc
    return n_out + 1
