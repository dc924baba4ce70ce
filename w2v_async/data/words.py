"""WordTable: the arrays of a words -> (id, count) hash table that the numba kernels fill, grown here.

Ids are provisional: given in order of first occurrence, one per distinct word while it lives. A
word dropped by word2vec.c's ReduceVocab pruning keeps its id as dead (count -1) until the table is
compacted (compact: the live words renumbered in order, a map from the old ids returned); if it
comes back it starts again under a new id.
"""

from typing import List, Optional, Sequence

import numpy as np

from ..models import tokens as kernels

NO_LIMIT = 1 << 62  # a token length no token reaches
COMPACT_MIN = 1 << 16  # pruned records worth compacting away
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
        self.n_long = 0  # tokens add() skipped for their length
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

    def scan_tokens(self, tokens: Sequence[str], out, max_vocab: int, max_len: int = NO_LIMIT) -> None:
        """Count (max_vocab > 0: with pruning; < 0: look up only) tokens into out (kernels.OUT);
        one of more than max_len UTF-8 bytes is skipped (id -1, counted in out's state)."""
        encoded = [t.encode("utf-8", "surrogatepass") for t in tokens]
        buf = np.frombuffer(b"".join(encoded), np.uint8)
        ends = np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)))
        first = 0
        while True:
            status, first = kernels.scan_tokens(buf, ends, first, self.arrays, out, max_vocab, max_len)
            if status == kernels.DONE:
                return
            self.grow(int(ends[first] - (ends[first - 1] if first else 0)))

    def add(self, tokens: Sequence[str], max_vocab: int = 0, max_len: int = NO_LIMIT) -> np.ndarray:
        """Count tokens (max_vocab < 0: look them up); returns their provisional ids (int32, -1
        unknown or over max_len bytes; the latter are added to self.n_long)."""
        n = len(tokens)
        out = (np.zeros(n, np.int32), np.zeros(n // kernels.MAX_SENTENCE_TOKENS + 2, np.int32),
               np.zeros(kernels.STATE_SIZE, np.int64))
        self.scan_tokens(tokens, out, max_vocab, max_len)
        self.n_long += int(out[2][kernels.ST_LONG])
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

    def compact(self) -> Optional[np.ndarray]:
        """Once pruned words outnumber the live ones, drop their records and renumber the live
        words (kernels.compact); returns int32[ids before]: old id -> new id (-1 pruned), or None
        when nothing changed. So a table holds about 2 x max_vocab records, however many distinct
        words the corpus has; the ids it gave out before are renumbered through the map.

        At 10B tokens of web text the raw vocabulary runs to 30M-100M types, most of them seen
        once. Without compaction every one kept a 32-byte record (3.2 GB at 100M) and every prune
        scanned them all. With it, T reading threads sharing --max-vocab-size M (default 30M) hold
        about M / T live words each: 2 x 32 bytes of records, 16-32 bytes of slots and the word's
        bytes (at most --max-word-length) per word, 3-6 GB at M = 30M whatever T is, and the maps
        go to disk beside the encoded corpus (4 bytes per record dropped, against its 4 per token).
        """
        if self.n_ids - len(self) <= max(len(self), COMPACT_MIN):
            return None
        to_new = np.empty(self.n_ids, np.int32)
        kernels.compact(self.arrays, to_new)
        return to_new

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
