"""Tokenizing and counting raw bytes: a word table (open addressing) and the text scanner.

The scanner splits lines on '\\n' and tokens on exactly the characters Python's str.split()
treats as whitespace, so it gives the same tokens as ``line.decode().split()``. A line it cannot
settle alone (invalid UTF-8, or non-ASCII text to lowercase) is handed back to the caller, which
splits it in Python and feeds the tokens back (``count_tokens``). Bounded memory follows word2vec.c's
ReduceVocab: past max_vocab live words, words with count <= min_reduce are dropped and min_reduce
grows by one.

The table is a tuple of arrays the caller owns and grows (TABLE): slots (int32, -1 empty, a power
of two long), and per word: its hash, its bytes' offset and length in pool, and its count (-1: dropped).
meta holds the scalars (META_*).
"""

import numpy as np
from numba import njit, types

from .common import KERNEL_OPTS

TABLE = types.Tuple((types.int32[::1], types.uint64[::1], types.int64[::1], types.int32[::1], types.int64[::1],
                     types.uint8[::1], types.int64[::1]))  # slots, hashes, offsets, lens, counts, pool, meta
TEXT = types.Array(types.uint8, 1, "C", readonly=True)  # bytes read from a file
META_WORDS, META_POOL, META_LIVE, META_MIN_REDUCE, META_PRUNED = range(5)
META_SIZE = 5

# out: ids (int32, a word id per token, -1 unknown), sentence lengths (int32), and the scan state
OUT = types.Tuple((types.int32[::1], types.int32[::1], types.int64[::1]))
ST_IDS, ST_SENTS, ST_SENT_TOKENS, ST_LINE_TOKENS, ST_LINES, ST_TOKENS, ST_SPLIT, ST_FILE_LINES, ST_OPEN = range(9)
STATE_SIZE = 9

# what a scan returns first: the text is done, the table needs room, a line needs Python, a checkpoint line
DONE, GROW, FALLBACK, CHECK = 0, 1, 2, 3
NEED_ROOM = -2

MAX_SENTENCE_TOKENS = 10_000
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)


# The per-token helpers are inlined into their callers (inline="always"): a call would pass the
# table's arrays and take and drop a reference to each, costing more than the lookup itself.
@njit(inline="always", **KERNEL_OPTS)  # typed by its callers: buf is read-only text or a table's pool
def find_word(table, buf, start, end, fold):
    """(id of the word fold[buf[start:end]] or -1, its hash, the slot where it would go)."""
    slots, hashes, offsets, lens, counts, pool, meta = table
    h = FNV_OFFSET
    for k in range(start, end):
        h = (h ^ np.uint64(fold[buf[k]])) * FNV_PRIME
    n = end - start
    mask = slots.shape[0] - 1
    slot = np.int64((h ^ (h >> np.uint64(29))) & np.uint64(mask))
    while True:
        w = slots[slot]
        if w < 0:
            return -1, h, slot
        if hashes[w] == h and lens[w] == n:
            off = offsets[w]
            same = True
            for k in range(n):
                if pool[off + k] != fold[buf[start + k]]:
                    same = False
                    break
            if same:
                return w, h, slot
        slot = (slot + 1) & mask


@njit(inline="always", **KERNEL_OPTS)
def add_word(table, buf, start, end, fold, h, slot):
    """Add the word fold[buf[start:end]] (count 0) at slot, found empty by find_word; returns its
    id, or NEED_ROOM when it does not fit: the caller grows the table and asks again."""
    slots, hashes, offsets, lens, counts, pool, meta = table
    n = end - start
    w = meta[META_WORDS]
    off = meta[META_POOL]
    if w >= hashes.shape[0] or off + n > pool.shape[0] or 2 * (meta[META_LIVE] + 1) > slots.shape[0]:
        return NEED_ROOM
    for k in range(n):
        pool[off + k] = fold[buf[start + k]]
    hashes[w] = h
    offsets[w] = off
    lens[w] = n
    counts[w] = 0
    slots[slot] = w
    meta[META_WORDS] = w + 1
    meta[META_POOL] = off + n
    meta[META_LIVE] += 1
    return w


