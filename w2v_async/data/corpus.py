"""Streaming corpus input: files, directories, .gz/.bz2 and stdin -> token lists -> int32 id arrays.

A line is a sentence; a line longer than MAX_SENTENCE_TOKENS is split into several sentences,
never cut. Invalid UTF-8 is decoded with replacement characters and counted.
"""

import bz2
import contextlib
import gzip
import os
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Iterable, Iterator, List, Optional, Sequence

import numpy as np

from ..errors import ConfigError, InputError

MAX_SENTENCE_TOKENS = 10_000
BATCH_TOKENS = 1 << 20  # tokens looked up per vectorised batch while encoding
STDIN = "-"


def resolve_paths(source: str) -> List[str]:
    """Expand a corpus argument into the list of files to read, in a stable order.

    ``-`` is standard input; a directory contributes every non-hidden regular file below it.
    """
    if source == STDIN:
        return [STDIN]
    if not os.path.exists(source):
        raise ConfigError(f"corpus {source!r} does not exist; check the path, or pass - to read stdin.")
    if os.path.isfile(source):
        return [source]
    paths = []
    for root, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        paths.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
    paths = [p for p in paths if os.path.isfile(p)]
    if not paths:
        raise InputError(f"directory {source!r} has no text files; put .txt, .gz or .bz2 files in it.")
    return paths


UTF8_CHECK_LINES = 1000  # a file whose first lines are mostly not UTF-8 is refused, not trained on


def _check_text(path: str, f) -> None:
    """Refuse a file that is not text before reading it: NUL bytes at its start, or a UTF-16/32 mark."""
    head = f.peek(1 << 16)[: 1 << 16] if hasattr(f, "peek") else b""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"corpus file {path!r} is UTF-16 or UTF-32 text; convert it to UTF-8 first "
                         f"(iconv -f UTF-16 -t UTF-8).")
    if b"\0" in head:
        raise InputError(f"corpus file {path!r} is not text (it has NUL bytes); give plain, .gz or .bz2 text files.")


def _check_utf8(path: str, n_lines: int, n_bad: int) -> None:
    if n_bad * 2 > n_lines:
        raise InputError(f"corpus file {path!r} is not UTF-8 ({n_bad} of its first {n_lines} lines are not); "
                         "convert it first, e.g. iconv -f LATIN1 -t UTF-8.")


MAX_LINE_BYTES = 1 << 26  # a longer line is read in pieces cut at whitespace, so memory stays bounded


def _bounded_lines(f, path: str) -> Iterator[bytes]:
    """The lines of f; a line longer than MAX_LINE_BYTES comes in pieces cut after a space or tab.

    A piece with no whitespace at all (one 'word' of MAX_LINE_BYTES) means the file is not text.
    """
    carry = b""
    while True:
        piece = f.readline(MAX_LINE_BYTES)
        whole = piece.endswith(b"\n") or len(piece) < MAX_LINE_BYTES  # the line ends here, or the file
        raw, carry = carry + piece, b""
        if not raw:
            return
        if whole:
            yield raw
            continue
        cut = max(raw.rfind(b" "), raw.rfind(b"\t"))
        if cut < 0:
            raise InputError(f"corpus file {path!r} has a 'word' of over {MAX_LINE_BYTES >> 20} MiB with no space "
                             "in it; is it a text file?")
        yield raw[: cut + 1]
        carry = raw[cut + 1 :]


def _open_binary(path: str):
    if path == STDIN:
        return sys.stdin.buffer
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.endswith(".bz2"):
        return bz2.open(path, "rb")
    return open(path, "rb", buffering=1 << 20)


@dataclass
class CorpusStats:
    """What reading a corpus saw; filled in while streaming."""

    n_lines: int = 0
    n_tokens: int = 0
    n_bad_utf8_lines: int = 0
    n_split_lines: int = 0
    paths: List[str] = field(default_factory=list)


