"""Sorted runs of (key, value) entries spilled to disk: compacted while they accumulate, merged in
key ranges, written out as .npz columns. Memory is bounded by a budget of entries, disk by about
the distinct keys plus what was spilled since the last compaction.

A *segment* is a sorted, duplicate-free stretch of keys in two files (int64 keys, float32 values).
Every spilled run is cut into segments of a bounded size; a merge reads, for each key range, the
slice of every segment that overlaps it, and deletes a segment as soon as the ranges merged so far
have passed its last key. So a merge needs little more disk than its output, and the output of
merging everything that was spilled is written once, in column pieces, then streamed into the
.npz (each piece deleted once copied).
"""

import collections
import contextlib
import errno
import itertools
import os
import shutil
import threading
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from ..models.cooccur import merge_runs

ENTRY_BYTES = 12  # on disk: an int64 key and a float32 value
MERGE_BYTES = 24  # in memory, per entry merged: the keys and values read (12) and the merged ones (12)
COPY_BYTES = 16 << 20  # the piece size when streaming files into the .npz
COPY_ENTRIES = 1 << 20  # keys turned into rows and columns at once


@contextlib.contextmanager
def disk_errors(directory: str):
    """Turn a full disk (or quota) while spilling into one clear error."""
    try:
        yield
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise InputError(
            f"the disk under {directory} is full while spilling co-occurrence runs; free space there or give "
            "--tmp-dir on a larger disk (the output needs 12 bytes per distinct word pair, the runs about as much)."
        ) from e


def write_array(array: np.ndarray, path: str, append: bool = False) -> None:
    """Write an array's bytes to a new file, or at the end of one (the one place the runs reach the disk)."""
    with open(path, "ab" if append else "wb") as f:
        array.tofile(f)


@dataclass
class Segment:
    """Sorted unique keys and their values in prefix.keys and prefix.values."""

    prefix: str
    n: int
    first: int
    last: int

    def remove(self) -> None:
        for suffix in (".keys", ".values"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.prefix + suffix)


def _read_into(fd: int, offset: int, out: np.ndarray, path: str) -> None:
    """Fill out with the bytes at offset of fd (a plain positioned read: the page cache of a
    mapping would count as this process's memory)."""
    view = memoryview(out).cast("B")
    got = 0
    while got < len(view):
        n = os.preadv(fd, [view[got:]], offset + got)
        if not n:
            raise InputError(f"the temporary run file {path} ended early at byte {offset + got}; is the disk full?")
        got += n


def _key_at(fd: int, index: int) -> int:
    return int(np.frombuffer(os.pread(fd, 8, 8 * index), np.int64)[0])


def _lower_bound(fd: int, n: int, key: int) -> int:
    """First position in a sorted keys file of n keys whose key is >= key (binary search)."""
    start, end = 0, n
    while start < end:
        mid = (start + end) // 2
        if _key_at(fd, mid) < key:
            start = mid + 1
        else:
            end = mid
    return start


