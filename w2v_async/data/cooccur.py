"""GloVe co-occurrence counting with bounded memory: sorted runs spilled to disk, then merged.

Counts X_ij over a window with weight 1/distance (Stanford GloVe's ``cooccur``), on the encoded
corpus, across threads, inside numba. Output: sorted COO arrays plus the vocabulary, in one file.
"""

import os
import resource
import struct
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np

from ..config import VocabConfig
from ..errors import ConfigError, InputError
from ..io import atomic_path, pack_words, remove_dead_leftovers, unpack_words, writer_tag
from ..models.cooccur import add_transpose, fill_cooccurrences, sort_reduce
from ..signals import Interrupts
from ..testhooks import HOLD, hold
from .corpus import check_output_path
from .encoded import EncodedCorpus
from .cache import read_corpus_cached
from .runs import ENTRY_BYTES, MERGE_BYTES, ColumnPieces, RunStore, disk_errors, merge_segments, write_npz
from .vocab import Vocab

BYTES_PER_ENTRY = 24  # keys + values and the radix sort's second copy (8 + 4 + 8 + 4)
COUNT_SHARE = 0.75  # of --memory for the counting buffers; the rest for compacting runs meanwhile
COMPACT_AFTER = 4  # the first compaction once runs on disk are 4 x --memory
SENTENCE_CHUNK = 1 << 20  # sentence numbers handed to the counting kernel at once (8 MiB)
FORMAT_VERSION = 2  # 2: the vocabulary as io.pack_words; 1 (a fixed-width str array) is still read
READABLE_VERSIONS = (1, 2)


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
    run_entries: int = 0  # entries in those runs, 12 bytes each on disk until compacted (not saved)
    compactions: int = 0  # merges of the runs while counting (not saved)

    @property
    def nnz(self) -> int:
        return int(self.values.shape[0])

    def save(self, path: str) -> None:
        """One .npz file with the arrays, the vocabulary and the settings; written atomically."""
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(
                    f, rows=self.rows, cols=self.cols, values=self.values,
                    **_described_by(self.vocab, self.window, self.symmetric),
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
                if version not in READABLE_VERSIONS:
                    raise ValueError(f"format version {version}")
                vocab = Vocab(unpack_words(z), z["counts"])
            with zipfile.ZipFile(path) as zf:
                entries = [_mapped_member(path, zf, name) for name in ("rows", "cols", "values")]
            return cls(*entries, vocab, int(window), bool(symmetric))
        except (OSError, KeyError, ValueError) as e:
            raise InputError(
                f"{path!r} is not a w2v-async co-occurrence file ({e}); create it with `w2v-async cooccur`."
            ) from e


def _described_by(vocab: Vocab, window: int, symmetric: bool) -> dict:
    """The .npz members beside the entries: the vocabulary and the settings."""
    return {**pack_words(vocab.words), "counts": vocab.counts,
            "meta": np.array([FORMAT_VERSION, window, int(symmetric)], np.int64)}


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


def count_cooccurrences(
    corpus: EncodedCorpus,
    vocab: Vocab,
    window: int = 10,
    symmetric: bool = True,
    memory_gb: float = 1.0,
    threads: int = 1,
    tmp_dir: Optional[str] = None,
    output: Optional[str] = None,
) -> Cooccurrence:
    """Count weighted co-occurrences with at most about ``memory_gb`` of buffers; write them to
    ``output`` (.npz, atomically) or, without one, to a file that is gone once unmapped.

    Each thread fills a buffer of (key, 1/d) pairs from its shard of sentences, radix-sorts and
    reduces it by key in numba, and spills it as a sorted run; a background thread compacts the
    runs as they accumulate (``data/runs.RunStore``), and a last merge writes the output's columns.
    The result is memory-mapped from the file. Temporary files are removed whatever happens.
    """
    _check_settings(window, memory_gb, threads)
    n_words = len(vocab)
    max_key = n_words * n_words - 1
    longest = corpus.longest_sentence()
    factor = 2 if symmetric else 1
    budget = memory_gb * 2**30
    capacity = int(COUNT_SHARE * budget / BYTES_PER_ENTRY / threads)
    capacity -= capacity % factor
    if capacity < factor * window * longest:
        need = factor * window * longest * BYTES_PER_ENTRY * threads / 2**30 / COUNT_SHARE
        raise ConfigError(f"--memory {memory_gb} GB cannot hold one sentence's pairs; use at least {need:.3g}.")
    # each thread counts a contiguous stretch of about n_words / threads words (the order does not
    # matter here), handed to the kernel SENTENCE_CHUNK sentences at a time: no per-sentence lists
    cuts = np.searchsorted(corpus.sent_starts[: corpus.n_sentences], np.arange(threads + 1) * corpus.n_words // threads)
    cuts[-1] = corpus.n_sentences
    errors: List[BaseException] = []
    # the runs go in .w2v-cooccur-PID@HOST.XXXX, removed at the end; a count killed by kill -9 leaves
    # it (tens of GB at scale), so each count first removes those whose process is gone
    remove_dead_leftovers(tmp_dir if tmp_dir is not None else tempfile.gettempdir(), ".w2v-cooccur-")
    with tempfile.TemporaryDirectory(prefix=".w2v-cooccur-" + writer_tag() + ".", dir=tmp_dir) as directory:
        merge_entries = max(threads, int((1 - COUNT_SHARE) * budget / MERGE_BYTES))
        store = RunStore(directory, merge_entries, threads, compact_entries=int(COMPACT_AFTER * budget / ENTRY_BYTES),
                         segment_entries=merge_entries // threads)

        def work(t: int) -> None:
            try:
                keys = np.empty(capacity, np.int64)
                values = np.empty(capacity, np.float32)
                tmp_keys = np.empty(capacity, np.int64)
                tmp_values = np.empty(capacity, np.float32)
                half = capacity // factor
                filled = 0

                def spill(n: int) -> None:
                    if symmetric:
                        add_transpose(keys, values, n, n_words)
                    size = factor * n
                    m, in_tmp = sort_reduce(keys[:size], values[:size], tmp_keys[:size], tmp_values[:size], max_key)
                    sorted_keys, sorted_values = (tmp_keys, tmp_values) if in_tmp else (keys, values)
                    store.append(sorted_keys[:m], sorted_values[:m])
                    if HOLD is not None:  # test hooks: a run is on disk, counting goes on until stopped;
                        hold("cooccur-spilled", lambda: bool(errors))  # then still busy until signalled again
                        hold("cooccur-stopping", lambda: interrupts.signals >= 2)

                for lo in range(int(cuts[t]), int(cuts[t + 1]), SENTENCE_CHUNK):
                    if errors:
                        break
                    chunk = np.arange(lo, min(lo + SENTENCE_CHUNK, int(cuts[t + 1])), dtype=np.int64)
                    first = 0
                    while first < chunk.shape[0] and not errors:
                        first, n = fill_cooccurrences((corpus.ids, corpus.sent_starts, chunk), first, window, n_words,
                                                      keys[filled:half], values[filled:half])
                        filled += n
                        if first < chunk.shape[0]:  # the buffer is full
                            spill(filled)
                            filled = 0
                if filled and not errors:
                    spill(filled)
            except BaseException as e:  # surfaced by the caller's thread
                errors.append(e)
                store.close()  # a compaction stops too; threads waiting for it wake
            finally:
                finished[t].set()

        # Events, not Thread.join: a join that Ctrl-C interrupts may report a running thread as
        # stopped (CPython 3.11), and the directory would go while it still writes. Ctrl-C and
        # SIGTERM, the second too (Interrupts(insist=False)), only count in interrupts.signals, read
        # here between waits: an exception thrown into Event.wait can land between its lock's
        # acquire and the `with` block, leaving the lock held, and the workers' set() and this
        # thread's wait then block for ever. The workers stop at their next chunk or spill.
        finished = [threading.Event() for _ in range(threads)]
        workers = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(threads)]
        try:
            with Interrupts(insist=False) as interrupts:
                for w in workers:
                    w.start()
                for event in finished:
                    while not event.wait(0.25):
                        if interrupts.signal is not None and not errors:
                            errors.append(KeyboardInterrupt())
                            store.close()
                if interrupts.signal is not None and not errors:  # one that came in the last wait that ended
                    errors.append(KeyboardInterrupt())
            if errors:
                raise errors[0]
            segments = store.finish()
            if not store.run_entries:
                raise InputError(
                    "no word pairs to count: every sentence has a single in-vocabulary word; "
                    "lower --min-count or give a larger corpus."
                )
            # the counting buffers are gone: the last merge may hold most of the budget
            with disk_errors(directory):
                pieces = merge_segments(segments, max(threads, int(0.8 * budget / MERGE_BYTES)), threads,
                                        ColumnPieces(directory, n_words))
                arrays = _described_by(vocab, window, symmetric)
                if output is None:
                    path = os.path.join(directory, "cooc.npz")
                    write_npz(path, pieces, arrays)
                else:
                    with atomic_path(output) as tmp:
                        write_npz(tmp, pieces, arrays)
                    path = output
            cooc = Cooccurrence.load(path)  # mapped: readable after the directory is removed
        finally:
            store.close()  # no compaction outlives the directory, whatever stopped the count
    cooc.n_runs, cooc.run_entries, cooc.compactions = store.n_runs, store.run_entries, store.compactions
    return cooc


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
    cooc = count_cooccurrences(encoded, vocab, window, symmetric, memory_gb, threads, directory, output)
    t2 = time.perf_counter()
    store()
    t3 = time.perf_counter()
    log(f"{cooc.nnz} non-zero co-occurrences from {cooc.n_runs} sorted run(s), {cooc.compactions} compaction(s) "
        f"[{t2 - t1:.1f} s]; wrote {output}")
    return {
        "vocab_size": len(vocab),
        "words": encoded.n_words,
        "nnz": cooc.nnz,
        "runs": cooc.n_runs,
        "run_entries": cooc.run_entries,
        "compactions": cooc.compactions,
        "window": window,
        "symmetric": symmetric,
        "memory_gb": memory_gb,
        "seconds": {"scan": t1 - t0, "count": t2 - t1, "store_cache": t3 - t2},
        "peak_rss_mib": {"after_reading": rss_read_mib,
                         "total": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},
        "output": output,
    }
