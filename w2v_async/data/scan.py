"""Counting and encoding corpus files on raw bytes, in parallel: the fast path behind scan_corpus.

The files are cut into one contiguous span per worker thread (a large plain file at line ends, a
.gz / .bz2 file or stdin whole). Each worker tokenizes and counts its span in a nogil numba kernel
(models/tokens.py) with its own word table, reading ahead in a second thread (decompression
overlaps counting), and writes the provisional ids of its words to its own part of the encoded
corpus. The tables are then merged in corpus order, so word ids, counts and ties (first occurrence
first) are the same as one sequential pass over the corpus.
"""

import os
import queue
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..config import VocabConfig
from ..errors import InputError
from ..models import tokens as kernels
from . import corpus as corpus_module
from .corpus import STDIN, CorpusStats, check_text, check_utf8
from .encoded import IdStreamBuilder
from .words import FOLD_LOWER, FOLD_NONE, NO_LIMIT, WordTable, compose

CHUNK_BYTES = 1 << 22  # read per call; a worker holds about 6 times this
MIN_SPAN_BYTES = 1 << 23  # a plain file is cut into spans of at least this much
COMPRESSED_RATIO = 3  # a compressed file counts as this many times its size when dealing spans
BOM = b"\xef\xbb\xbf"


@dataclass
class Span:
    """Bytes [start, end) of a file (end None: to its end; a compressed file or stdin is read whole)."""

    path: str
    start: int = 0
    end: Optional[int] = None


def _splittable(path: str) -> bool:
    return path != STDIN and not path.endswith((".gz", ".bz2"))


def _size(path: str) -> int:
    if path == STDIN:
        return 0
    return os.path.getsize(path) * (1 if _splittable(path) else COMPRESSED_RATIO)


def _line_start_after(path: str, pos: int) -> Optional[int]:
    """The first position >= pos that starts a line (follows a '\\n'), or None within MAX_LINE_BYTES."""
    with open(path, "rb") as f:
        f.seek(pos - 1)
        scanned = 0
        while scanned < corpus_module.MAX_LINE_BYTES:
            block = f.read(1 << 16)
            if not block:
                return None
            k = block.find(b"\n")
            if k >= 0:
                return pos + scanned + k
            scanned += len(block)
    return None


def _after_lines(path: str, n: int) -> int:
    """The position after the n-th '\\n' of the file (its size if it has fewer lines)."""
    pos = 0
    with open(path, "rb") as f:
        while n > 0:
            block = f.read(1 << 16)
            if not block:
                break
            k = -1
            while n > 0:
                k = block.find(b"\n", k + 1)
                if k < 0:
                    break
                n -= 1
            pos += k + 1 if n == 0 else len(block)
    return pos


def plan_spans(paths: Sequence[str], n_workers: int) -> List[List[Span]]:
    """Deal the files, in order, into at most n_workers groups of contiguous spans of similar size
    (none under MIN_SPAN_BYTES)."""
    sizes = [_size(p) for p in paths]
    target = max(sum(sizes) / max(n_workers, 1), MIN_SPAN_BYTES)
    groups: List[List[Span]] = [[]]
    filled = 0.0
    for path, size in zip(paths, sizes):
        start = 0
        while True:
            if filled >= target and groups[-1] and len(groups) < n_workers:
                groups.append([])
                filled = 0.0
            rest = size - start
            cut = None
            if _splittable(path) and filled + rest > target and len(groups) < n_workers:
                cut = _line_start_after(path, start + max(1, int(target - filled)))
                if start == 0 and cut is not None:  # the file's first span holds the lines its UTF-8 check reads
                    cut = max(cut, _after_lines(path, corpus_module.UTF8_CHECK_LINES))
            if cut is None or cut >= size:
                groups[-1].append(Span(path, start, None))
                filled += rest
                break
            groups[-1].append(Span(path, start, cut))
            filled = target
            start = cut
    return [g for g in groups if g]


def _read_span(span: Span) -> Iterator[bytes]:
    f = corpus_module.open_binary(span.path)
    try:
        if span.start:
            f.seek(span.start)
        left = None if span.end is None else span.end - span.start
        while left is None or left > 0:
            data = f.read(CHUNK_BYTES if left is None else min(CHUNK_BYTES, left))
            if not data:
                return
            if left is not None:
                left -= len(data)
            yield data
    except (OSError, EOFError, ValueError) as e:
        raise InputError(f"cannot read {span.path!r}: {e}; check that the file is complete.") from e
    finally:
        if f is not corpus_module.stdin_binary():
            f.close()


def _read_ahead(chunks: Iterator[bytes], depth: int = 2) -> Iterator[bytes]:
    """chunks, produced by a second thread (reading and decompression release the GIL)."""
    q: "queue.Queue" = queue.Queue(depth)
    done = object()
    stop = threading.Event()

    def produce():
        try:
            for item in chunks:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as e:  # handed to the consumer, raised there
            q.put(e)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


