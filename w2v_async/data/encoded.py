"""The encoded corpus: word ids in one contiguous array (a mapped file for a job) and sentence starts,
built from the readers' provisional ids by IdStreamBuilder."""

import contextlib
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from ..errors import InputError
from ..io import fingerprint


@dataclass
class EncodedCorpus:
    """The corpus as contiguous ids, out-of-vocabulary words removed.

    ids : int32[n_words]; sentence s is ids[sent_starts[s]:sent_starts[s + 1]].
    sent_starts : int64[n_sentences + 1], starts at 0, strictly increasing.
    """

    ids: np.ndarray
    sent_starts: np.ndarray
    _fingerprint: Optional[str] = field(default=None, repr=False, compare=False)

    def fingerprint(self) -> str:
        """SHA-256 of ids and sentence starts (computed once): what checkpoints and the cache check."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.ids, self.sent_starts)
        return self._fingerprint

    @property
    def n_words(self) -> int:
        return int(self.ids.shape[0])

    @property
    def n_sentences(self) -> int:
        return int(self.sent_starts.shape[0] - 1)

    def longest_sentence(self) -> int:
        """The most words in one sentence (1 for an empty corpus), read in pieces."""
        longest = 1
        for first in range(0, self.n_sentences, SHARD_PIECE):
            piece = np.asarray(self.sent_starts[first: first + SHARD_PIECE + 1])
            longest = max(longest, int(np.diff(piece).max(initial=1)))
        return longest

    def shards(self, n: int, block_words: int = 10_000) -> List[np.ndarray]:
        """Deal blocks of about block_words consecutive words to n threads in turn.

        Returns, for each thread, the int64 sentence numbers it trains, in corpus order. Dealing
        blocks round-robin (as gensim's job queue does) keeps every thread in the same region of
        the corpus, so the learning-rate schedule sees the corpus in order, not in n slices. A
        corpus of fewer than 4 n blocks gets smaller blocks, so that every thread has work.
        """
        block_words = max(1, min(block_words, self.n_words // (4 * n)))
        dealt: List[List[np.ndarray]] = [[] for _ in range(n)]
        last_block, number = -1, -1  # blocks are renumbered consecutively, skipping empty ones
        for first in range(0, self.n_sentences, SHARD_PIECE):  # in pieces: no corpus-sized temporaries
            block = np.asarray(self.sent_starts[first: min(first + SHARD_PIECE, self.n_sentences)]) // block_words
            new = np.empty(block.shape[0], bool)
            new[0] = block[0] != last_block
            np.greater(block[1:], block[:-1], out=new[1:])
            numbers = number + np.cumsum(new)
            last_block, number = int(block[-1]), int(numbers[-1])
            for t in range(n):
                dealt[t].append(np.flatnonzero(numbers % n == t) + first)
        return [np.concatenate(d).astype(np.int64) if d else np.zeros(0, np.int64) for d in dealt]


SHARD_PIECE = 1 << 22  # sentences dealt per piece


class IdStreamBuilder:
    """Accumulates per-sentence id arrays (provisional ids, -1 = drop) into an EncodedCorpus.

    The ids come in parts (one per reading worker, in corpus order), each with its own provisional
    ids. With a directory, each part's ids and sentence lengths are appended to files there as
    they come, and build() writes the final ids and sentence starts to files that the EncodedCorpus
    maps (copy-on-write, never written): memory stays bounded by one piece and the vocabulary
    however long the corpus. The files are unnamed from the start (tempfile.TemporaryFile), so
    nothing is left behind, even after kill -9. Without a directory, everything stays in memory.
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

    def stream(self, dtype) -> "_Stream":
        with self._disk_errors():
            return _Stream(dtype, self._directory)

    def part(self, k: int) -> "_Part":
        """The k-th part (created with the ones before it)."""
        while len(self._parts) <= k:
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
        try:
            with self._disk_errors():
                if len(self._parts) > 1:
                    return self._build_parallel(remaps)
                ids, starts = self.stream(np.int32), self.stream(np.int64)
                starts.append(np.zeros(1, np.int64))
                offset = 0
                for part, remap in zip(self._parts, remaps):
                    for piece_ids, kept_lengths in part.remapped(remap):
                        ids.append(piece_ids)
                        starts.append(offset + np.cumsum(kept_lengths))
                        offset += int(piece_ids.shape[0])
                try:
                    return EncodedCorpus(ids.array(), starts.array())
                finally:
                    ids.close()
                    starts.close()  # a mapping keeps its unnamed file's pages
        finally:
            for stream in (s for part in self._parts for s in part.streams):
                stream.close()

    def _build_parallel(self, remaps) -> EncodedCorpus:
        """Several parts, a thread each, in two passes: how many ids and sentences each part keeps,
        then each part remapped straight into its place in the output (remapping twice costs
        less than doing it one part after another once there are a few cores)."""
        parts = self._parts
        with ThreadPoolExecutor(len(parts)) as pool:
            sizes = list(pool.map(lambda k: parts[k].kept_sizes(remaps[k]), range(len(parts))))
            id_offsets = np.concatenate([[0], np.cumsum([n for n, _ in sizes])]).astype(np.int64)
            sent_offsets = np.concatenate([[0], np.cumsum([m for _, m in sizes])]).astype(np.int64)
            ids = self._output(np.int32, int(id_offsets[-1]))
            starts = self._output(np.int64, int(sent_offsets[-1]) + 1)
            starts[0] = 0

            def fill(k: int) -> None:
                position, sentence = int(id_offsets[k]), int(sent_offsets[k]) + 1
                for piece_ids, kept_lengths in parts[k].remapped(remaps[k]):
                    ids[position: position + piece_ids.shape[0]] = piece_ids
                    starts[sentence: sentence + kept_lengths.shape[0]] = position + np.cumsum(kept_lengths)
                    position += piece_ids.shape[0]
                    sentence += kept_lengths.shape[0]

            list(pool.map(fill, range(len(parts))))
        return EncodedCorpus(ids, starts)

    def _output(self, dtype, n: int) -> np.ndarray:
        """n elements to fill: a mapping of an unnamed file in the directory, or memory."""
        if self._directory is None or n == 0:
            return np.zeros(n, dtype)
        with tempfile.TemporaryFile(dir=self._directory, prefix=".w2v-ids-") as f:
            # the blocks are reserved first: a full disk is an OSError here, not a SIGBUS while writing
            os.posix_fallocate(f.fileno(), 0, n * np.dtype(dtype).itemsize)
            return np.memmap(f, dtype, "w+", shape=(n,))  # the mapping outlives the file object


class _Stream:
    """An append-only array: in an unnamed file in directory, or in memory (directory None)."""

    def __init__(self, dtype, directory: Optional[str]):
        self.dtype = dtype
        self.n = 0
        self._chunks: List[np.ndarray] = []
        self._file = tempfile.TemporaryFile(dir=directory, prefix=".w2v-ids-") if directory is not None else None

    def append(self, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array, self.dtype)
        if self._file is not None:
            _append(self._file, array)
        else:
            self._chunks.append(array)
        self.n += array.shape[0]

    def array(self) -> np.ndarray:
        """Everything appended: a copy-on-write mapping of the file, or one array."""
        if self._file is None:
            return np.concatenate(self._chunks) if self._chunks else np.zeros(0, self.dtype)
        if not self.n:
            return np.zeros(0, self.dtype)
        self._file.flush()
        return np.memmap(self._file, self.dtype, "c", shape=(self.n,))

    def close(self) -> None:
        self._chunks = []
        if self._file is not None:
            self._file.close()


class _Part:
    """One reader's provisional ids and sentence lengths."""

    def __init__(self, builder: IdStreamBuilder):
        self._builder = builder
        self.ids = builder.stream(np.int32)
        self.lengths = builder.stream(np.int32)
        self.streams = (self.ids, self.lengths)

    def add(self, ids: np.ndarray, lengths: np.ndarray) -> None:
        with self._builder._disk_errors():
            self.ids.append(ids)
            self.lengths.append(lengths)

    def kept_sizes(self, remap: np.ndarray):
        """(ids, sentences) this part keeps after remap."""
        n_ids = n_sentences = 0
        for piece_ids, kept_lengths in self.remapped(remap):
            n_ids += piece_ids.shape[0]
            n_sentences += kept_lengths.shape[0]
        return n_ids, n_sentences

    def remapped(self, remap: np.ndarray):
        """(final ids, kept sentence lengths) in sentence-aligned pieces of about BUILD_TOKENS tokens."""
        raw, lengths = self.ids.array(), self.lengths.array()
        first = token = 0
        while first < lengths.shape[0]:
            window = np.asarray(lengths[first: first + BUILD_TOKENS], np.int64)  # sentences have >= 1 token
            ends = np.cumsum(window)
            last = max(1, int(np.searchsorted(ends, BUILD_TOKENS, "right")))
            n_tokens = int(ends[last - 1])
            yield _remap(np.asarray(raw[token: token + n_tokens]), window[:last], remap)
            first += last
            token += n_tokens


BUILD_TOKENS = 1 << 22  # provisional ids remapped per piece (16 MiB, and about 5 times that while remapping)


def _append(f, array: np.ndarray) -> None:
    array.tofile(f)


def _remap(raw: np.ndarray, lengths: np.ndarray, remap: np.ndarray):
    """(final ids int32 with dropped tokens removed, each sentence's kept length, empty ones out)."""
    final = remap[raw] if raw.size else raw.astype(np.int32)
    keep = final >= 0
    sent_of_token = np.repeat(np.arange(lengths.shape[0], dtype=np.int64), lengths)
    kept_lengths = np.bincount(sent_of_token[keep], minlength=lengths.shape[0])
    return np.ascontiguousarray(final[keep], dtype=np.int32), kept_lengths[kept_lengths > 0]
