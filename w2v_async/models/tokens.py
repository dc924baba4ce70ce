"""Tokenizing and counting raw bytes: the text scanner, counting into a word table (word_table.py).

The scanner splits lines on '\\n' and tokens on exactly the characters Python's str.split()
treats as whitespace, so it gives the same tokens as ``line.decode().split()``. A line it cannot
settle alone (invalid UTF-8, or non-ASCII text to lowercase) is handed back to the caller, which
splits it in Python and feeds the tokens back (``scan_tokens``). The table's kernels and constants
(TABLE, REC_*, META_*) live in word_table.py and are re-exported here.
"""

import numpy as np
from numba import njit, types

from .common import KERNEL_OPTS, prefetch_item, prefetch_row
from .word_table import (DONE, GROW, IDENTITY, META_LIVE, META_MIN_REDUCE, META_POOL, META_PRUNED, META_SIZE,  # noqa: F401
                         META_WORDS, NEED_ROOM, REC_COUNT, REC_HEAD, REC_LEN, REC_OFFSET, REC_SIZE, TABLE, _slot_of,
                         add_word, compact, find_hashed, find_word, merge_table, rebuild_slots, reduce_vocab,
                         word_hash)

TEXT = types.Array(types.uint8, 1, "C", readonly=True)  # bytes read from a file

# out: ids (int32, a word id per token, -1 unknown), sentence lengths (int32), and the scan state
OUT = types.Tuple((types.int32[::1], types.int32[::1], types.int64[::1]))
ST_IDS, ST_SENTS, ST_SENT_TOKENS, ST_LINE_TOKENS, ST_LINES, ST_TOKENS, ST_SPLIT, ST_FILE_LINES, ST_OPEN, ST_LONG = \
    range(10)
STATE_SIZE = 10

# what a scan returns first: the text is done, the table needs room, a line needs Python, a checkpoint line
FALLBACK, CHECK = 2, 3  # after word_table's DONE, GROW

MAX_SENTENCE_TOKENS = 10_000
PREFETCH_BATCH = 16  # tokens whose table lines are fetched together


@njit(inline="always", **KERNEL_OPTS)
def utf8_valid(buf, start, end):
    """Whether buf[start:end] is strict UTF-8, as Python's decoder accepts it (no surrogates,
    no overlong forms, nothing above U+10FFFF)."""
    i = start
    while i < end:
        b = buf[i]
        if b < 0x80:
            i += 1
            continue
        if 0xC2 <= b <= 0xDF:
            n, lo, hi = 1, 0x80, 0xBF
        elif b == 0xE0:
            n, lo, hi = 2, 0xA0, 0xBF
        elif 0xE1 <= b <= 0xEC or 0xEE <= b <= 0xEF:
            n, lo, hi = 2, 0x80, 0xBF
        elif b == 0xED:
            n, lo, hi = 2, 0x80, 0x9F
        elif b == 0xF0:
            n, lo, hi = 3, 0x90, 0xBF
        elif 0xF1 <= b <= 0xF3:
            n, lo, hi = 3, 0x80, 0xBF
        elif b == 0xF4:
            n, lo, hi = 3, 0x80, 0x8F
        else:
            return False
        if i + n >= end:
            return False
        if not lo <= buf[i + 1] <= hi:
            return False
        for k in range(2, n + 1):
            if not 0x80 <= buf[i + k] <= 0xBF:
                return False
        i += n + 1
    return True


@njit(inline="always", **KERNEL_OPTS)
def _space(buf, i, end):
    """Bytes of the whitespace character at buf[i], 0 if none (space_length, fast for ASCII)."""
    b = buf[i]
    if b < 0x80:
        return 1 if b == 32 or 9 <= b <= 13 or 28 <= b <= 31 else 0
    return space_length(buf, i, end)


