"""The byte reader's spans and workers (data/scan.py) running the phrase kernels: counting words and
bigrams (models/phrases.py), and writing text with phrases joined (models/phrases_apply.py).

Counting: each worker counts its spans into tables of its own (words, connector sequences,
bigrams by word ids), pruned within its share of --max-vocab-size; the tables are then merged in
corpus order, the bigrams' ids mapped as the words' are. Joining: each worker writes its spans to
a file of its own, and the files are concatenated in order.
"""

import os
import shutil
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..config import VocabConfig
from ..errors import InputError
from ..models import phrases as kernels
from ..models import phrases_apply, tokens
from .corpus import CorpusStats, check_utf8
from .phrases_table import best, scores
from .scan import (CHUNK_BYTES, Span, _size, _splittable, _Worker, merge_tables, plan_spans, reading_threads,
                   run_workers)
from .words import FOLD_NONE, NO_LIMIT, WordTable

KEY_BYTES = 1 << 12  # a phrase candidate's bytes; grown when a longer one comes
NO_MAP = np.empty(0, np.int32)


def word_table(words: Sequence[str]) -> WordTable:
    """A table holding words without whitespace (connector words, or phrases to join), for look-ups
    only; encoded at once, not one by one (a pass at 100M tokens can find 500k phrases)."""
    table = WordTable()
    if not words:
        return table
    data = np.frombuffer(("\n".join(words) + "\n").encode("utf-8", "surrogatepass"), np.uint8)
    breaks = np.flatnonzero(data == 10)
    buf, ends = data[data != 10], breaks - np.arange(breaks.shape[0])  # the words back to back, where each ends
    out = (np.zeros(len(words), np.int32), np.zeros(len(words) // tokens.MAX_SENTENCE_TOKENS + 2, np.int32),
           np.zeros(tokens.STATE_SIZE, np.int64))
    first = 0
    while True:
        status, first = tokens.scan_tokens(buf, ends, first, table.arrays, out, 0, NO_LIMIT)
        if status == tokens.DONE:
            return table
        table.grow(int(ends[first] - (ends[first - 1] if first else 0)))


class _PhraseWorker(_Worker):
    """The byte reader's worker (spans, read-ahead, UTF-8 checks of each file's first lines),
    running a phrase kernel instead of the vocabulary's."""

    def __init__(self, table: WordTable, counting: bool, cfg: VocabConfig, n_workers: int, connectors: WordTable):
        super().__init__(table, counting, cfg, None, n_workers)
        self.connectors = connectors
        self.state = kernels.new_state()
        self.key = np.zeros(KEY_BYTES, np.uint8)

    def limits(self) -> np.ndarray:
        return np.array([max(self.max_vocab, 0), self.check_line, self.max_len], np.int64)

    def grow_key(self, n_bytes: int) -> None:
        if n_bytes > self.key.shape[0]:
            key = np.zeros(max(2 * self.key.shape[0], n_bytes), np.uint8)
            key[: self.key.shape[0]] = self.key
            self.key = key

    def _scan(self, path: str, data: bytes, end: int, closes: bool) -> None:
        self._run_kernel(path, data, end, closes, self.fold)
        self.after_chunk()

    def _run_kernel(self, path: str, data: bytes, end: int, closes: bool, fold: np.ndarray) -> None:
        buf = np.frombuffer(data, np.uint8)
        pos = 0
        while True:
            status, pos, extra = self.kernel(buf, pos, end, closes, fold)
            if status == kernels.DONE:
                return
            if status == kernels.FALLBACK:
                self._fallback(path, data[pos:extra])
                pos = extra
            elif status == kernels.CHECK:  # the file's first lines are read
                check_utf8(path, self.check_line, self.file_bad)
                self.check_line = -1
            else:
                self.make_room(status, extra)

    def _fallback(self, path: str, raw: bytes) -> None:
        """A line the kernel hands back: decoded (bad bytes replaced, counted), lowercased and split in
        Python, then given back to the kernel as its tokens joined by single spaces (valid UTF-8,
        already lowercased: the kernel reads it as it is)."""
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("utf-8", errors="replace")
            self.n_bad += 1
            self.file_bad += 1
        tokens = (line.lower() if self.lowercase else line).split()
        if tokens:
            joined = " ".join(tokens).encode("utf-8")
            self._run_kernel(path, joined, len(joined), False, FOLD_NONE)


class _CountWorker(_PhraseWorker):
    """Counts its spans' words and bigrams into tables of its own."""

    def __init__(self, cfg: VocabConfig, n_workers: int, connectors: WordTable, spans: List[Span],
                 spool: Optional[str] = None):
        super().__init__(WordTable(), True, cfg, n_workers, connectors)
        self.seqs = WordTable(words=16, pool=256)
        # room for a bigram per 10 bytes of text (up to 4M slots, 96 MB) at first: growing costs more than counting
        text = sum((s.end if s.end is not None else _size(s.path)) - s.start for s in spans)
        self.pairs = kernels.new_pairs(1 << min(max(int(text // 10).bit_length(), 16), 22))
        self.spool = open(spool, "wb") if spool else None  # a copy of the text read, for the next read
        self.line_open = False

    def _scan(self, path: str, data: bytes, end: int, closes: bool) -> None:
        if self.spool is not None:
            self.spool.write(memoryview(data)[:end])
            self.line_open = data[end - 1] != 10 if end else self.line_open
            if closes and self.line_open:  # a file's last line ends with it, not in the next file
                self.spool.write(b"\n")
                self.line_open = False
        super()._scan(path, data, end, closes)

    def kernel(self, buf, pos, end, closes, fold):
        return kernels.count_text(buf, pos, end, closes, (self.table.arrays, self.seqs.arrays, self.connectors.arrays),
                                  self.pairs, self.key, self.state, fold, self.limits())

    def make_room(self, status: int, n_bytes: int) -> None:
        if status == kernels.GROW:
            self.table.grow(n_bytes)
        elif status == kernels.GROW_SEQS:
            self.seqs.grow(n_bytes)
        elif status == kernels.GROW_PAIRS:
            self.pairs = kernels.grown_pairs(self.pairs)
        else:
            self.grow_key(n_bytes)

    def after_chunk(self) -> None:
        to_new = self.table.compact() if self.max_vocab > 0 else None  # pruned words' records freed
        if to_new is not None:
            kernels.rekey(self.pairs, to_new)
            if self.state[kernels.P_START]:
                word = to_new[self.state[kernels.P_WORD]]
                self.state[kernels.P_WORD] = word
                self.state[kernels.P_START] = word >= 0


class Counts:
    """A corpus's words, connector sequences and bigrams (models/phrases.py's tables)."""

    def __init__(self, words: WordTable, seqs: WordTable, pairs, n_tokens: int):
        self.words, self.seqs, self.pairs, self.n_tokens = words, seqs, pairs, n_tokens

    def __len__(self) -> int:
        """Keys held, words and bigrams: gensim's len(vocab), the original scorer's len_vocab."""
        return len(self.words) + int(self.pairs[1][kernels.PM_LIVE])

    def phrases(self, scoring: str, min_count: int, threshold: float, delimiter: str) -> Dict[str, Tuple[float, int]]:
        """{phrase: (score, count)} of the bigrams scoring above threshold (gensim's export_phrases)."""
        slots = self.pairs[0]
        rows = np.zeros((int(np.count_nonzero((slots[:, 0] >= 0) & (slots[:, 2] >= min_count))), 6), np.int64)
        rows = rows[: kernels.pair_counts(self.pairs, self.words.records, min_count, rows)]
        score = scores(scoring, rows[:, 3], rows[:, 4], rows[:, 5], min_count, len(self), self.n_tokens)
        rows, score = rows[score > threshold], score[score > threshold]
        delim = np.frombuffer(delimiter.encode("utf-8"), np.uint8).copy()
        lengths, seq_lengths = self.words.records[:, tokens.REC_LEN], self.seqs.records[:, tokens.REC_LEN]
        size = int(lengths[rows[:, 0]].sum() + lengths[rows[:, 1]].sum() + rows.shape[0] * (2 * delim.shape[0] + 1)
                   + seq_lengths[rows[rows[:, 2] > 0, 2] - 1].sum() * max(delim.shape[0], 1))
        text = np.empty(size, np.uint8)
        text = text[: phrases_apply.phrase_text(self.words.arrays, self.seqs.arrays, rows, delim, text)]
        names = text.tobytes().decode("utf-8", "surrogatepass").split("\n")[:-1]
        found = dict(zip(names, zip(score.tolist(), rows[:, 5].tolist())))
        if len(found) < len(names):  # tokens holding the delimiter: "a_b c" and "a b_c" make one phrase
            found = best(list(zip(names, score.tolist(), rows[:, 5].tolist())))
        return found


def count_bigrams(paths: Sequence[str], cfg: VocabConfig, connectors: WordTable, threads: int, stats: CorpusStats,
                  spool: Optional[Callable[[], str]] = None) -> Tuple[Counts, Optional[List[str]]]:
    """Count the files' words and bigrams (connector words are not counted: they join bigrams).

    spool: when the files are read again and one of them is compressed (or stdin), a maker of
    temporary paths: each reading thread also writes the text it reads to one, and the second read
    is of these plain files, in parallel spans, without decompressing again. Returns the counts
    and the spooled files in corpus order (None: not spooled).
    """
    groups = plan_spans(paths, reading_threads(cfg, threads))  # each counting reader holds 1M keys or more
    spools = [spool() for _ in groups] if spool and not all(map(_splittable, paths)) else None
    workers = [_CountWorker(cfg, len(groups), connectors, g, spools[k] if spools else None)
               for k, g in enumerate(groups)]
    try:
        run_workers(workers, groups, stats)
    finally:
        for w in workers:
            if w.spool is not None:
                w.spool.close()
    pruned = sum(w.table.n_pruned + int(w.pairs[1][kernels.PM_PRUNED]) for w in workers)
    words, word_maps = merge_tables([w.table for w in workers])
    seqs, seq_maps = merge_tables([w.seqs for w in workers])
    pairs = workers[0].pairs
    for k in range(1, len(workers)):
        first = 0
        while first >= 0:
            first = kernels.merge_pairs(pairs, workers[k].pairs, word_maps[k], seq_maps[k] if seq_maps[k] is not None
                                        else NO_MAP, first)
            if first >= 0:
                pairs = kernels.grown_pairs(pairs)
        workers[k].pairs = None
    if cfg.max_vocab_size and len(words) + pairs[1][kernels.PM_LIVE] > cfg.max_vocab_size:
        before = words.n_pruned + int(pairs[1][kernels.PM_PRUNED])
        kernels.prune(words.arrays, pairs, cfg.max_vocab_size)
        pruned += words.n_pruned + int(pairs[1][kernels.PM_PRUNED]) - before
    stats.n_pruned = pruned
    return Counts(words, seqs, pairs, sum(int(w.state[kernels.ST_TOKENS]) for w in workers)), spools


class _JoinWorker(_PhraseWorker):
    """Writes its spans with the phrases joined to sink (a binary file)."""

    def __init__(self, cfg: VocabConfig, phrases: WordTable, connectors: WordTable, delimiter: bytes, sink):
        super().__init__(phrases, False, cfg, 1, connectors)
        self.sink = sink
        self.delim = np.frombuffer(delimiter, np.uint8).copy()
        self.parts = np.zeros(kernels.MAX_SENTENCE_TOKENS + 2, np.int64)
        self.out = np.zeros(CHUNK_BYTES + (1 << 16), np.uint8)

    def kernel(self, buf, pos, end, closes, fold):
        return phrases_apply.apply_text(buf, pos, end, closes, (self.table.arrays, self.connectors.arrays),
                                        (self.key, self.parts, self.out), self.delim, self.state, fold, self.limits())

    def make_room(self, status: int, n_bytes: int) -> None:
        if status == phrases_apply.GROW:
            self.grow_key(n_bytes)
            return
        self.write()  # FLUSH
        if n_bytes > self.out.shape[0]:
            self.out = np.zeros(2 * n_bytes, np.uint8)

    def write(self) -> None:
        n = int(self.state[kernels.P_OUT])
        if n:
            self.sink.write(self.out[:n])
            self.state[kernels.P_OUT] = 0

    def after_chunk(self) -> None:
        self.write()


def _append(dst, src) -> None:
    """Append the file src (read from its start) to dst."""
    dst.flush()
    src.seek(0)
    try:
        while os.copy_file_range(src.fileno(), dst.fileno(), 1 << 30):
            pass
    except (AttributeError, OSError):  # no copy_file_range here (or across these filesystems)
        src.seek(0)
        shutil.copyfileobj(src, dst, 1 << 22)
    dst.flush()


def join_phrases(paths: Sequence[str], dest: str, phrases: Sequence[str], connectors: WordTable, cfg: VocabConfig,
                 delimiter: str, threads: int, stats: CorpusStats) -> int:
    """Write the files' text to dest with the phrases joined; returns how many were joined."""
    table = word_table(phrases)
    groups = plan_spans(paths, threads)
    try:
        with open(dest, "wb") as first:
            sinks = [first] + [tempfile.TemporaryFile(dir=os.path.dirname(os.path.abspath(dest))) for _ in groups[1:]]
            try:
                workers = [_JoinWorker(cfg, table, connectors, delimiter.encode("utf-8"), sink) for sink in sinks]
                run_workers(workers, groups, stats)
                for sink in sinks[1:]:  # each part freed once appended: the peak is the text and one part
                    _append(first, sink)
                    sink.close()
            finally:
                for sink in sinks[1:]:
                    sink.close()
    except OSError as e:
        raise InputError(f"cannot write {dest!r}: {e}; free some space or choose another -o.") from e
    return int(sum(w.state[kernels.P_JOINED] for w in workers))
