"""Streaming corpus input: files, directories, .gz/.bz2 and stdin -> token lists -> int32 id arrays.

A line is a sentence; a line longer than MAX_SENTENCE_TOKENS is split into several sentences,
never cut. Invalid UTF-8 is decoded with replacement characters and counted.
"""

import bz2
import gzip
import os
import sys
from dataclasses import dataclass, field
from typing import Iterable, Iterator, List, Sequence

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


def check_text(path: str, head: bytes) -> None:
    """Refuse a file that is not text before reading it: NUL bytes in its head, or a UTF-16/32 mark."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"corpus file {path!r} is UTF-16 or UTF-32 text; convert it to UTF-8 first "
                         f"(iconv -f UTF-16 -t UTF-8).")
    if b"\0" in head:
        raise InputError(f"corpus file {path!r} is not text (it has NUL bytes); give plain, .gz or .bz2 text files.")


def check_utf8(path: str, n_lines: int, n_bad: int) -> None:
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


def stdin_binary():
    return sys.stdin.buffer


def open_binary(path: str):
    if path == STDIN:
        return stdin_binary()
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
    n_long_tokens: int = 0  # over --max-word-length bytes: skipped, as unknown words
    n_pruned: int = 0  # words dropped while counting to stay within --max-vocab-size
    n_readers: int = 1  # reading workers (spans); once words are pruned, the vocabulary depends on them
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
            f = open_binary(path)
            try:
                check_text(path, f.peek(1 << 16)[: 1 << 16] if hasattr(f, "peek") else b"")
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
                        check_utf8(path, n_lines, n_bad)
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
                    check_utf8(path, n_lines, n_bad)
            except (OSError, EOFError, ValueError) as e:
                raise InputError(f"cannot read {path!r}: {e}; check that the file is complete.") from e
            finally:
                if f is not sys.stdin.buffer:
                    f.close()

    def warnings(self) -> List[str]:
        out = long_token_warnings(self.stats)
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
        return long_token_warnings(self.stats)


def long_token_warnings(stats: CorpusStats) -> List[str]:
    if not stats.n_long_tokens:
        return []
    return [f"{stats.n_long_tokens} token(s) longer than --max-word-length bytes were skipped as unknown words "
            "(URLs, encoded data); raise --max-word-length, or 0 for no limit, to keep them."]


def open_corpus(source, lowercase: bool = False):
    """A CorpusReader for a path (file, directory, .gz, .bz2, "-"), else a SentenceReader for an
    iterable of token lists."""
    if isinstance(source, (str, os.PathLike)):
        return CorpusReader(os.fspath(source), lowercase=lowercase)
    return SentenceReader(source, lowercase=lowercase)


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
    "MAX_SENTENCE_TOKENS",
    "batched",
    "check_output_path",
    "resolve_paths",
]
