"""GloVe's shuffle of the co-occurrence entries (Stanford's ``shuffle``), in bounded memory.

Up to ``chunk`` entries it is one permutation in memory. Beyond, it is an external shuffle: every
entry goes to one of B buckets at random (chunk by chunk, each bucket an unnamed file), then each
bucket, small enough to hold, is permuted and appended to the output, an unnamed file mapped into
memory. Random buckets, each shuffled, in a row, make a uniformly random order. The same seed and
memory give the same order, whichever engine asks.
"""

import math
import tempfile
from typing import List, Optional, Tuple

import numpy as np

from ..errors import InputError

BYTES_PER_ENTRY = 32  # the chunk's entries (12), its bucket numbers (8) and their sort (8), and slack


def _check(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_words: int) -> None:
    if values.size and values.min() <= 0:
        raise InputError("the co-occurrence file has non-positive counts; count it again with `w2v-async cooccur`.")
    if rows.size and (rows.max() >= n_words or cols.max() >= n_words or min(rows.min(), cols.min()) < 0):
        raise InputError("the co-occurrence file indexes words outside its vocabulary; count it again.")


def shuffled_entries(cooc, rng: np.random.Generator, memory_gb: float = 1.0,
                     directory: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of cooc in a random order drawn from rng, checked on the way (counts
    positive, ids inside the vocabulary); at most about memory_gb of them in memory at once.
    directory: where the buckets and the output go when they do not fit (None: the system's)."""
    nnz = cooc.nnz
    n_words = len(cooc.vocab)
    chunk = max(1, int(memory_gb * 2**30 / BYTES_PER_ENTRY))
    arrays = (cooc.rows, cooc.cols, cooc.values)
    if nnz <= chunk:
        _check(*(np.asarray(a) for a in arrays), n_words)
        order = rng.permutation(nnz)
        return tuple(a[order] for a in arrays)
    n_buckets = 2 * math.ceil(nnz / chunk)  # buckets of about half a chunk: room for their spread
    buckets: List[List] = [[tempfile.TemporaryFile(dir=directory, prefix=".w2v-shuffle-") for _ in arrays]
                           for _ in range(n_buckets)]
    try:
        for first in range(0, nnz, chunk):
            piece = [np.asarray(a[first: first + chunk]) for a in arrays]
            _check(*piece, n_words)
            which = rng.integers(n_buckets, size=piece[0].shape[0])
            order = np.argsort(which, kind="stable")
            bounds = np.concatenate([[0], np.cumsum(np.bincount(which, minlength=n_buckets))])
            for a, array in enumerate(piece):
                moved = array[order]
                for b in range(n_buckets):
                    moved[bounds[b]: bounds[b + 1]].tofile(buckets[b][a])
            del piece, which, order
        out = [np.memmap(tempfile.TemporaryFile(dir=directory, prefix=".w2v-shuffle-"), a.dtype, "w+",
                         shape=(nnz,)) for a in arrays]
        position = 0
        for files in buckets:
            loaded = []
            for f, a in zip(files, arrays):
                f.seek(0)
                loaded.append(np.fromfile(f, a.dtype))
                f.close()
            perm = rng.permutation(loaded[0].shape[0])
            for o, array in zip(out, loaded):
                o[position: position + perm.shape[0]] = array[perm]
            position += perm.shape[0]
        return tuple(out)
    finally:
        for files in buckets:
            for f in files:
                f.close()
