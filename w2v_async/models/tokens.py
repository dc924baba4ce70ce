"""Tokenizing and counting raw bytes: a word table (open addressing) and the text scanner.

The scanner splits lines on '\\n' and tokens on exactly the characters Python's str.split()
treats as whitespace, so it gives the same tokens as ``line.decode().split()``. A line it cannot
settle alone (invalid UTF-8, or non-ASCII text to lowercase) is handed back to the caller, which
splits it in Python and feeds the tokens back (``count_tokens``). Bounded memory follows word2vec.c's
ReduceVocab: past max_vocab live words, words with count <= min_reduce are dropped and min_reduce
grows by one.

The table is a tuple of arrays the caller owns and grows (TABLE): slots (-1 empty, else a word's
id and a tag of its hash; a power of two long); records, a row per word: its first 8 bytes, its
bytes' offset and length in pool, and its count
(-1: dropped), side by side so that a look-up touches one cache line of them; pool, the words'
bytes; meta, the scalars (META_*).
"""

import numpy as np
from numba import njit, types

from .common import KERNEL_OPTS, prefetch_item, prefetch_row

TABLE = types.Tuple((types.int64[::1], types.int64[:, ::1], types.uint8[::1], types.int64[::1]))  # slots, records,
# pool, meta
REC_HEAD, REC_OFFSET, REC_LEN, REC_COUNT = range(4)
REC_SIZE = 4
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
PREFETCH_BATCH = 16  # tokens whose table lines are fetched together
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
IDENTITY = np.arange(256).astype(np.uint8)


# The per-token helpers are inlined into their callers (inline="always"): a call would pass the
# table's arrays and take and drop a reference to each, costing more than the lookup itself.
@njit(inline="always", **KERNEL_OPTS)  # typed by its callers: buf is read-only text or a table's pool
def word_hash(buf, start, end, fold):
    """(FNV-1a hash of fold[buf[start:end]], its first 8 bytes packed little-endian)."""
    h = FNV_OFFSET
    head = np.uint64(0)
    for k in range(start, end):
        b = np.uint64(fold[buf[k]])
        h = (h ^ b) * FNV_PRIME
        if k - start < 8:
            head |= b << np.uint64(8 * (k - start))
    return h, np.int64(head)


@njit(inline="always", **KERNEL_OPTS)
def _slot_of(h, mask):
    return np.int64((h ^ (h >> np.uint64(29))) & np.uint64(mask)), np.int64(h >> np.uint64(33))


@njit(inline="always", **KERNEL_OPTS)
def find_word(table, buf, start, end, fold):
    """(id of the word fold[buf[start:end]] or -1, its hash, the slot where it would go).

    A slot holds the word's id and 31 bits of its hash (a tag), so probing past other words reads
    slots only; a word of up to 8 bytes is compared in its record, a longer one in pool too.
    """
    h, head = word_hash(buf, start, end, fold)
    return find_hashed(table, buf, start, end, fold, h, head)


@njit(inline="always", **KERNEL_OPTS)
def find_hashed(table, buf, start, end, fold, h, head):
    """find_word, given the word's hash and head (word_hash)."""
    slots, records, pool, meta = table
    n = end - start
    slot, tag = _slot_of(h, slots.shape[0] - 1)
    mask = slots.shape[0] - 1
    while True:
        e = slots[slot]
        if e < 0:
            return -1, h, slot
        if (e >> 32) == tag:
            w = e & 0xFFFFFFFF
            if records[w, REC_HEAD] == head and records[w, REC_LEN] == n:
                off = records[w, REC_OFFSET]
                same = True
                for k in range(8, n):
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
    slots, records, pool, meta = table
    n = end - start
    w = meta[META_WORDS]
    off = meta[META_POOL]
    if w >= records.shape[0] or off + n > pool.shape[0] or 2 * (meta[META_LIVE] + 1) > slots.shape[0]:
        return NEED_ROOM
    for k in range(n):
        pool[off + k] = fold[buf[start + k]]
    records[w, REC_HEAD] = word_hash(pool, off, off + n, IDENTITY)[1]
    records[w, REC_OFFSET] = off
    records[w, REC_LEN] = n
    records[w, REC_COUNT] = 0
    slots[slot] = (np.int64(h >> np.uint64(33)) << 32) | w
    meta[META_WORDS] = w + 1
    meta[META_POOL] = off + n
    meta[META_LIVE] += 1
    return w


@njit(types.void(TABLE), **KERNEL_OPTS)
def rebuild_slots(table):
    """Refill slots (already resized by the caller) from the live words."""
    slots, records, pool, meta = table
    slots[:] = -1
    mask = slots.shape[0] - 1
    for w in range(meta[META_WORDS]):
        if records[w, REC_COUNT] < 0:
            continue
        off = records[w, REC_OFFSET]
        h = word_hash(pool, off, off + records[w, REC_LEN], IDENTITY)[0]
        slot, tag = _slot_of(h, mask)
        while slots[slot] >= 0:
            slot = (slot + 1) & mask
        slots[slot] = (tag << 32) | w


@njit(types.void(TABLE, types.int64), **KERNEL_OPTS)
def reduce_vocab(table, max_vocab):
    """word2vec.c ReduceVocab, repeated while more than max_vocab words live."""
    records, meta = table[1], table[3]
    while meta[META_LIVE] > max_vocab:
        for w in range(meta[META_WORDS]):
            if 0 <= records[w, REC_COUNT] <= meta[META_MIN_REDUCE]:
                records[w, REC_COUNT] = -1
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
                w, h, slot = find_hashed(table, buf, start, ends[b], fold, hashes[b], heads[b])
                if w < 0 and insert:
                    w = add_word(table, buf, start, ends[b], fold, h, slot)
                    if w == NEED_ROOM:
                        return GROW, start, ends[b] - start
                # _emit(table, w, out, max_vocab, insert), written out: inlined by numba it costs 3x
                if insert:
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
def scan_tokens(buf, ends, first, table, out, max_vocab):
    """Count (max_vocab < 0: look up) tokens given by their ends in buf, from token number first,
    into the current sentence. Returns (status, token to resume from)."""
    identity = IDENTITY
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
    identity = IDENTITY
    records, pool = src[1], src[2]
    for w in range(first, src[3][META_WORDS]):
        if records[w, REC_COUNT] < 0:
            local_to_dst[w] = -1
            continue
        start = records[w, REC_OFFSET]
        end = start + records[w, REC_LEN]
        v, h, slot = find_word(dst, pool, start, end, identity)
        if v < 0:
            v = add_word(dst, pool, start, end, identity, h, slot)
        if v == NEED_ROOM:
            return GROW, w
        dst[1][v, REC_COUNT] += records[w, REC_COUNT]
        local_to_dst[w] = v
    return DONE, src[3][META_WORDS]