def _range_cuts(segments: Sequence[Segment], n_ranges: int) -> np.ndarray:
    """Keys that cut the union of the segments into n_ranges ranges of about equal entry counts:
    quantiles of keys sampled evenly over all entries, plus sentinels at both ends."""
    offsets = np.cumsum([0] + [s.n for s in segments])
    positions = np.linspace(0, offsets[-1] - 1, 64 * n_ranges + 1).astype(np.int64)
    which = np.searchsorted(offsets, positions, side="right") - 1
    sample = []
    for i, segment in enumerate(segments):
        local = positions[which == i] - offsets[i]
        if local.shape[0]:
            fd = os.open(segment.prefix + ".keys", os.O_RDONLY)
            try:
                sample.extend(_key_at(fd, int(p)) for p in local)
            finally:
                os.close(fd)
    sample = np.sort(np.asarray(sample, np.int64))
    cuts = sample[(np.arange(1, n_ranges) * sample.shape[0]) // n_ranges]
    info = np.iinfo(np.int64)
    return np.concatenate([[info.min], np.unique(cuts), [info.max]])


def _read_range(segments: Sequence[Segment], lo: int, hi: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every segment's keys in [lo, hi), concatenated, with the offsets of the sorted pieces."""
    slices = []
    for segment in segments:
        if segment.last < lo or segment.first >= hi:
            continue
        fd = os.open(segment.prefix + ".keys", os.O_RDONLY)
        try:
            i = 0 if segment.first >= lo else _lower_bound(fd, segment.n, lo)
            j = segment.n if segment.last < hi else _lower_bound(fd, segment.n, hi)
        finally:
            os.close(fd)
        if j > i:
            slices.append((segment, i, j))
    offsets = np.zeros(len(slices) + 1, np.int64)
    np.cumsum([j - i for _, i, j in slices], out=offsets[1:])
    keys = np.empty(offsets[-1], np.int64)
    values = np.empty(offsets[-1], np.float32)
    for (segment, i, j), start in zip(slices, offsets[:-1]):
        for suffix, out, size in ((".keys", keys, 8), (".values", values, 4)):
            fd = os.open(segment.prefix + suffix, os.O_RDONLY)
            try:
                _read_into(fd, size * i, out[start : start + j - i], segment.prefix + suffix)
            finally:
                os.close(fd)
    return keys, values, offsets


def merge_segments(segments: List[Segment], budget: int, threads: int, write: Callable,
                   stop: Optional[threading.Event] = None) -> list:
    """Merge the segments (summing the values of equal keys) one key range at a time, ranges of
    about budget / threads entries merged by threads at once, each handed as (keys, values) to
    write (called on the merging threads; its results come back in key order). Input segments are
    deleted once merged."""
    total = sum(s.n for s in segments)
    if not total:
        return []
    n_ranges = max(threads, -(-total // max(1, budget // threads)))
    bounds = _range_cuts(segments, n_ranges)
    live = list(segments)

    def merge_range(lo: int, hi: int):
        if stop is not None and stop.is_set():
            return None
        keys, values, offsets = _read_range(segments, lo, hi)
        out_keys, out_values = np.empty_like(keys), np.empty_like(values)
        m = merge_runs(keys, values, offsets, out_keys, out_values)
        del keys, values
        return write(out_keys[:m], out_values[:m]) if m else None

    results = []
    pending: Deque[Tuple[Future, int]] = collections.deque()

    def collect() -> None:
        future, hi = pending.popleft()
        result = future.result()
        if result is not None:
            results.append(result)
        for segment in [s for s in live if s.last < hi]:  # every range below hi is merged
            segment.remove()
            live.remove(segment)

    with ThreadPoolExecutor(threads) as pool:  # at most `threads` ranges in memory at once
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            pending.append((pool.submit(merge_range, int(lo), int(hi)), int(hi)))
            if len(pending) == threads:
                collect()
        while pending:
            collect()
    for segment in live:
        segment.remove()
    if stop is not None and stop.is_set():
        raise InputError("merging stopped")  # replaced by the caller's own error
    return results


class RunStore:
    """The sorted runs of a counting job in one directory, compacted in a background thread.

    Counting threads append runs; the runs spilled since the last compaction ("fresh") are merged
    with the compacted run once they are as many entries as it (so every entry is rewritten a
    logarithmic number of times), after at least ``compact_entries``; sooner when the disk could
    not hold another copy of them. ``merge_entries`` bounds the entries a compaction holds in
    memory at once.
    """

    def __init__(self, directory: str, merge_entries: int, threads: int, compact_entries: int,
                 segment_entries: int):
        self.directory = directory
        self.merge_entries = merge_entries
        self.threads = threads
        self.compact_entries = compact_entries
        self.segment_entries = max(1, segment_entries)
        self.n_runs = 0
        self.run_entries = 0
        self.compactions = 0
        self._fresh: List[Segment] = []
        self._compacted: List[Segment] = []
        self._names = itertools.count()
        self._cond = threading.Condition()
        self._compactor: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None
        self._stop = threading.Event()

    def _prefix(self) -> str:
        return os.path.join(self.directory, f"seg{next(self._names)}")

    def write_segment(self, keys: np.ndarray, values: np.ndarray) -> Segment:
        segment = Segment(self._prefix(), int(keys.shape[0]), int(keys[0]), int(keys[-1]))
        with disk_errors(self.directory):
            write_array(keys, segment.prefix + ".keys")
            write_array(values, segment.prefix + ".values")
        return segment

    def append(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Spill one sorted, duplicate-free run (any thread; the files are written in parallel)."""
        if not keys.shape[0]:
            return
        step = self.segment_entries
        pieces = [self.write_segment(keys[i : i + step], values[i : i + step]) for i in range(0, keys.shape[0], step)]
        with self._cond:
            self._fresh.extend(pieces)
            self.n_runs += 1
            self.run_entries += int(keys.shape[0])
            self._schedule()

    def _free_bytes(self) -> int:
        stats = os.statvfs(self.directory)
        return stats.f_bavail * stats.f_frsize

    def _schedule(self) -> None:
        """Start a compaction when one is due; when one is due while another runs, or the disk is
        short, wait for the running one. Holds self._cond."""
        while True:
            if self._error is not None:
                raise self._error
            fresh = sum(s.n for s in self._fresh)
            compacted = sum(s.n for s in self._compacted)
            reserve = ENTRY_BYTES * (fresh + self.merge_entries) + (256 << 20)
            due = fresh >= max(self.compact_entries, compacted)
            short = fresh >= compacted // 16 and self._free_bytes() < reserve
            if self._compactor is None:
                if (due or (fresh and short)) and not self._stop.is_set():
                    inputs, self._fresh = self._compacted + self._fresh, []
                    self._compactor = threading.Thread(target=self._compact, args=(inputs,), daemon=True)
                    self._compactor.start()
                return
            if not (due or short):
                return
            self._cond.wait()  # counting outran the compaction: the runs on disk would grow without bound

    def _compact(self, inputs: List[Segment]) -> None:
        try:
            with disk_errors(self.directory):
                out = merge_segments(inputs, self.merge_entries, self.threads, self.write_segment, self._stop)
            with self._cond:
                self._compacted = out
                self.compactions += 1
        except BaseException as e:  # surfaced to the counting threads and the caller
            with self._cond:
                self._error = e
        finally:
            with self._cond:
                self._compactor = None
                self._cond.notify_all()

    def finish(self) -> List[Segment]:
        """Wait for the running compaction; all segments, to be merged once more."""
        with self._cond:
            while self._compactor is not None:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            return self._compacted + self._fresh

    def close(self) -> None:
        """Stop a running compaction and wait for it (on failure or Ctrl-C, before the files go)."""
        self._stop.set()
        with self._cond:
            while self._compactor is not None:
                self._cond.wait()


class ColumnPieces:
    """Merged ranges written as row, column and value files (the .npz's three members), in key order."""

    def __init__(self, directory: str, n_words: int):
        self.directory = directory
        self.n_words = n_words
        self._names = itertools.count()
        self._lock = threading.Lock()

    def __call__(self, keys: np.ndarray, values: np.ndarray) -> Tuple[str, int]:
        with self._lock:
            prefix = os.path.join(self.directory, f"col{next(self._names)}")
        with disk_errors(self.directory):
            write_array(values, prefix + ".values")
            for i in range(0, max(1, keys.shape[0]), COPY_ENTRIES):  # in pieces: few temporaries
                rows, cols = np.divmod(keys[i : i + COPY_ENTRIES], self.n_words)
                write_array(rows.astype(np.int32), prefix + ".rows", append=i > 0)
                write_array(cols.astype(np.int32), prefix + ".cols", append=i > 0)
        return prefix, int(keys.shape[0])


COLUMNS = (("rows", np.int32), ("cols", np.int32), ("values", np.float32))


def write_npz(path: str, pieces: List[Tuple[str, int]], arrays: Dict[str, np.ndarray]) -> None:
    """An .npz (as np.savez writes: stored, zip64) whose rows, cols and values members are the
    pieces' files concatenated, each piece file deleted once copied, plus the given arrays."""
    nnz = sum(n for _, n in pieces)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, dtype in COLUMNS:
            with zf.open(name + ".npy", "w", force_zip64=True) as f:
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                          "shape": (nnz,)}
                np.lib.format.write_array_header_1_0(f, header)
                for prefix, _ in pieces:
                    with open(f"{prefix}.{name}", "rb") as src:
                        shutil.copyfileobj(src, f, COPY_BYTES)
                    os.unlink(f"{prefix}.{name}")
        for name, array in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)