@njit(inline="always", **KERNEL_OPTS)
def space_length(buf, i, end):
    """Bytes of the whitespace character at buf[i] (str.isspace: ASCII, U+0085, U+00A0, U+1680,
    U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000), 0 if it starts none. UTF-8 input."""
    b = buf[i]
    if b == 32 or 9 <= b <= 13 or 28 <= b <= 31:
        return 1
    if b < 0xC2 or i + 1 >= end:
        return 0
    c = buf[i + 1]
    if b == 0xC2:
        return 2 if c == 0x85 or c == 0xA0 else 0
    if i + 2 >= end:
        return 0
    d = buf[i + 2]
    if b == 0xE1:
        return 3 if c == 0x9A and d == 0x80 else 0
    if b == 0xE2:
        if c == 0x80 and (d <= 0x8A or d == 0xA8 or d == 0xA9 or d == 0xAF):
            return 3
        return 3 if c == 0x81 and d == 0x9F else 0
    if b == 0xE3:
        return 3 if c == 0x80 and d == 0x80 else 0
    return 0


@njit(types.void(TABLE, types.int64, OUT, types.int64, types.boolean), **KERNEL_OPTS)
def _emit(table, w, out, max_vocab, insert):
    """Count token w (when inserting; w -1: a token too long to count) and append it to the current sentence."""
    ids, sents, state = out
    if insert and w >= 0:
        table[1][w, REC_COUNT] += 1
        if max_vocab > 0 and table[3][META_LIVE] > max_vocab:
            reduce_vocab(table, max_vocab)
    ids[state[ST_IDS]] = w
    state[ST_IDS] += 1
    state[ST_TOKENS] += 1
    state[ST_LINE_TOKENS] += 1
    state[ST_SENT_TOKENS] += 1
    if state[ST_SENT_TOKENS] == MAX_SENTENCE_TOKENS:  # a longer line is split, never cut
        sents[state[ST_SENTS]] = MAX_SENTENCE_TOKENS
        state[ST_SENTS] += 1
        state[ST_SENT_TOKENS] = 0


@njit(inline="always", **KERNEL_OPTS)
def end_line(out, check_line):
    """Close the current line; True when it is the file's check_line-th."""
    ids, sents, state = out
    if state[ST_SENT_TOKENS] > 0:
        sents[state[ST_SENTS]] = state[ST_SENT_TOKENS]
        state[ST_SENTS] += 1
        state[ST_SENT_TOKENS] = 0
    if state[ST_LINE_TOKENS] > MAX_SENTENCE_TOKENS:
        state[ST_SPLIT] += 1
    state[ST_LINE_TOKENS] = 0
    state[ST_LINES] += 1
    state[ST_FILE_LINES] += 1
    state[ST_OPEN] = 0
    return state[ST_FILE_LINES] == check_line


SCAN_SIG = types.UniTuple(types.int64, 3)(TEXT, types.int64, types.int64, types.boolean, TABLE, OUT,
                                          types.uint8[::1], types.int64, types.int64, types.int64)


