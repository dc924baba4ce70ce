"""GloVe co-occurrence counting with bounded memory: sorted runs spilled to disk, then merged.

Counts X_ij over a window with weight 1/distance (Stanford GloVe's ``cooccur``), on the encoded
corpus, across threads, inside numba. Output: sorted COO arrays plus the vocabulary, in one file.
"""

import collections
import os
import resource
import struct
import tempfile
import threading
import time
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Deque, List, Optional

import numpy as np

from ..config import VocabConfig
from ..errors import ConfigError, InputError
from ..io import atomic_path
from ..models.cooccur import add_transpose, fill_cooccurrences, merge_runs, sort_reduce
from .corpus import check_output_path
from .encoded import EncodedCorpus
from .cache import read_corpus_cached
from .vocab import Vocab

BYTES_PER_ENTRY = 24  # keys + values and the radix sort's second copy (8 + 4 + 8 + 4)
FORMAT_VERSION = 1


@dataclass
class Cooccurrence:
    """X as sorted COO: rows int32[nnz], cols int32[nnz] (sorted by (row, col)), values float32[nnz]."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    vocab: Vocab
    window: int
    symmetric: bool
    n_runs: int = 0  # sorted runs spilled while counting (not saved)
    run_entries: int = 0  # entries in those runs, 12 bytes each on disk until the merge ends (not saved)

    @property
    def nnz(self) -> int:
        return int(self.values.shape[0])

    def save(self, path: str) -> None:
        """One .npz file with the arrays, the vocabulary and the settings; written atomically."""
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(
                    f, rows=self.rows, cols=self.cols, values=self.values,
                    words=np.array(self.vocab.words, dtype=object).astype(str), counts=self.vocab.counts,
                    meta=np.array([FORMAT_VERSION, self.window, int(self.symmetric)], np.int64),
                )

    @classmethod
    def load(cls, path: str) -> "Cooccurrence":
        if not os.path.isfile(path):
            raise InputError(f"co-occurrence file {path!r} does not exist; create it with `w2v-async cooccur`.")
        if not zipfile.is_zipfile(path):
            raise InputError(
                f"{path!r} is not a w2v-async co-occurrence file (not an .npz archive); "
                "create it with `w2v-async cooccur`."
            )
        try:
            with np.load(path, allow_pickle=False) as z:
                version, window, symmetric = z["meta"].tolist()
                if version != FORMAT_VERSION:
                    raise ValueError(f"format version {version}")
                vocab = Vocab(z["words"].tolist(), z["counts"])
            with zipfile.ZipFile(path) as zf:
                entries = [_mapped_member(path, zf, name) for name in ("rows", "cols", "values")]
            return cls(*entries, vocab, int(window), bool(symmetric))
        except (OSError, KeyError, ValueError) as e:
            raise InputError(
                f"{path!r} is not a w2v-async co-occurrence file ({e}); create it with `w2v-async cooccur`."
            ) from e


def _mapped_member(path: str, zf: zipfile.ZipFile, name: str) -> np.ndarray:
    """The array name.npy of an .npz archive, memory-mapped (np.savez stores members
    uncompressed): the entries of a large matrix stay on disk until they are read."""
    info = zf.getinfo(name + ".npy")
    if info.compress_type != zipfile.ZIP_STORED:
        with zf.open(info) as f:
            return np.lib.format.read_array(f, allow_pickle=False)
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)  # the member's local header: then its name and extra field, then the data
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if fortran or len(shape) != 1:
        raise ValueError(f"{name} is not a 1-D array")
    if not shape[0]:
        return np.zeros(0, dtype)
    return np.memmap(path, dtype, "c", offset=offset, shape=shape)


def _check_settings(window: int, memory_gb: float, threads: int) -> None:
    if window <= 0:
        raise ConfigError(f"--window must be a positive number, got {window}; GloVe uses 10.")
    if memory_gb <= 0:
        raise ConfigError(f"--memory must be positive (GB), got {memory_gb}; the default is 1.")
    if threads <= 0:
        raise ConfigError(f"--threads must be a positive number, got {threads}; the default is all cores.")


def _key_at(f, index: int) -> int:
    """The int64 key at position index of the keys file."""
    return int(np.frombuffer(os.pread(f.fileno(), 8, 8 * index), np.int64)[0])


def _lower_bound(f, start: int, end: int, key: int) -> int:
    """First position in [start, end) of a sorted run on disk whose key is >= key (binary search)."""
    while start < end:
        mid = (start + end) // 2
        if _key_at(f, mid) < key:
            start = mid + 1
        else:
            end = mid
    return start


def _read_into(f, offset: int, out: np.ndarray) -> None:
    """Fill out with the bytes at offset of f (a plain positioned read: no mapping, and threads may
    read one file at once)."""
    view = memoryview(out).cast("B")
    got = 0
    while got < len(view):
        n = os.preadv(f.fileno(), [view[got:]], offset + got)
        if not n:
            raise InputError(f"a temporary run file ended early at byte {offset + got}; is the disk full?")
        got += n


class _RunFile:
    """Sorted runs appended to one keys file and one values file: two open files, however many runs."""

    def __init__(self, directory: str):
        self.directory = directory
        self.keys_path = os.path.join(directory, "runs.keys")
        self.values_path = os.path.join(directory, "runs.values")
        self._keys = open(self.keys_path, "wb")
        self._values = open(self.values_path, "wb")
        self.offsets = [0]
        self._lock = threading.Lock()

    def append(self, keys: np.ndarray, values: np.ndarray) -> None:
        with self._lock:
            keys.tofile(self._keys)
            values.tofile(self._values)
            self.offsets.append(self.offsets[-1] + keys.shape[0])

    def close(self) -> None:
        self._keys.close()
        self._values.close()

    def merge(self, n_words: int, budget: int, threads: int = 1):
        """Merge all runs into sorted (rows, cols, values, nnz), reading at most ~budget entries at once.

        The key space is cut into ranges of about budget / threads entries, merged by threads
        ranges at a time: for each range, every run's slice is read with plain reads (never
        mapped: the page cache of a mapping counts as our memory) and merged in numba (nogil).
        Returns arrays of the total run length, of which the first nnz are filled: mappings of
        unnamed files in the runs' directory (so the output, often larger than the counting
        buffers, is not anonymous memory; the rest is never touched, so never written).
        """
        offsets = np.asarray(self.offsets, np.int64)
        total = int(offsets[-1])
        n_ranges = max(threads, -(-total // max(1, budget // threads)))
        with open(self.keys_path, "rb") as fk, open(self.values_path, "rb") as fv:
            # keys sampled evenly over all runs: their quantiles cut ranges of about equal entry counts
            positions = np.linspace(0, total - 1, 64 * n_ranges + 1).astype(np.int64)
            sample = np.sort([_key_at(fk, int(i)) for i in positions])
            cuts = sample[(np.arange(1, n_ranges) * sample.shape[0]) // n_ranges]
            bounds = np.concatenate([[np.iinfo(np.int64).min], np.unique(cuts), [np.iinfo(np.int64).max]])

            def merge_range(lo: int, hi: int):
                slices = [
                    (_lower_bound(fk, a, b, lo), _lower_bound(fk, a, b, hi)) for a, b in zip(offsets[:-1], offsets[1:])
                ]
                local = np.zeros(len(slices) + 1, np.int64)
                np.cumsum([j - i for i, j in slices], out=local[1:])
                range_keys = np.empty(local[-1], np.int64)
                range_values = np.empty(local[-1], np.float32)
                for (i, j), start in zip(slices, local[:-1]):
                    _read_into(fk, 8 * i, range_keys[start : start + j - i])
                    _read_into(fv, 4 * i, range_values[start : start + j - i])
                out = (np.empty(local[-1], np.int32), np.empty(local[-1], np.int32), np.empty(local[-1], np.float32))
                m = merge_runs(range_keys, range_values, local, n_words, *out)
                return [a[:m] for a in out]

            merged = tuple(_file_array(self.directory, total, dtype) for dtype in (np.int32, np.int32, np.float32))
            nnz = 0
            pending: Deque[Future] = collections.deque()
            with ThreadPoolExecutor(threads) as pool:  # at most `threads` ranges in memory at once
                for lo, hi in zip(bounds[:-1], bounds[1:]):
                    pending.append(pool.submit(merge_range, lo, hi))
                    if len(pending) == threads:
                        nnz = _append(merged, nnz, pending.popleft().result())
                while pending:
                    nnz = _append(merged, nnz, pending.popleft().result())
        return (*merged, nnz)


def _file_array(directory: str, n: int, dtype) -> np.ndarray:
    """A zeroed, writable array of n items mapped from an unnamed file in directory (gone with it)."""
    with tempfile.TemporaryFile(dir=directory, prefix=".w2v-cooc-") as f:
        f.truncate(n * np.dtype(dtype).itemsize)
        return np.memmap(f, dtype, "r+", shape=(n,))


def _append(merged, nnz: int, parts) -> int:
    """Copy one merged range's (rows, cols, values) behind the first nnz entries of merged."""
    m = parts[0].shape[0]
    for dst, src in zip(merged, parts):
        dst[nnz : nnz + m] = src
    return nnz + m