class CorpusReader:
    """Iterate over a corpus as lists of tokens, one list per sentence (at most 10,000 tokens).

    Parameters
    ----------
    source : str
        A file (plain, .gz, .bz2), a directory of such files, or ``-`` for stdin.
    lowercase : bool
        Lowercase every line before splitting.
    """

    def __init__(self, source: str, lowercase: bool = False):
        self.source = source
        self.lowercase = lowercase
        self.paths = resolve_paths(source)
        self.stats = CorpusStats(paths=list(self.paths))

    def __iter__(self) -> Iterator[List[str]]:
        stats = self.stats
        for path in self.paths:
            f = _open_binary(path)
            try:
                _check_text(path, f)
                n_lines = n_bad = 0
                for raw in _bounded_lines(f, path):
                    n_lines += 1
                    try:
                        line = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        line = raw.decode("utf-8", errors="replace")
                        n_bad += 1
                        stats.n_bad_utf8_lines += 1
                    if n_lines == 1:
                        line = line.lstrip("\ufeff")  # a UTF-8 byte-order mark is not part of the first word
                    if n_lines == UTF8_CHECK_LINES:
                        _check_utf8(path, n_lines, n_bad)
                    if self.lowercase:
                        line = line.lower()
                    tokens = line.split()
                    stats.n_lines += 1
                    if not tokens:
                        continue
                    stats.n_tokens += len(tokens)
                    if len(tokens) <= MAX_SENTENCE_TOKENS:
                        yield tokens
                    else:
                        stats.n_split_lines += 1
                        for i in range(0, len(tokens), MAX_SENTENCE_TOKENS):
                            yield tokens[i : i + MAX_SENTENCE_TOKENS]
                if n_lines < UTF8_CHECK_LINES:
                    _check_utf8(path, n_lines, n_bad)
            except (OSError, EOFError, ValueError) as e:
                raise InputError(f"cannot read {path!r}: {e}; check that the file is complete.") from e
            finally:
                if f is not sys.stdin.buffer:
                    f.close()

    def warnings(self) -> List[str]:
        out = []
        if self.stats.n_bad_utf8_lines:
            out.append(
                f"{self.stats.n_bad_utf8_lines} line(s) had invalid UTF-8; "
                "the bad bytes were replaced with U+FFFD."
            )
        return out


class SentenceReader:
    """Iterate over sentences given as token lists (gensim's ``sentences``), as CorpusReader does.

    sentences: any iterable of sequences of str, read once; sentences over 10,000 tokens are
    split. A bare string where a sentence should be is refused (it would be split into letters).
    """

    source = "<sentences>"

    def __init__(self, sentences: Iterable[Sequence[str]], lowercase: bool = False):
        self.sentences = sentences
        self.lowercase = lowercase
        self.stats = CorpusStats()

    def __iter__(self) -> Iterator[List[str]]:
        stats = self.stats
        for sentence in self.sentences:
            if isinstance(sentence, (str, bytes)):
                raise InputError("sentences must be lists of tokens, got a string; split it, e.g. "
                                 "[line.split() for line in lines].")
            tokens = [t.lower() for t in sentence] if self.lowercase else list(sentence)
            stats.n_lines += 1
            if not tokens:
                continue
            if not all(isinstance(t, str) for t in tokens):
                raise InputError(f"sentence {stats.n_lines} has a token that is not a str; give lists of str.")
            stats.n_tokens += len(tokens)
            if len(tokens) > MAX_SENTENCE_TOKENS:
                stats.n_split_lines += 1
            for i in range(0, len(tokens), MAX_SENTENCE_TOKENS):
                yield tokens[i : i + MAX_SENTENCE_TOKENS]

    def warnings(self) -> List[str]:
        return []


