"""The encoded corpus: word ids in one contiguous array (a mapped file for a job) and sentence starts,
built from the readers' provisional ids by IdStreamBuilder."""

import contextlib
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

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

    def deal(self, n: int, block_words: int = 10_000) -> List["Shard"]:
        """Deal blocks of about block_words consecutive words to n threads in turn: each thread's
        Shard, whose sentence numbers (in corpus order) are made a piece at a time.

        Dealing blocks round-robin (as gensim's job queue does) keeps every thread in the same
        region of the corpus, so the learning-rate schedule sees the corpus in order, not in n
        slices. A corpus of fewer than 4 n blocks gets smaller blocks, so that every thread has work.

        Memory: one pass over the sentence starts in pieces of SHARD_PIECE, keeping each block's
        first sentence only: O(words / block_words). At 10 billion tokens (about 500M sentences)
        that is 1M blocks, about 32 MB for all threads, where the threads' sentence numbers as
        arrays (shards(); int64, as the kernels' signature has them, models/common.CORPUS) would be
        4 GB, and up to 12 GB while the pieces were concatenated and copied. The threads engine
        asks each Shard for threads.PIECE_SENTENCES at a time instead.
        """
        block_words = max(1, min(block_words, self.n_words // (4 * n)))
        firsts = [np.zeros(0, np.int64)]  # each block's first sentence; blocks skip numbers no sentence starts in
        last_block = -1
        for first in range(0, self.n_sentences, SHARD_PIECE):  # in pieces: no corpus-sized temporaries
            block = np.asarray(self.sent_starts[first: min(first + SHARD_PIECE, self.n_sentences)]) // block_words
            new = np.empty(block.shape[0], bool)
            new[0] = block[0] != last_block
            np.greater(block[1:], block[:-1], out=new[1:])
            firsts.append(np.flatnonzero(new).astype(np.int64, copy=False) + first)
            last_block = int(block[-1])
        bounds = np.append(np.concatenate(firsts), np.int64(self.n_sentences))
        return [Shard(bounds[:-1][t::n], bounds[1:][t::n]) for t in range(n)]

    def shards(self, n: int, block_words: int = 10_000) -> List[np.ndarray]:
        """deal(n, block_words)'s shards as int64 arrays of sentence numbers: O(sentences) in all,
        for tests and small corpora; an engine takes them a piece at a time (Shard.sentences)."""
        return [sh.sentences() for sh in self.deal(n, block_words)]


SHARD_PIECE = 1 << 22  # sentences dealt per piece


class Shard:
    """One thread's sentences: whole blocks of consecutive sentences, [starts[k], ends[k]) for each
    of its blocks k, in corpus order. Position p (0 <= p < len) is its p-th sentence."""

    def __init__(self, starts: np.ndarray, ends: np.ndarray):
        self._starts, self._ends = np.ascontiguousarray(starts, np.int64), np.ascontiguousarray(ends, np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(self._ends - self._starts)]).astype(np.int64)
        self.shape = (int(self._offsets[-1]),)

    def __len__(self) -> int:
        return self.shape[0]

    def sentences(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        """The sentence numbers at positions start..stop (int64, contiguous: a kernel's input)."""
        stop = max(start, len(self) if stop is None else min(stop, len(self)))
        out = np.empty(stop - start, np.int64)  # and nothing else of its size: block after block
        if stop == start:
            return out
        offsets = self._offsets
        for k in range(int(np.searchsorted(offsets, start, "right")) - 1, int(np.searchsorted(offsets, stop))):
            a, b = max(start, int(offsets[k])), min(stop, int(offsets[k + 1]))
            out[a - start: b - start] = np.arange(a, b, dtype=np.int64) + (int(self._starts[k]) - int(offsets[k]))
        return out

    def searchsorted(self, v, side: str = "left", sorter=None):
        """How many of its sentences are below sentence v (side "right": at most v), as
        np.searchsorted(shard_array, v) on shards()'s array; np.searchsorted(shard, v) calls it."""
        v = np.asarray(v, np.int64) + (side == "right")
        if not self._starts.shape[0]:
            return np.zeros_like(v)
        k = np.maximum(np.searchsorted(self._starts, v, "right") - 1, 0)
        return np.maximum(self._offsets[k] + np.minimum(v - self._starts[k], self._ends[k] - self._starts[k]), 0)


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
        self.maps = builder.stream(np.int32)  # the renumberings, end to end (on disk with a directory)
        self.renumbered: List[Tuple[int, int, int]] = []  # (tokens before it, its start in maps, its length)
        self.streams = (self.ids, self.lengths, self.maps)

    def add(self, ids: np.ndarray, lengths: np.ndarray) -> None:
        with self._builder._disk_errors():
            self.ids.append(ids)
            self.lengths.append(lengths)

    def renumber(self, to_new: np.ndarray) -> None:
        """The reader's table renumbered its words (WordTable.compact): the ids added so far are
        in the old numbering, to_new (int32, -1 dropped) maps it to the new one. Kept with the ids
        (4 bytes per word the table held), applied when the part is built."""
        with self._builder._disk_errors():
            self.renumbered.append((self.ids.n, self.maps.n, int(to_new.shape[0])))
            self.maps.append(to_new)

    def _numberings(self, remap: np.ndarray):
        """(first token, end token, the map from their ids to final ids) of each stretch of tokens
        that shares one numbering, in order: remap composed with every later renumbering, built
        from the last one back, a map at a time in memory (the rest mapped from disk)."""
        if not self.renumbered:
            return [(0, self.ids.n, remap)]
        maps = self.maps.array()
        out = self._builder.stream(np.int32)
        try:
            final, placed = remap, []
            for tokens, start, n in reversed(self.renumbered):
                step = np.asarray(maps[start: start + n])
                final = np.append(np.where(step >= 0, final[np.maximum(step, 0)], -1), np.int32(-1)).astype(np.int32)
                placed.append((tokens, out.n, final.shape[0]))  # -1 (unknown) indexes the last slot
                out.append(final)
            composed = out.array()
        finally:
            out.close()  # a mapping keeps the unnamed file's pages
        bounds = [0] + [tokens for tokens, _, _ in self.renumbered] + [self.ids.n]
        finals = [composed[start: start + n] for _, start, n in reversed(placed)] + [remap]
        return [(bounds[k], bounds[k + 1], finals[k]) for k in range(len(finals))]

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
        numberings = self._numberings(remap)
        first = token = 0
        while first < lengths.shape[0]:
            window = np.asarray(lengths[first: first + BUILD_TOKENS], np.int64)  # sentences have >= 1 token
            ends = np.cumsum(window)
            last = max(1, int(np.searchsorted(ends, BUILD_TOKENS, "right")))
            n_tokens = int(ends[last - 1])
            piece = np.asarray(raw[token: token + n_tokens])
            if len(numberings) == 1:
                yield _remap(piece, window[:last], remap)
            else:  # each stretch of the piece through its own numbering's map
                final = np.concatenate([np.asarray(to_final)[piece[max(a, token) - token: min(b, token + n_tokens) - token]]
                                        for a, b, to_final in numberings if a < token + n_tokens and b > token])
                yield _remap(final, window[:last], None)
            first += last
            token += n_tokens


BUILD_TOKENS = 1 << 22  # provisional ids remapped per piece (16 MiB, and about 5 times that while remapping)


def _append(f, array: np.ndarray) -> None:
    array.tofile(f)


def _remap(raw: np.ndarray, lengths: np.ndarray, remap: Optional[np.ndarray]):
    """(final ids int32 with dropped tokens removed, each sentence's kept length, empty ones out)."""
    final = raw if remap is None else remap[raw] if raw.size else raw.astype(np.int32)  # None: raw is final
    keep = final >= 0
    sent_of_token = np.repeat(np.arange(lengths.shape[0], dtype=np.int64), lengths)
    kept_lengths = np.bincount(sent_of_token[keep], minlength=lengths.shape[0])
    return np.ascontiguousarray(final[keep], dtype=np.int32), kept_lengths[kept_lengths > 0]