def count_cooccurrences(
    corpus: EncodedCorpus,
    vocab: Vocab,
    window: int = 10,
    symmetric: bool = True,
    memory_gb: float = 1.0,
    threads: int = 1,
    tmp_dir: Optional[str] = None,
) -> Cooccurrence:
    """Count weighted co-occurrences with at most about ``memory_gb`` of counting buffers.

    Each thread fills a buffer of (key, 1/d) pairs from its shard of sentences, radix-sorts and
    reduces it by key in numba, and appends it as a sorted run to a temporary file; the runs are
    then k-way merged, one key range at a time. Temporary files are removed whatever happens.
    """
    _check_settings(window, memory_gb, threads)
    n_words = len(vocab)
    max_key = n_words * n_words - 1
    longest = corpus.longest_sentence()
    factor = 2 if symmetric else 1
    capacity = int(memory_gb * 2**30 / BYTES_PER_ENTRY / threads)
    capacity -= capacity % factor
    if capacity < factor * window * longest:
        need = factor * window * longest * BYTES_PER_ENTRY * threads / 2**30
        raise ConfigError(f"--memory {memory_gb} GB cannot hold one sentence's pairs; use at least {need:.3g}.")
    shards = corpus.shards(threads)
    errors: List[BaseException] = []
    with tempfile.TemporaryDirectory(prefix=".w2v-cooccur-", dir=tmp_dir) as directory:
        runs = _RunFile(directory)

        def work(t: int) -> None:
            try:
                keys = np.empty(capacity, np.int64)
                values = np.empty(capacity, np.float32)
                tmp_keys = np.empty(capacity, np.int64)
                tmp_values = np.empty(capacity, np.float32)
                shard = (corpus.ids, corpus.sent_starts, shards[t])
                first = 0
                while first < shards[t].shape[0] and not errors:
                    first, n = fill_cooccurrences(
                        shard, first, window, n_words, keys[: capacity // factor], values[: capacity // factor]
                    )
                    if symmetric:
                        add_transpose(keys, values, n, n_words)
                    size = factor * n
                    m, in_tmp = sort_reduce(
                        keys[:size], values[:size], tmp_keys[:size], tmp_values[:size], max_key
                    )
                    sorted_keys, sorted_values = (tmp_keys, tmp_values) if in_tmp else (keys, values)
                    runs.append(sorted_keys[:m], sorted_values[:m])
            except BaseException as e:  # surfaced by the caller's thread
                errors.append(e)

        workers = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(threads)]
        for w in workers:
            w.start()
        try:
            for w in workers:
                while w.is_alive():
                    w.join(0.25)
        except KeyboardInterrupt:
            errors.append(KeyboardInterrupt())
            for w in workers:
                w.join()
            raise
        finally:
            runs.close()
        if errors:
            raise errors[0]
        total = runs.offsets[-1]
        if total == 0:
            raise InputError(
                "no word pairs to count: every sentence has a single in-vocabulary word; "
                "lower --min-count or give a larger corpus."
            )
        # entries of keys + values read at once; a fifth of the cap is left for the heap, the
        # allocator and Python objects
        budget = max(1, int(0.8 * memory_gb * 2**30 / 12))
        rows, cols, out, nnz = runs.merge(n_words, budget, threads)
    return Cooccurrence(rows[:nnz], cols[:nnz], out[:nnz], vocab, window, symmetric, len(runs.offsets) - 1, total)


