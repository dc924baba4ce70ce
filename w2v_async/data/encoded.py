"""The encoded corpus: word ids in one contiguous array (a mapped file for a job) and sentence starts,
built from the readers' provisional ids by IdStreamBuilder."""

import contextlib
import tempfile
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from ..errors import InputError


@dataclass
class EncodedCorpus:
    """The corpus as contiguous ids, out-of-vocabulary words removed.

    ids : int32[n_words]; sentence s is ids[sent_starts[s]:sent_starts[s + 1]].
    sent_starts : int64[n_sentences + 1], starts at 0, strictly increasing.
    """

    ids: np.ndarray
    sent_starts: np.ndarray

    @property
    def n_words(self) -> int:
        return int(self.ids.shape[0])

    @property
    def n_sentences(self) -> int:
        return int(self.sent_starts.shape[0] - 1)

    def shards(self, n: int, block_words: int = 10_000) -> List[np.ndarray]:
        """Deal blocks of about block_words consecutive words to n threads in turn.

        Returns, for each thread, the int64 sentence numbers it trains, in corpus order. Dealing
        blocks round-robin (as gensim's job queue does) keeps every thread in the same region of
        the corpus, so the learning-rate schedule sees the corpus in order, not in n slices. A
        corpus of fewer than 4 n blocks gets smaller blocks, so that every thread has work.
        """
        block_words = max(1, min(block_words, self.n_words // (4 * n)))
        block = (self.sent_starts[:-1] // block_words).astype(np.int64)
        # renumber non-empty blocks consecutively so the deal stays balanced
        block = np.concatenate([[0], np.cumsum(np.diff(block) > 0)]) if block.size else block
        return [np.flatnonzero(block % n == t).astype(np.int64) for t in range(n)]


class IdStreamBuilder:
    """Accumulates per-sentence id arrays (provisional ids, -1 = drop) into an EncodedCorpus.

    The ids come in parts (one per reading worker, in corpus order), each with its own provisional
    ids. With a directory, each part's ids are appended to a file there as they come, and build()
    writes the final ids to a file that the EncodedCorpus maps (copy-on-write, never written):
    memory stays bounded by one batch and the vocabulary however long the corpus. The files are
    unnamed from the start (tempfile.TemporaryFile), so nothing is left behind, even after kill -9.
    Without a directory, everything stays in memory.
    """

    def __init__(self, directory: Optional[str] = None):
        self._directory = directory
        self._parts: List["_Part"] = []

    @contextlib.contextmanager
    def _disk_errors(self):
        try:
            yield
        except OSError as e:
            raise InputError(f"cannot write the encoded corpus in {self._directory!r}: {e.strerror or e}; free "
                             "some space there or write the output elsewhere (it is built beside it).") from e

    def part(self, k: int) -> "_Part":
        """The k-th part (created with the ones before it)."""
        while len(self._parts) <= k:
            with self._disk_errors():
                self._parts.append(_Part(self))
        return self._parts[k]

    def add(self, ids: np.ndarray, lengths: np.ndarray) -> None:
        """Append to part 0."""
        self.part(0).add(ids, lengths)

    def build(self, remaps) -> EncodedCorpus:
        """Map each part's provisional ids through its remap (int32, -1 drops the token; one array
        for all parts, or a list, one per part) and pack."""
        if not isinstance(remaps, (list, tuple)):
            remaps = [remaps] * len(self._parts)
        kept: List[np.ndarray] = []
        out = None
        try:
            with self._disk_errors():
                if self._directory is not None:
                    out = tempfile.TemporaryFile(dir=self._directory, prefix=".w2v-ids-")
                pieces = []
                for part, remap in zip(self._parts, remaps):
                    for ids, kept_lengths in part.remapped(remap):
                        if out is not None:
                            _append(out, ids)
                        else:
                            pieces.append(ids)
                        kept.append(kept_lengths)
                kept_lengths = np.concatenate(kept) if kept else np.zeros(0, np.int64)
                n = int(kept_lengths.sum())
                if out is None:
                    ids = np.concatenate(pieces) if pieces else np.zeros(0, np.int32)
                elif n:
                    out.flush()
                    ids = np.memmap(out, np.int32, "c", shape=(n,))
                else:
                    ids = np.zeros(0, np.int32)
        finally:
            for part in self._parts:
                part.close()
            if out is not None:
                out.close()  # the mapping keeps the unnamed file's pages
        return EncodedCorpus(ids, _starts(kept_lengths))


class _Part:
    """One reader's provisional ids: in a file (the builder has a directory) or in memory."""

    def __init__(self, builder: IdStreamBuilder):
        self._builder = builder
        self._chunks: List[np.ndarray] = []
        self._lengths: List[np.ndarray] = []
        self._n_ids = 0
        self._file = None
        if builder._directory is not None:
            self._file = tempfile.TemporaryFile(dir=builder._directory, prefix=".w2v-ids-")

    def add(self, ids: np.ndarray, lengths: np.ndarray) -> None:
        if self._file is not None:
            with self._builder._disk_errors():
                _append(self._file, np.ascontiguousarray(ids, np.int32))
        else:
            self._chunks.append(ids)
        self._n_ids += ids.shape[0]
        self._lengths.append(lengths)

    def remapped(self, remap: np.ndarray):
        """(final ids, kept sentence lengths) in sentence-aligned pieces of about BUILD_TOKENS tokens."""
        if not self._lengths:
            return
        lengths = np.concatenate(self._lengths)
        self._lengths = []
        if self._file is None:
            raw = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int32)
            self._chunks = []
        else:
            self._file.flush()
            raw = np.memmap(self._file, np.int32, "r", shape=(self._n_ids,)) if self._n_ids else np.zeros(0, np.int32)
        sentence_ends = np.cumsum(lengths)
        first = 0
        while first < lengths.shape[0]:
            start = int(sentence_ends[first - 1]) if first else 0
            last = max(first + 1, int(np.searchsorted(sentence_ends, start + BUILD_TOKENS, "right")))
            yield _remap(np.asarray(raw[start: sentence_ends[last - 1]]), lengths[first:last], remap)
            first = last

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


BUILD_TOKENS = 1 << 24  # provisional ids remapped per piece when the corpus is on disk (64 MiB)


def _append(f, array: np.ndarray) -> None:
    array.tofile(f)


def _remap(raw: np.ndarray, lengths: np.ndarray, remap: np.ndarray):
    """(final ids int32 with dropped tokens removed, each sentence's kept length, empty ones out)."""
    final = remap[raw] if raw.size else raw.astype(np.int32)
    keep = final >= 0
    sent_of_token = np.repeat(np.arange(lengths.shape[0], dtype=np.int64), lengths)
    kept_lengths = np.bincount(sent_of_token[keep], minlength=lengths.shape[0])
    return np.ascontiguousarray(final[keep], dtype=np.int32), kept_lengths[kept_lengths > 0]


def _starts(kept_lengths: np.ndarray) -> np.ndarray:
    sent_starts = np.zeros(kept_lengths.shape[0] + 1, np.int64)
    np.cumsum(kept_lengths, out=sent_starts[1:])
    return sent_starts
