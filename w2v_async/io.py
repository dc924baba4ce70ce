"""Vector and vocabulary files: word2vec text/binary through gensim, written atomically."""

import contextlib
import logging
import os
import tempfile
from typing import List, Optional

import numpy as np

from .errors import ConfigError, InputError

FORMATS = ("auto", "bin", "txt", "glove")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary path beside ``path``; rename it over ``path`` only on success.

    A failure or Ctrl-C inside the block removes the temporary file and leaves ``path`` as it was.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w"):
    """Open a temporary file for writing that replaces ``path`` when the block succeeds."""
    with atomic_path(path) as tmp:
        encoding = None if "b" in mode else "utf-8"
        with open(tmp, mode, encoding=encoding) as f:
            yield f


def resolve_format(path: str, fmt: str = "auto") -> str:
    """'bin', 'txt' or 'glove'; auto picks binary for a .bin suffix and word2vec text otherwise."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}.")
    if fmt != "auto":
        return fmt
    return "bin" if path.endswith(".bin") else "txt"


def _keyed_vectors(words: List[str], vectors: np.ndarray):
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vectors.shape[1], count=0, dtype=np.float32)
    kv.add_vectors(words, vectors)
    return kv


def save_vectors(path: str, words: List[str], vectors: np.ndarray, fmt: str = "auto") -> str:
    """Write vectors in word2vec text or binary format, or GloVe's text format (no header line),
    with gensim's writer, atomically.

    vectors : float32[V, d], row i belongs to words[i]. Returns the format written.
    """
    fmt = resolve_format(path, fmt)
    kv = _keyed_vectors(words, np.ascontiguousarray(vectors, dtype=np.float32))
    logging.getLogger("gensim").setLevel(logging.ERROR)  # words are already in count order
    with atomic_path(path) as tmp:
        kv.save_word2vec_format(tmp, binary=(fmt == "bin"), write_header=(fmt != "glove"))
    return fmt


def _header(path: str):
    """(n, dim, binary) of a word2vec file; binary unless the first vector line parses as text."""
    with open(path, "rb") as f:
        first = f.readline(1 << 16)
        line = f.readline(1 << 24)
    parts = first.split()
    if len(parts) > 2 and _is_vector_line(first):
        return None, len(parts) - 1, False  # GloVe's text format: no header line
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise InputError(
            f"{path!r} is not a word2vec vectors file: its first line must be 'vocab_size dim'; "
            "pass a file written by `w2v-async train` or word2vec.c."
        )
    n, dim = int(parts[0]), int(parts[1])
    if n == 0 or dim == 0:
        raise InputError(f"{path!r} holds {n} vectors of dimension {dim}; train it again.")
    return n, dim, not _is_vector_line(line, dim)


def _is_vector_line(line: bytes, dim: Optional[int] = None) -> bool:
    """Whether line is 'word x1 ... xd' text (with d == dim when given)."""
    try:
        fields = line.decode("utf-8").split()
        [float(x) for x in fields[1:]]
    except (UnicodeDecodeError, ValueError):
        return False
    return len(fields) > 1 and (dim is None or len(fields) == dim + 1)


def load_vectors(path: str):
    """Load word2vec text or binary vectors (detected) as a gensim KeyedVectors."""
    from gensim.models import KeyedVectors

    if not os.path.isfile(path):
        raise InputError(f"vectors file {path!r} does not exist; check the path or train it first.")
    n, _, binary = _header(path)
    logging.getLogger("gensim").setLevel(logging.WARNING)
    try:
        return KeyedVectors.load_word2vec_format(path, binary=binary, no_header=n is None)
    except (ValueError, EOFError, UnicodeDecodeError, IndexError) as e:
        kind = "binary" if binary else "text"
        raise InputError(
            f"{path!r} looks like word2vec {kind} format but cannot be read ({e}); "
            "the file may be truncated: write it again."
        ) from e