def count_cooccurrences_from_corpus(
    source: str,
    output: str,
    vocab_cfg: VocabConfig,
    window: int = 10,
    symmetric: bool = True,
    memory_gb: float = 1.0,
    threads: int = 1,
    vocab_path: Optional[str] = None,
    tmp_dir: Optional[str] = None,
    log: Callable[[str], None] = lambda msg: None,
    cache_dir: Optional[str] = None,
) -> dict:
    """The ``w2v-async cooccur`` job: read and encode the corpus (through the cache in cache_dir,
    None: no cache), count, save; returns a summary."""
    vocab_cfg.validate()
    _check_settings(window, memory_gb, threads)
    check_output_path(output)
    t0 = time.perf_counter()
    _, vocab, encoded, store = read_corpus_cached(source, vocab_cfg, vocab_path, log,
                                                  os.path.dirname(os.path.abspath(output)), threads, cache_dir)
    t1 = time.perf_counter()
    rss_read_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process + vocabulary + corpus
    directory = tmp_dir if tmp_dir is not None else os.path.dirname(os.path.abspath(output))
    cooc = count_cooccurrences(encoded, vocab, window, symmetric, memory_gb, threads, directory)
    t2 = time.perf_counter()
    cooc.save(output)
    store()
    t3 = time.perf_counter()
    log(f"{cooc.nnz} non-zero co-occurrences from {cooc.n_runs} sorted run(s) [{t2 - t1:.1f} s]; wrote {output}")
    return {
        "vocab_size": len(vocab),
        "words": encoded.n_words,
        "nnz": cooc.nnz,
        "runs": cooc.n_runs,
        "run_entries": cooc.run_entries,
        "window": window,
        "symmetric": symmetric,
        "memory_gb": memory_gb,
        "seconds": {"scan": t1 - t0, "count": t2 - t1, "write": t3 - t2},
        "peak_rss_mib": {"after_reading": rss_read_mib,
                         "total": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},
        "output": output,
    }