@njit(SCAN_SIG, **KERNEL_OPTS)
def scan_text(buf, pos, end, closes, table, out, fold, max_vocab, check_line, max_len):
    """Tokenize buf[pos:end] and count its words (max_vocab < 0: look them up only, no counting).

    A token of more than max_len bytes is neither counted nor looked up: it becomes id -1 (as an
    unknown word) and is counted in state[ST_LONG].

    Lines end at '\\n'; the last one ends at ``end`` only when closes (the end of the file), else
    it goes on in the next call (the caller cuts at whitespace; the line stays open). Appends word
    ids and sentence lengths to out and advances its state. check_line: return CHECK after that line of the file.
    Returns (status, position to resume from, then: the line's end for FALLBACK, the new word's
    length for GROW).
    """
    ids, sents, state = out
    slots, records, meta = table[0], table[1], table[3]
    starts = np.empty(PREFETCH_BATCH, np.int64)
    ends = np.empty(PREFETCH_BATCH, np.int64)
    hashes = np.empty(PREFETCH_BATCH, np.uint64)
    heads = np.empty(PREFETCH_BATCH, np.int64)
    insert = max_vocab >= 0
    lowering = fold[65] == 97  # only ASCII lines are lowercased here
    i = pos
    while i < end:
        state[ST_OPEN] = 1
        line_end = i
        high = False
        while line_end < end and buf[line_end] != 10:
            if buf[line_end] >= 0x80:
                high = True
            line_end += 1
        if high and (lowering or not utf8_valid(buf, i, line_end)):
            return FALLBACK, i, line_end
        j = i
        while j < line_end:
            # a batch of up to PREFETCH_BATCH tokens: find them and hash them, fetch their slots'
            # and then their records' cache lines, and only then look them up, so that the memory
            # latency of rare words overlaps instead of adding up
            n_batch = 0
            while n_batch < PREFETCH_BATCH:
                while j < line_end:
                    gap = _space(buf, j, line_end)
                    if gap == 0:
                        break
                    j += gap
                if j >= line_end:
                    break
                starts[n_batch] = j
                j += 1
                while j < line_end and _space(buf, j, line_end) == 0:
                    j += 1
                ends[n_batch] = j
                h, head = word_hash(buf, starts[n_batch], j, fold)
                hashes[n_batch] = h
                heads[n_batch] = head
                prefetch_item(slots, _slot_of(h, slots.shape[0] - 1)[0])
                n_batch += 1
            for b in range(n_batch):
                slot, tag = _slot_of(hashes[b], slots.shape[0] - 1)
                e = slots[slot]
                if e >= 0 and (e >> 32) == tag:
                    prefetch_row(records, e & 0xFFFFFFFF)
            for b in range(n_batch):
                start = starts[b]
                if ends[b] - start > max_len:
                    w = -1
                    state[ST_LONG] += 1
                else:
                    w, h, slot = find_hashed(table, buf, start, ends[b], fold, hashes[b], heads[b])
                    if w < 0 and insert:
                        w = add_word(table, buf, start, ends[b], fold, h, slot)
                        if w == NEED_ROOM:
                            return GROW, start, ends[b] - start
                # _emit(table, w, out, max_vocab, insert), written out: inlined by numba it costs 3x
                if insert and w >= 0:
                    records[w, REC_COUNT] += 1
                    if max_vocab > 0 and meta[META_LIVE] > max_vocab:
                        reduce_vocab(table, max_vocab)
                ids[state[ST_IDS]] = w
                state[ST_IDS] += 1
                state[ST_TOKENS] += 1
                state[ST_LINE_TOKENS] += 1
                state[ST_SENT_TOKENS] += 1
                if state[ST_SENT_TOKENS] == MAX_SENTENCE_TOKENS:
                    sents[state[ST_SENTS]] = MAX_SENTENCE_TOKENS
                    state[ST_SENTS] += 1
                    state[ST_SENT_TOKENS] = 0
        i = line_end
        if i < end:  # at the '\n'
            i += 1
            if end_line(out, check_line):
                return CHECK, i, 0
    if closes and state[ST_OPEN] and end_line(out, check_line):
        return CHECK, i, 0
    return DONE, i, 0


@njit(**KERNEL_OPTS)  # typed on first use: only token lists (SentenceReader) need it
def scan_tokens(buf, ends, first, table, out, max_vocab, max_len):
    """Count (max_vocab < 0: look up) tokens given by their ends in buf, from token number first,
    into the current sentence; one of more than max_len bytes becomes -1 (as scan_text). Returns
    (status, token to resume from)."""
    identity = IDENTITY
    insert = max_vocab >= 0
    for t in range(first, ends.shape[0]):
        start = ends[t - 1] if t > 0 else 0
        if ends[t] - start > max_len:
            out[2][ST_LONG] += 1
            _emit(table, -1, out, max_vocab, insert)
            continue
        w, h, slot = find_word(table, buf, start, ends[t], identity)
        if w < 0 and insert:
            w = add_word(table, buf, start, ends[t], identity, h, slot)
        if w == NEED_ROOM:
            return GROW, t
        _emit(table, w, out, max_vocab, insert)
    return DONE, ends.shape[0]

