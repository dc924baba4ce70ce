"""WordTable: the arrays of a words -> (id, count) hash table that the numba kernels fill, grown here.

Ids are provisional: given in order of first occurrence, one per distinct word while it lives. A
word dropped by word2vec.c's ReduceVocab pruning keeps its id as dead (count -1); if it comes back
it starts again under a new id.
"""

from typing import List, Sequence

import numpy as np

from ..models import tokens as kernels

FOLD_NONE = np.arange(256, dtype=np.uint8)  # bytes as they are
FOLD_LOWER = FOLD_NONE.copy()
FOLD_LOWER[ord("A"): ord("Z") + 1] += 32  # ASCII lowercase (other lines are lowercased in Python)


def _grown(a: np.ndarray, size: int, used: int) -> np.ndarray:
    out = np.zeros(size, a.dtype)
    out[:used] = a[:used]
    return out


def compose(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """then[first] for id maps (int32), keeping -1 (dropped) as -1."""
    return np.where(first >= 0, then[np.maximum(first, 0)], -1).astype(np.int32)


class WordTable:
    """A word table owned by Python and filled by the kernels (kernels.TABLE, in ``arrays``)."""

    def __init__(self, words: int = 1 << 12, pool: int = 1 << 16):
        self.slots = np.full(4 * words, -1, np.int64)
        self.records = np.zeros((words, kernels.REC_SIZE), np.int64)
        self.pool = np.zeros(pool, np.uint8)
        self.meta = np.zeros(kernels.META_SIZE, np.int64)
        self.meta[kernels.META_MIN_REDUCE] = 1
        self._pack()

    def _pack(self) -> None:
        self.arrays = (self.slots, self.records, self.pool, self.meta)

    @property
    def counts(self) -> np.ndarray:
        """Each id's count (-1: dropped), a view."""
        return self.records[: self.n_ids, kernels.REC_COUNT]

    @property
    def n_ids(self) -> int:
        """Provisional ids given so far (dead ones included)."""
        return int(self.meta[kernels.META_WORDS])

    def __len__(self) -> int:
        """Words alive."""
        return int(self.meta[kernels.META_LIVE])

    @property
    def n_pruned(self) -> int:
        return int(self.meta[kernels.META_PRUNED])

    def grow(self, word_bytes: int) -> None:
        """Make room for one more word of word_bytes bytes (the kernels returned GROW)."""
        n = self.n_ids
        if n >= self.records.shape[0]:
            records = np.zeros((2 * self.records.shape[0], kernels.REC_SIZE), np.int64)
            records[:n] = self.records[:n]
            self.records = records
        used = int(self.meta[kernels.META_POOL])
        if used + word_bytes > self.pool.shape[0]:
            self.pool = _grown(self.pool, max(2 * self.pool.shape[0], used + word_bytes), used)
        if 2 * (len(self) + 1) > self.slots.shape[0]:
            self.slots = np.full(2 * self.slots.shape[0], -1, np.int64)
            self._pack()
            kernels.rebuild_slots(self.arrays)
        self._pack()

    def scan_tokens(self, tokens: Sequence[str], out, max_vocab: int) -> None:
        """Count (max_vocab > 0: with pruning; < 0: look up only) tokens into out (kernels.OUT)."""
        encoded = [t.encode("utf-8", "surrogatepass") for t in tokens]
        buf = np.frombuffer(b"".join(encoded), np.uint8)
        ends = np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)))
        first = 0
        while True:
            status, first = kernels.scan_tokens(buf, ends, first, self.arrays, out, max_vocab)
            if status == kernels.DONE:
                return
            self.grow(int(ends[first] - (ends[first - 1] if first else 0)))

    def add(self, tokens: Sequence[str], max_vocab: int = 0) -> np.ndarray:
        """Count tokens (max_vocab < 0: look them up); returns their provisional ids (int32, -1 unknown)."""
        n = len(tokens)
        out = (np.zeros(n, np.int32), np.zeros(n // kernels.MAX_SENTENCE_TOKENS + 2, np.int32),
               np.zeros(kernels.STATE_SIZE, np.int64))
        self.scan_tokens(tokens, out, max_vocab)
        return out[0]

    def merge(self, other: "WordTable") -> np.ndarray:
        """Add other's live words and counts; returns int32[other.n_ids]: other's id -> ours (-1 dead)."""
        to_ours = np.full(other.n_ids, -1, np.int32)
        first = 0
        while True:
            status, first = kernels.merge_table(self.arrays, other.arrays, to_ours, first)
            if status == kernels.DONE:
                return to_ours
            self.grow(int(other.records[first, kernels.REC_LEN]))

    def reduce(self, max_vocab) -> None:
        """Prune (ReduceVocab) until at most max_vocab words live (None: no limit)."""
        if max_vocab and len(self) > max_vocab:
            kernels.reduce_vocab(self.arrays, max_vocab)

    def live(self):
        """(ids of the live words in order of first occurrence, int64; their counts)."""
        counts = self.counts
        ids = np.flatnonzero(counts >= 0)
        return ids, counts[ids]

    def words(self, ids) -> List[str]:
        pool = self.pool[: self.meta[kernels.META_POOL]].tobytes()
        starts = self.records[ids, kernels.REC_OFFSET].tolist()
        ends = (self.records[ids, kernels.REC_OFFSET] + self.records[ids, kernels.REC_LEN]).tolist()
        return [pool[a:b].decode("utf-8", "surrogatepass") for a, b in zip(starts, ends)]
