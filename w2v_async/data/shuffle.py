"""GloVe's shuffle of the co-occurrence entries (Stanford's ``shuffle``), in bounded memory.

Up to ``chunk`` entries it is one permutation in memory. Beyond, it is an external shuffle: every
entry goes to one of B buckets at random, chunk by chunk; each bucket has its own stretch of the
output, an unnamed file mapped into memory, and the entries are written there as they are dealt;
then each bucket, small enough to hold, is permuted in place. Random buckets, each shuffled, in a
row, make a uniformly random order. The same seed and memory give the same order, whichever engine
asks. The files open at once do not grow with the entries: one output file (three mappings).
"""

import errno
import math
import os
import tempfile
from typing import List, Optional, Tuple

import numpy as np

from ..errors import InputError

BYTES_PER_ENTRY = 32  # the chunk's entries (12), its bucket numbers (8) and their sort (8), and slack
OPEN_FILES = 4  # files the external shuffle holds open at once, whatever nnz: its output and three mappings


def _check(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_words: int) -> None:
    if values.size and values.min() <= 0:
        raise InputError("the co-occurrence file has non-positive counts; count it again with `w2v-async cooccur`.")
    if rows.size and (rows.max() >= n_words or cols.max() >= n_words or min(rows.min(), cols.min()) < 0):
        raise InputError("the co-occurrence file indexes words outside its vocabulary; count it again.")


def shuffled_entries(cooc, rng: np.random.Generator, memory_gb: float = 1.0,
                     directory: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of cooc in a random order drawn from rng, checked on the way (counts
    positive, ids inside the vocabulary); at most about memory_gb of them in memory at once.
    directory: where the output goes when they do not fit (None: the system's)."""
    nnz = cooc.nnz
    n_words = len(cooc.vocab)
    chunk = max(1, int(memory_gb * 2**30 / BYTES_PER_ENTRY))
    arrays = (cooc.rows, cooc.cols, cooc.values)
    if nnz <= chunk:
        _check(*(np.asarray(a) for a in arrays), n_words)
        order = rng.permutation(nnz)
        return tuple(a[order] for a in arrays)
    try:
        return _external(arrays, n_words, nnz, chunk, rng, directory)
    except OSError as e:
        raise InputError(_failure(e, directory, nnz, sum(a.dtype.itemsize for a in arrays))) from e


# Why one file, its buckets in place, and not a file per bucket: at 10B tokens, say 10B entries,
# --memory 1 gives chunks of 33.5M entries (32 bytes each in memory), 299 chunks and B = 598 buckets
# of about half a chunk (room for their spread). A file per bucket and per column kept 1,794 files
# open (past the usual limit of 1,024; 594 at 3.3B entries) and took 24 bytes per entry on disk
# (the buckets, then the output). Here the bucket sizes are counted first, by drawing the chunks'
# bucket numbers, and drawn again (the generator's state restored) to deal the entries straight
# into their bucket's stretch of the output: one file whatever nnz (an unnamed file, three mappings,
# so 3 descriptors), 12 bytes per entry on disk (120 GB), a table of chunks x buckets counts (1.4 MB).
# Per chunk, 3 x 598 writes of about 56k entries (224 kB); per bucket, one read and one write of
# its stretch. The draws are those of dealing into bucket files (then each bucket's permutation),
# so the order is the same as theirs, and the generator ends in the same state.
def _external(arrays, n_words: int, nnz: int, chunk: int, rng: np.random.Generator, directory: Optional[str]):
    n_buckets = 2 * math.ceil(nnz / chunk)  # buckets of about half a chunk: room for their spread
    firsts = range(0, nnz, chunk)
    state = rng.bit_generator.state
    counts = np.stack([np.bincount(rng.integers(n_buckets, size=min(chunk, nnz - first)), minlength=n_buckets)
                       for first in firsts])  # [chunk, bucket]
    rng.bit_generator.state = state
    # where chunk c's entries of bucket b go: after the bucket's start and the earlier chunks' share
    starts = np.concatenate([[0], np.cumsum(counts.sum(axis=0))])
    at = starts[:-1] + np.cumsum(counts, axis=0) - counts
    out = _output(arrays, nnz, directory)
    for c, first in enumerate(firsts):
        piece = [np.asarray(a[first: first + chunk]) for a in arrays]
        _check(*piece, n_words)
        which = rng.integers(n_buckets, size=piece[0].shape[0])
        order = np.argsort(which, kind="stable")
        del which
        bounds = np.concatenate([[0], np.cumsum(counts[c])])
        for o, array in zip(out, piece):
            moved = array[order]
            for b in np.flatnonzero(counts[c]):
                o[at[c, b]: at[c, b] + counts[c, b]] = moved[bounds[b]: bounds[b + 1]]
            del moved
        del piece, order
    for b in range(n_buckets):
        perm = rng.permutation(int(starts[b + 1] - starts[b]))
        for o in out:
            stretch = np.array(o[starts[b]: starts[b + 1]])  # read in order, not through the permutation
            o[starts[b]: starts[b + 1]] = stretch[perm]
    return tuple(out)


def _output(arrays, nnz: int, directory: Optional[str]) -> List[np.memmap]:
    """One column per array, one after another in an unnamed file; the blocks are reserved first,
    so a full disk is an OSError here, not a SIGBUS while writing through the mapping."""
    sizes = [nnz * a.dtype.itemsize for a in arrays]
    with tempfile.TemporaryFile(dir=directory, prefix=".w2v-shuffle-") as f:
        os.posix_fallocate(f.fileno(), 0, sum(sizes))
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        return [np.memmap(f, a.dtype, "r+", offset=int(offset), shape=(nnz,)) for a, offset in zip(arrays, offsets)]


def _failure(e: OSError, directory: Optional[str], nnz: int, entry_bytes: int) -> str:
    where = directory if directory is not None else tempfile.gettempdir()
    if e.errno in (errno.EMFILE, errno.ENFILE):
        return (f"too many open files while shuffling GloVe's entries ({e.strerror}); raise the limit "
                "(ulimit -n 4096) or run fewer jobs at once.")
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"the disk under {where} is full: GloVe's shuffle needs {nnz * entry_bytes / 1e9:.1f} GB there "
                "(12 bytes per entry); free space, write the output on a larger disk, or give --memory enough "
                "to shuffle in memory.")
    return f"cannot write GloVe's shuffle in {where}: {e.strerror or e}; write the output on another disk."
