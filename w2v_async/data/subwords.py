"""A vocabulary's character n-grams as rows of the subword model's n-gram matrix (models/subwords.py).

Each word's n-grams are hashed into --bucket buckets as fastText hashes them. Only the buckets some
vocabulary word uses can ever be trained, so the matrix holds just those (a 58k-word vocabulary
uses about a quarter of fastText's 2M), ordered by how often training touches them: a bucket's
weight is the summed count of the words that hold it, so the n-grams of the most frequent words
come first, where the hot-row scheme gives each thread private copies. buckets[p] says which
bucket row p is, for writing fastText's full matrix (an unused bucket is a row of zeros there).
"""

from dataclasses import dataclass
from typing import List

import numpy as np

from ..io import pack_words


@dataclass
class SubwordRows:
    """starts : int64[V + 1] and rows : int32[...]: word w's n-grams are rows[starts[w]:starts[w + 1]]
    of the n-gram matrix (repeats kept, as fastText); buckets : int64[U], the bucket of each row."""

    starts: np.ndarray
    rows: np.ndarray
    buckets: np.ndarray

    @property
    def longest(self) -> int:
        return int(np.max(np.diff(self.starts))) if self.starts.shape[0] > 1 else 0


def word_buckets(words: List[str], minn: int, maxn: int, bucket: int):
    """fastText's n-gram buckets of each word: (starts int64[V + 1], buckets int32[...])."""
    from ..models.subwords import all_ngrams  # the subword kernels: compiled only by a run that needs them

    packed = pack_words(words)
    starts = np.zeros(len(words) + 1, np.int64)
    found = all_ngrams(packed["words_utf8"], packed["words_ends"], minn, maxn, bucket, starts)
    return starts, found


def subword_rows(words: List[str], counts: np.ndarray, minn: int, maxn: int, bucket: int) -> SubwordRows:
    """The n-gram rows of a vocabulary (words with their counts), hottest first.

    Memory: the n-grams' buckets (4 bytes each, renumbered into rows in place) and three arrays of
    --bucket entries (13 bytes each: 26 MB at fastText's 2M), nothing per n-gram beyond that; a
    10M-word vocabulary's 300M n-grams take 1.2 GB."""
    from ..models.subwords import bucket_weights, renumber

    starts, found = word_buckets(words, minn, maxn, bucket)
    weight = np.zeros(bucket, np.float64)
    used = np.zeros(bucket, np.bool_)
    bucket_weights(starts, found, np.asarray(counts, np.float64), weight, used)
    used_buckets = np.flatnonzero(used)
    del used
    order = np.lexsort((used_buckets, -weight[used_buckets]))  # heaviest first; ties by bucket: a fixed layout
    del weight
    row_of = np.zeros(bucket, np.int32)
    row_of[used_buckets[order]] = np.arange(order.shape[0], dtype=np.int32)
    renumber(found, row_of)
    return SubwordRows(starts, found, used_buckets[order])