def open_corpus(source, lowercase: bool = False):
    """A CorpusReader for a path (file, directory, .gz, .bz2, "-"), else a SentenceReader for an
    iterable of token lists."""
    if isinstance(source, (str, os.PathLike)):
        return CorpusReader(os.fspath(source), lowercase=lowercase)
    return SentenceReader(source, lowercase=lowercase)


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

    With a directory, the provisional ids are appended to a file there as they come, and build()
    writes the final ids to a file that the EncodedCorpus maps (copy-on-write, never written):
    memory stays bounded by one batch and the vocabulary however long the corpus. Both files are
    unnamed from the start (tempfile.TemporaryFile), so nothing is left behind, even after kill -9.
    Without a directory, everything stays in memory.
    """

    def __init__(self, directory: Optional[str] = None):
        self._chunks: List[np.ndarray] = []
        self._lengths: List[np.ndarray] = []
        self._file = None
        self._directory = directory
        if directory is not None:
            with self._disk_errors():
                self._file = tempfile.TemporaryFile(dir=directory, prefix=".w2v-ids-")
            self._n_ids = 0

    @contextlib.contextmanager
    def _disk_errors(self):
        try:
            yield
        except OSError as e:
            raise InputError(f"cannot write the encoded corpus in {self._directory!r}: {e.strerror or e}; free "
                             "some space there or write the output elsewhere (it is built beside it).") from e

    def add(self, ids: np.ndarray, lengths: np.ndarray) -> None:
        if self._file is not None:
            with self._disk_errors():
                _append(self._file, np.ascontiguousarray(ids, np.int32))
            self._n_ids += ids.shape[0]
        else:
            self._chunks.append(ids)
        self._lengths.append(lengths)

    def build(self, remap: np.ndarray) -> EncodedCorpus:
        """Map provisional ids through ``remap`` (int32, -1 drops the token) and pack."""
        if not self._lengths:
            return EncodedCorpus(np.zeros(0, np.int32), np.zeros(1, np.int64))
        lengths = np.concatenate(self._lengths)
        self._lengths = []
        if self._file is None:
            raw = np.concatenate(self._chunks)
            self._chunks = []
            ids, kept_lengths = _remap(raw, lengths, remap)
            return EncodedCorpus(ids, _starts(kept_lengths))
        try:
            with self._disk_errors():
                return self._build_on_disk(lengths, remap)
        finally:
            self._file.close()

    def _build_on_disk(self, lengths: np.ndarray, remap: np.ndarray) -> EncodedCorpus:
        """Remap the provisional ids file piece by piece into a file of final ids, then map it."""
        self._file.flush()
        raw = np.memmap(self._file, np.int32, "r", shape=(self._n_ids,)) if self._n_ids else np.zeros(0, np.int32)
        with tempfile.TemporaryFile(dir=self._directory, prefix=".w2v-ids-") as out:
            kept = []
            sentence_ends = np.cumsum(lengths)
            first = 0
            while first < lengths.shape[0]:  # sentence-aligned pieces of about BUILD_TOKENS tokens
                start = int(sentence_ends[first - 1]) if first else 0
                last = max(first + 1, int(np.searchsorted(sentence_ends, start + BUILD_TOKENS, "right")))
                ids, kept_lengths = _remap(np.asarray(raw[start : sentence_ends[last - 1]]), lengths[first:last],
                                           remap)
                _append(out, ids)
                kept.append(kept_lengths)
                first = last
            out.flush()
            kept_lengths = np.concatenate(kept)
            n = int(kept_lengths.sum())
            ids = np.memmap(out, np.int32, "c", shape=(n,)) if n else np.zeros(0, np.int32)
        del raw
        return EncodedCorpus(ids, _starts(kept_lengths))


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


def batched(sentences, batch_tokens: int = BATCH_TOKENS):
    """Group sentences into (flat token list, int64 lengths) batches of about batch_tokens."""
    tokens: List[str] = []
    lengths: List[int] = []
    for sent in sentences:
        tokens.extend(sent)
        lengths.append(len(sent))
        if len(tokens) >= batch_tokens:
            yield tokens, np.asarray(lengths, np.int64)
            tokens, lengths = [], []
    if tokens:
        yield tokens, np.asarray(lengths, np.int64)


def check_output_path(path: str) -> None:
    """Fail before any work if ``path`` cannot be written (missing directory, a directory)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ConfigError(
            f"output directory {os.path.dirname(path) or '.'!r} does not exist; create it first "
            f"(mkdir -p {os.path.dirname(path)})."
        )
    if os.path.isdir(path):
        raise ConfigError(f"output path {path!r} is a directory; give a file name such as {path}/vectors.bin.")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"output directory {parent!r} is not writable; choose another -o path.")


__all__ = [
    "CorpusReader",
    "CorpusStats",
    "EncodedCorpus",
    "IdStreamBuilder",
    "MAX_SENTENCE_TOKENS",
    "batched",
    "check_output_path",
    "resolve_paths",
]
