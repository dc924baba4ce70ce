"""Vector files (word2vec text/binary through gensim), training checkpoints and the other files a run
writes, all atomically; the checks on disk space and directories made before training."""

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import struct
import tempfile
import zipfile
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .errors import ConfigError, InputError
from .testhooks import HOLD, hold

FORMATS = ("auto", "bin", "txt", "glove")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_directory(directory: str) -> None:
    """Make a rename in directory durable (a crash right after it cannot bring the old file back)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems cannot fsync a directory
        pass
    finally:
        os.close(fd)


def writer_tag() -> str:
    """pid@host, in the names of temporary files and folders (then a "."), so that a later run can
    tell that their writer is dead: kill -9 runs no cleanup (see remove_dead_leftovers)."""
    return f"{os.getpid()}@{re.sub(r'[^A-Za-z0-9.-]', '_', socket.gethostname())}"


def remove_dead_leftovers(directory: str, prefix: str, suffix: str = "") -> None:
    """Remove what dead writers left in directory: the files and folders named prefix + writer_tag()
    + "." + ... + suffix whose process is gone (os.kill(pid, 0)). Kept: a live process's (this one's
    included, or another's that reuses a dead writer's pid, until it ends) and another host's (a
    shared disk: its pids are not this host's); names without a tag (older versions) are kept too."""
    host = writer_tag().partition("@")[2] + "."
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        pid, at, rest = name[len(prefix):].partition("@")
        if not (name.startswith(prefix) and name.endswith(suffix) and pid.isdigit() and rest.startswith(host)):
            continue
        try:
            os.kill(int(pid), 0)
            continue  # alive
        except ProcessLookupError:
            pass
        except OSError:  # another user's process: alive
            continue
        path = os.path.join(directory, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary path beside ``path``; rename it over ``path`` only on success.

    A failure or Ctrl-C inside the block removes the temporary file and leaves ``path`` as it was;
    what a killed writer of the same path left (.NAME.PID@HOST.XXXX.tmp) goes at the next write.
    """
    directory = os.path.dirname(os.path.abspath(path))
    prefix = "." + os.path.basename(path) + "."
    remove_dead_leftovers(directory, prefix, ".tmp")
    fd, tmp = tempfile.mkstemp(prefix=prefix + writer_tag() + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
        _fsync_directory(directory)
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


def keyed_vectors(words: List[str], vectors: np.ndarray):
    """gensim KeyedVectors holding vectors[i] (float32[V, d]) for words[i]."""
    from gensim.models import KeyedVectors  # gensim (about 1 s to import) loads only where vectors are made or read

    kv = KeyedVectors(vectors.shape[1], count=0, dtype=np.float32)
    kv.add_vectors(words, vectors)
    return kv


def save_vectors(path: str, words: List[str], vectors: np.ndarray, fmt: str = "auto") -> str:
    """Write vectors in word2vec text or binary format, or GloVe's text format (no header line),
    with gensim's writer, atomically.

    vectors : float32[V, d], row i belongs to words[i]. Returns the format written.
    """
    fmt = resolve_format(path, fmt)
    logging.getLogger("gensim").setLevel(logging.ERROR)  # words are already in count order
    n = len(words)
    with atomic_path(path) as tmp:
        for first in range(0, max(n, 1), WRITE_WORDS):  # in pieces: gensim's writer copies what it is given
            kv = keyed_vectors(words[first: first + WRITE_WORDS],
                               np.ascontiguousarray(vectors[first: first + WRITE_WORDS], dtype=np.float32))
            kv.save_word2vec_format(tmp, binary=(fmt == "bin"), write_header=(fmt != "glove" and first == 0),
                                    total_vec=n, append=first > 0)
    return fmt


WRITE_WORDS = 100_000  # vectors handed to gensim's writer at a time


# ---- a vocabulary inside .npz files (checkpoints, co-occurrences): its real size, not V x the longest word ----

def pack_words(words: List[str]) -> Dict[str, np.ndarray]:
    """The words as two arrays: their UTF-8 bytes end to end (uint8) and where each ends (int64[V]).

    np.array(words, dtype=str) would take V x 4 bytes x the longest word: one 30,000-character
    token made a 2 MB model's checkpoint 1.1 GB, and at 3M words one 10 kB token would make 120 GB.
    """
    encoded = [w.encode("utf-8", "surrogatepass") for w in words]
    ends = np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)))
    return {"words_utf8": np.frombuffer(b"".join(encoded), np.uint8).copy(), "words_ends": ends}


def unpack_words(arrays) -> List[str]:
    """The words of pack_words' arrays (any mapping with its two names, an open .npz included), or
    of the fixed-width str array "words" of files written before them."""
    names = arrays.files if hasattr(arrays, "files") else arrays
    if "words_utf8" not in names:
        return arrays["words"].tolist()
    data, ends = arrays["words_utf8"].tobytes(), arrays["words_ends"].tolist()
    starts = [0] + ends[:-1]
    return [data[a:b].decode("utf-8", "surrogatepass") for a, b in zip(starts, ends)]


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


FASTTEXT_MAGIC = 793712314  # the int32 a fastText .bin starts with (io_fasttext.py writes them)


def load_vectors(path: str):
    """Load word2vec text or binary vectors (detected) as a gensim KeyedVectors, or a fastText .bin
    as FastTextKeyedVectors (which compose a vector for an unseen word from its n-grams)."""
    from gensim.models import KeyedVectors  # as in keyed_vectors

    if not os.path.isfile(path):
        raise InputError(f"vectors file {path!r} does not exist; check the path or train it first.")
    with open(path, "rb") as f:
        if f.read(4) == FASTTEXT_MAGIC.to_bytes(4, "little"):
            from gensim.models.fasttext import load_facebook_vectors
            try:
                return load_facebook_vectors(path)
            except (ValueError, EOFError, UnicodeDecodeError, AssertionError, struct.error) as e:
                raise InputError(f"{path!r} is a fastText .bin that cannot be read ({e}); the file may be "
                                 "truncated: write it again.") from e
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


# ---- checkpoints: DIR/checkpoint-NNNNNN.npz, the newest KEEP_CHECKPOINTS kept ----

CHECKPOINT_FORMAT = "w2v-async-checkpoint"
CHECKPOINT_VERSION = 2  # 2: the vocabulary as pack_words; 1 (a fixed-width str array) is still read
READABLE_VERSIONS = (1, 2)
KEEP_CHECKPOINTS = 2
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d{6,})\.npz$")


def _digest(meta: bytes, arrays: Dict[str, np.ndarray]) -> str:
    """SHA-256 of the metadata and of every array's name, dtype, shape and bytes."""
    h = hashlib.sha256(meta)
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        if a.size:  # a (0, d) array (syn1 of a one-word vocabulary) has no bytes; memoryview cannot cast it
            h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def checkpoint_files(directory: str) -> List[Tuple[int, str]]:
    """(sequence number, path) of the checkpoints in directory, newest first."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        m = _CHECKPOINT_NAME.match(name)
        if m:
            found.append((int(m.group(1)), os.path.join(directory, name)))
    return sorted(found, reverse=True)


def save_checkpoint(directory: str, meta: dict, arrays: Dict[str, np.ndarray]) -> str:
    """Write one checkpoint into directory (save_model_file) and return its path; older ones are
    removed only once it is complete, keeping the newest KEEP_CHECKPOINTS."""
    os.makedirs(directory, exist_ok=True)
    existing = checkpoint_files(directory)
    seq = existing[0][0] + 1 if existing else 1
    path = save_model_file(os.path.join(directory, f"checkpoint-{seq:06d}.npz"), dict(meta, sequence=seq), arrays,
                           f"checkpoint-{seq}-unpublished")
    for _, old in checkpoint_files(directory)[KEEP_CHECKPOINTS:]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(old)
    return path


def save_model_file(path: str, meta: dict, arrays: Dict[str, np.ndarray], stage: Optional[str] = None) -> str:
    """One checkpoint file (also --save-model's) atomically: temp file, fsync, rename. meta : JSON-ready;
    arrays : name -> ndarray (a vocabulary as pack_words); a SHA-256 of both, verified by read_checkpoint."""
    meta_bytes = json.dumps(dict(meta, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION), sort_keys=True).encode()
    checksum = _digest(meta_bytes, arrays)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays, meta=np.frombuffer(meta_bytes, np.uint8),
                     checksum=np.frombuffer(checksum.encode(), np.uint8))
        if HOLD is not None and stage:  # test hook: a kill or a second signal lands mid-checkpoint (test_signals.py)
            hold(stage)
    return path


def read_checkpoint(path: str) -> Tuple[dict, Dict[str, np.ndarray]]:
    """Load one checkpoint file and verify its checksum; raises InputError naming what is wrong."""
    try:
        if not zipfile.is_zipfile(path):
            raise ValueError("not an .npz archive (truncated or another kind of file)")
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        meta_bytes = arrays.pop("meta").tobytes()
        stored = arrays.pop("checksum").tobytes().decode("ascii")
        if _digest(meta_bytes, arrays) != stored:
            raise ValueError("checksum mismatch: the file is damaged")
        meta = json.loads(meta_bytes)
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a w2v-async checkpoint")
        if meta.get("version") not in READABLE_VERSIONS:
            raise ValueError(f"checkpoint format version {meta.get('version')}, this w2v-async reads "
                             f"{CHECKPOINT_VERSION}")
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise InputError(f"checkpoint {path!r} cannot be used: {e}.") from e
    return meta, arrays


def load_checkpoint(directory: str, log=lambda msg: None, option: str = "--resume"):
    """The newest checkpoint in directory that verifies: (meta, arrays, path); a damaged newest one is
    reported through log and the one before it used. option: what named the directory; only --resume
    (whose run owns it) removes what a killed writer left there (--init reads one another run may write)."""
    if not os.path.isdir(directory):
        raise ConfigError(f"checkpoint directory {directory!r} does not exist; check the {option} path.")
    for name in os.listdir(directory) if option == "--resume" else []:  # left by a run killed while writing
        if name.startswith(".checkpoint-") and name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))
    files = checkpoint_files(directory)
    if not files:
        raise InputError(f"{directory!r} holds no checkpoint-*.npz file; train with --checkpoint-dir {directory} "
                         f"first, or drop {option}.")
    problems = []
    for _, path in files:
        try:
            meta, arrays = read_checkpoint(path)
        except InputError as e:
            problems.append(str(e))
            continue
        for problem in problems:
            log(f"warning: {problem} Using the older {os.path.basename(path)}.")
        return meta, arrays, path
    raise InputError(f"no usable checkpoint in {directory!r}: {' '.join(problems)} Start again without {option}.")


def peek_checkpoint(directory: str) -> Optional[dict]:
    """The metadata of the newest readable checkpoint in directory, not verified (load_checkpoint
    verifies); None when there is none."""
    for _, path in checkpoint_files(directory):
        try:
            with np.load(path, allow_pickle=False) as z:
                return json.loads(z["meta"].tobytes())
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, UnicodeDecodeError):
            continue
    return None


# ---- what a training job writes: outputs, checkpoints' directory, the space they need ----

def partial_path(output: str) -> str:
    """Where an interrupted run writes its vectors so far: vectors.bin -> vectors.partial.bin."""
    return "{}.partial{}".format(*os.path.splitext(output))


def fingerprint(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(memoryview(np.ascontiguousarray(a)).cast("B"))
    return h.hexdigest()


def check_free_space(paths_bytes: Dict[str, int]) -> None:
    """Fail before training when a directory has less free space than what will be written there."""
    need: Dict[int, Tuple[str, int]] = {}
    for directory, n_bytes in paths_bytes.items():
        dev = os.stat(directory).st_dev
        where, total = need.get(dev, (directory, 0))
        need[dev] = (where, total + n_bytes)
    for where, n_bytes in need.values():
        free = shutil.disk_usage(where).free
        if free < n_bytes:
            raise InputError(
                f"{where!r} has {free / 1e6:.1f} MB free but this run writes about {n_bytes / 1e6:.1f} MB there; "
                "free some space or write elsewhere (-o, --checkpoint-dir)."
            )


def check_directory(directory: str) -> None:
    """Create a checkpoint directory, or fail before training if it cannot be written."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ConfigError(f"checkpoint directory {directory!r} is a file; give a directory path.")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot create checkpoint directory {directory!r}: {e.strerror}; choose another path.") from e
    if not os.access(directory, os.W_OK):
        raise ConfigError(f"checkpoint directory {directory!r} is not writable; choose another --checkpoint-dir.")


def write_outputs(output: str, words: List[str], vectors: np.ndarray, fmt: str, config_json: str,
                  save: Optional[Callable[[str], None]] = None) -> str:
    """The vectors (or save(output): another model file) and OUTPUT.json, atomically; a failed write names the fix."""
    config_path = output + ".json"
    try:
        save_vectors(output, words, vectors, fmt) if save is None else save(output)
        with atomic_write(config_path) as f:
            f.write(config_json + "\n")
    except OSError as e:
        raise InputError(f"could not write {output!r}: {e.strerror or e}; free some space or choose another -o "
                         "(nothing partial was left behind).") from e
    return config_path