# The fewest words a counting reader may hold (its share of --max-vocab-size M: the readers share
# M, so memory stays bounded by M however many threads read). Each reader counts its part of the
# corpus alone, and once a table is full it prunes by its own counts, which a T-th of the corpus
# makes T times smaller, while its share shrinks T-fold too and its part's distinct words far less
# (Heaps' law): with shares of M / 64, a word seen hundreds of times in all can be pruned in every
# part (a 1M-token Zipf test kept 85 of the 521 words counted 100 times or more at 64 readers, all
# 521 at one). So no more than M / READER_MIN_WORDS readers count: 28 at the default M = 30M (at
# 10B tokens they still read in parallel), one at M = 1M (word2vec.c's one-thread count).
READER_MIN_WORDS = 1 << 20


def reading_threads(cfg: VocabConfig, threads: int) -> int:
    """How many threads may count a vocabulary under cfg's --max-vocab-size (READER_MIN_WORDS)."""
    return min(threads, max(1, cfg.max_vocab_size // READER_MIN_WORDS)) if cfg.max_vocab_size else threads


def counting_readers(paths: Sequence[str], cfg: VocabConfig, threads: int) -> int:
    """How many readers count the files' vocabulary with threads threads (its pruning depends on it)."""
    return len(plan_spans(paths, reading_threads(cfg, threads)))


class _Stopped(Exception):
    """A worker stopped because another one failed (or the run was interrupted)."""


class _Worker:
    """Scans one group of spans into its own table (or looks words up in a shared, frozen one)."""

    def __init__(self, table: WordTable, counting: bool, cfg: VocabConfig, part, n_workers: int = 1):
        self.table = table
        # --max-vocab-size bounds the words held by all workers together, not by each
        self.max_vocab = (max(1, cfg.max_vocab_size // n_workers) if cfg.max_vocab_size else 0) if counting else -1
        self.max_len = cfg.max_word_length or NO_LIMIT
        self.fold = FOLD_LOWER if cfg.lowercase else FOLD_NONE
        self.lowercase = cfg.lowercase
        self.part = part  # where the ids go (None: counting only)
        self.state = np.zeros(kernels.STATE_SIZE, np.int64)
        self.ids = np.zeros(0, np.int32)
        self.sents = np.zeros(0, np.int32)
        self.n_bad = 0
        self.stop: Optional[threading.Event] = None

    def run(self, spans: List[Span], stop: Optional[threading.Event] = None) -> "_Worker":
        """Scan the spans; stop (set by the caller on an error or Ctrl-C) ends it at the next chunk."""
        self.stop = stop
        for span in spans:
            self._scan_span(span)
        return self

    def _scan_span(self, span: Span) -> None:
        first = span.start == 0
        self.state[kernels.ST_FILE_LINES] = 0
        self.check_line = corpus_module.UTF8_CHECK_LINES if first else -1
        self.file_bad = 0
        carry = b""
        for data in _read_ahead(_read_span(span)):
            if self.stop is not None and self.stop.is_set():
                raise _Stopped()
            if first:
                check_text(span.path, data[: 1 << 16])
                while data.startswith(BOM):
                    data = data[len(BOM):]
                first = False
            buf = carry + data if carry else data
            cut = buf.rfind(b"\n") + 1
            if cut == 0:  # a line longer than the buffer: cut after its last whitespace
                cut = max(buf.rfind(b" "), buf.rfind(b"\t")) + 1
                if cut == 0 and len(buf) > corpus_module.MAX_LINE_BYTES:
                    raise InputError(f"corpus file {span.path!r} has a 'word' of over "
                                     f"{corpus_module.MAX_LINE_BYTES >> 20} MiB with no space in it; is it a text file?")
            if cut:
                self._scan(span.path, buf, cut, closes=False)
            carry = buf[cut:]
        self._scan(span.path, carry, len(carry), closes=True)
        if self.check_line > 0:
            check_utf8(span.path, int(self.state[kernels.ST_FILE_LINES]), self.file_bad)

    def _out(self, n_bytes: int):
        if self.ids.shape[0] < n_bytes // 2 + 2:
            self.ids = np.zeros(n_bytes // 2 + 2, np.int32)
            self.sents = np.zeros(n_bytes // 2 + 2, np.int32)
        self.state[kernels.ST_IDS] = self.state[kernels.ST_SENTS] = 0
        return self.ids, self.sents, self.state

    def _scan(self, path: str, data: bytes, end: int, closes: bool) -> None:
        buf = np.frombuffer(data, np.uint8)
        out = self._out(end)
        pos = 0
        while True:
            status, pos, extra = kernels.scan_text(buf, pos, end, closes, self.table.arrays, out, self.fold,
                                                   self.max_vocab, self.check_line, self.max_len)
            if status == kernels.DONE:
                break
            if status == kernels.GROW:
                self.table.grow(extra)
            elif status == kernels.FALLBACK:
                self._fallback(data[pos:extra], out)
                pos = extra
            else:  # CHECK: the file's first lines are read
                check_utf8(path, self.check_line, self.file_bad)
                self.check_line = -1
        if self.part is not None:
            n, m = int(self.state[kernels.ST_IDS]), int(self.state[kernels.ST_SENTS])
            self.part.add(self.ids[:n].copy(), self.sents[:m].copy())  # lengths are stored as int32
        to_new = self.table.compact() if self.max_vocab > 0 else None  # pruned words' records freed
        if to_new is not None and self.part is not None:
            self.part.renumber(to_new)

    def _fallback(self, raw: bytes, out) -> None:
        """A line the kernel hands back: decoded (bad bytes replaced, counted) and split in Python."""
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("utf-8", errors="replace")
            self.n_bad += 1
            self.file_bad += 1
        if self.lowercase:
            line = line.lower()
        self.table.scan_tokens(line.split(), out, self.max_vocab, self.max_len)

    def stats(self) -> CorpusStats:
        s = self.state
        return CorpusStats(n_lines=int(s[kernels.ST_LINES]), n_tokens=int(s[kernels.ST_TOKENS]),
                           n_bad_utf8_lines=self.n_bad, n_split_lines=int(s[kernels.ST_SPLIT]),
                           n_long_tokens=int(s[kernels.ST_LONG]))


def run_workers(workers, groups: List[List[Span]], stats: CorpusStats) -> None:
    """Run each worker (its run(spans, stop) and stats()) on its group of spans, in threads; the
    first error, or Ctrl-C here, stops the others within a chunk. Adds their stats to stats.
    The vocabulary's readers and the phrase counters (phrases_scan.py) both run this way."""
    if len(groups) == 1:
        workers[0].run(groups[0])
    else:
        stop = threading.Event()
        with ThreadPoolExecutor(len(groups)) as pool:
            futures = [pool.submit(w.run, g, stop) for w, g in zip(workers, groups)]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
                failed = [f.exception() for f in futures if f.done() and f.exception() is not None]
                if failed:
                    raise failed[0]
            except BaseException:  # a worker's error, or Ctrl-C here: the others stop within a chunk
                stop.set()
                raise
    for w in workers:
        s = w.stats()
        stats.n_lines += s.n_lines
        stats.n_tokens += s.n_tokens
        stats.n_bad_utf8_lines += s.n_bad_utf8_lines
        stats.n_split_lines += s.n_split_lines
        stats.n_long_tokens += s.n_long_tokens
    stats.n_readers = len(workers)


def scan_files(paths: Sequence[str], cfg: VocabConfig, stats: CorpusStats, given: Optional[WordTable] = None,
               builder: Optional[IdStreamBuilder] = None, threads: int = 1
               ) -> Tuple[WordTable, List[Optional[np.ndarray]]]:
    """Count (or, with a given table, look up) every word of the files, adding to stats.

    Returns the merged table and, for each builder part, the map from its provisional ids to the
    merged table's (None: the same ids).
    """
    groups = plan_spans(paths, reading_threads(cfg, threads) if given is None else threads)
    workers = []
    for k, _ in enumerate(groups):
        table = given if given is not None else WordTable()
        workers.append(_Worker(table, given is None, cfg, builder.part(k) if builder is not None else None,
                               len(groups)))
    run_workers(workers, groups, stats)
    if given is not None:
        return given, [None] * len(workers)
    merged, maps = merge_tables([w.table for w in workers])
    merged.reduce(cfg.max_vocab_size)
    stats.n_pruned = sum(w.table.n_pruned for w in workers)  # the first table is the merged one
    return merged, maps


def merge_tables(tables: List[WordTable]) -> Tuple[WordTable, List[Optional[np.ndarray]]]:
    """Merge tables of consecutive spans into the first, in corpus order; returns it and, for each
    table, the map from its ids to the merged ids (None: the same).

    Pairwise in rounds (1+2, 3+4, ...; then the pairs' results), each round's merges in parallel
    threads: with T tables a round costs one merge, not T - 1. A left table absorbs its right
    neighbour, so a word's merged id still follows its first occurrence in the corpus.
    """
    maps: List[Optional[np.ndarray]] = [None] * len(tables)
    nodes = [(table, [k]) for k, table in enumerate(tables)]  # (table, the original tables in it)
    with ThreadPoolExecutor(max(1, len(tables) // 2)) as pool:
        while len(nodes) > 1:
            pairs = [(nodes[i], nodes[i + 1]) for i in range(0, len(nodes) - 1, 2)]
            to_left = list(pool.map(lambda pair: pair[0][0].merge(pair[1][0]), pairs))
            merged_nodes = []
            for ((left, left_members), (_, right_members)), to_ours in zip(pairs, to_left):
                for k in right_members:
                    previous = maps[k]
                    maps[k] = to_ours if previous is None else compose(previous, to_ours)
                merged_nodes.append((left, left_members + right_members))
            nodes = merged_nodes + nodes[2 * len(pairs):]
    return nodes[0][0], maps