@njit(types.void(TABLE), **KERNEL_OPTS)
def rebuild_slots(table):
    """Refill slots (already resized by the caller) from the live words."""
    slots, hashes, offsets, lens, counts, pool, meta = table
    slots[:] = -1
    mask = slots.shape[0] - 1
    for w in range(meta[META_WORDS]):
        if counts[w] < 0:
            continue
        h = hashes[w]
        slot = np.int64((h ^ (h >> np.uint64(29))) & np.uint64(mask))
        while slots[slot] >= 0:
            slot = (slot + 1) & mask
        slots[slot] = w


@njit(types.void(TABLE, types.int64), **KERNEL_OPTS)
def reduce_vocab(table, max_vocab):
    """word2vec.c ReduceVocab, repeated while more than max_vocab words live."""
    counts, meta = table[4], table[6]
    while meta[META_LIVE] > max_vocab:
        for w in range(meta[META_WORDS]):
            if 0 <= counts[w] <= meta[META_MIN_REDUCE]:
                counts[w] = -1
                meta[META_LIVE] -= 1
                meta[META_PRUNED] += 1
        meta[META_MIN_REDUCE] += 1
    rebuild_slots(table)


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
    """Count token w (when inserting) and append it to the current sentence."""
    ids, sents, state = out
    if insert:
        table[4][w] += 1
        if max_vocab > 0 and table[6][META_LIVE] > max_vocab:
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
                                          types.uint8[::1], types.int64, types.int64)


@njit(SCAN_SIG, **KERNEL_OPTS)
def scan_text(buf, pos, end, closes, table, out, fold, max_vocab, check_line):
    """Tokenize buf[pos:end] and count its words (max_vocab < 0: look them up only, no counting).

    Lines end at '\\n'; the last one ends at ``end`` only when closes (the end of the file), else
    it goes on in the next call (the caller cuts at whitespace; the line stays open). Appends word
    ids and sentence lengths to out and advances its state. check_line: return CHECK after that line of the file.
    Returns (status, position to resume from, then: the line's end for FALLBACK, the new word's
    length for GROW).
    """
    ids, sents, state = out
    counts, meta = table[4], table[6]
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
        while True:
            while j < line_end:
                gap = _space(buf, j, line_end)
                if gap == 0:
                    break
                j += gap
            if j >= line_end:
                break
            start = j
            j += 1
            while j < line_end and _space(buf, j, line_end) == 0:
                j += 1
            w, h, slot = find_word(table, buf, start, j, fold)
            if w < 0 and insert:
                w = add_word(table, buf, start, j, fold, h, slot)
                if w == NEED_ROOM:
                    return GROW, start, j - start
            # _emit(table, w, out, max_vocab, insert), written out: inlined by numba it costs 3x
            if insert:
                counts[w] += 1
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


@njit(types.UniTuple(types.int64, 2)(TEXT, types.int64[::1], types.int64, TABLE, OUT, types.int64),
      **KERNEL_OPTS)
def scan_tokens(buf, ends, first, table, out, max_vocab):
    """Count (max_vocab < 0: look up) tokens given by their ends in buf, from token number first,
    into the current sentence. Returns (status, token to resume from)."""
    identity = np.arange(256).astype(np.uint8)
    insert = max_vocab >= 0
    for t in range(first, ends.shape[0]):
        start = ends[t - 1] if t > 0 else 0
        w, h, slot = find_word(table, buf, start, ends[t], identity)
        if w < 0 and insert:
            w = add_word(table, buf, start, ends[t], identity, h, slot)
        if w == NEED_ROOM:
            return GROW, t
        _emit(table, w, out, max_vocab, insert)
    return DONE, ends.shape[0]


@njit(types.UniTuple(types.int64, 2)(TABLE, TABLE, types.int32[::1], types.int64), **KERNEL_OPTS)
def merge_table(dst, src, local_to_dst, first):
    """Add src's live words and counts into dst (new words in src's id order), from src word first;
    local_to_dst[w] = dst's id of src word w (-1: dropped in src). Returns (status, word to resume from)."""
    identity = np.arange(256).astype(np.uint8)
    offsets, lens, counts, pool = src[2], src[3], src[4], src[5]
    for w in range(first, src[6][META_WORDS]):
        if counts[w] < 0:
            local_to_dst[w] = -1
            continue
        v, h, slot = find_word(dst, pool, offsets[w], offsets[w] + lens[w], identity)
        if v < 0:
            v = add_word(dst, pool, offsets[w], offsets[w] + lens[w], identity, h, slot)
        if v == NEED_ROOM:
            return GROW, w
        dst[4][v] += counts[w]
        local_to_dst[w] = v
    return DONE, src[6][META_WORDS]
