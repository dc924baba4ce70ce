"""The word table the token kernels count into: open addressing over a tuple of arrays the caller
owns and grows (TABLE), with word2vec.c's ReduceVocab pruning and compaction.

slots: -1 empty, else a word's id and a tag of its hash (a power of two long); records: a row per
word, its first 8 bytes, its bytes' offset and length in pool, and its count (-1: dropped), side
by side so that a look-up touches one cache line of them; pool: the words' bytes; meta: the
scalars (META_*). Past max_vocab live words, words with count <= min_reduce are dropped and
min_reduce grows by one.
"""

import numpy as np
from numba import njit, types

from .common import KERNEL_OPTS

TABLE = types.Tuple((types.int64[::1], types.int64[:, ::1], types.uint8[::1], types.int64[::1]))  # slots, records,
# pool, meta
REC_HEAD, REC_OFFSET, REC_LEN, REC_COUNT = range(4)
REC_SIZE = 4
META_WORDS, META_POOL, META_LIVE, META_MIN_REDUCE, META_PRUNED = range(5)
META_SIZE = 5
DONE, GROW = 0, 1  # what a kernel that may run out of room returns first
NEED_ROOM = -2
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


@njit(inline="always", **KERNEL_OPTS)
def _put(table, w):
    """Put live word w into the slots, at the first free one of its probe sequence."""
    slots, records, pool = table[0], table[1], table[2]
    mask = slots.shape[0] - 1
    off = records[w, REC_OFFSET]
    h = word_hash(pool, off, off + records[w, REC_LEN], IDENTITY)[0]
    slot, tag = _slot_of(h, mask)
    while slots[slot] >= 0:
        slot = (slot + 1) & mask
    slots[slot] = (tag << 32) | w


@njit(types.void(TABLE), **KERNEL_OPTS)
def rebuild_slots(table):
    """Refill slots (already resized by the caller) from the live words."""
    slots, records, pool, meta = table
    slots[:] = -1
    for w in range(meta[META_WORDS]):
        if records[w, REC_COUNT] >= 0:
            _put(table, w)


@njit(types.void(TABLE, types.int64), **KERNEL_OPTS)
def reduce_vocab(table, max_vocab):
    """word2vec.c ReduceVocab, repeated while more than max_vocab words live; then the pruned words'
    bytes are freed (the live words' move down in pool) and the slots rebuilt.

    Only the slots are read (they hold the live words), so a prune costs O(live words), not O(every
    word seen). A pruned word keeps its record (32 bytes, count -1): its provisional id is already
    in the encoded corpus, and ids are never renumbered while reading.
    """
    slots, records, pool, meta = table
    live = np.empty(meta[META_LIVE], np.int64)
    n = 0
    for s in range(slots.shape[0]):
        if slots[s] >= 0:
            live[n] = slots[s] & 0xFFFFFFFF
            n += 1
    while meta[META_LIVE] > max_vocab:
        kept = 0
        for k in range(n):
            w = live[k]
            if records[w, REC_COUNT] <= meta[META_MIN_REDUCE]:
                records[w, REC_COUNT] = -1
                meta[META_LIVE] -= 1
                meta[META_PRUNED] += 1
            else:
                live[kept] = w
                kept += 1
        n = kept
        meta[META_MIN_REDUCE] += 1
    live = np.sort(live[:n])  # in id order, which is pool order: each word moves down, never onto one unread
    end = 0
    for k in range(n):
        w = live[k]
        off, length = records[w, REC_OFFSET], records[w, REC_LEN]
        for b in range(length):
            pool[end + b] = pool[off + b]
        records[w, REC_OFFSET] = end
        end += length
    meta[META_POOL] = end
    slots[:] = -1
    for k in range(n):
        _put(table, live[k])


@njit(types.void(TABLE, types.int32[::1]), **KERNEL_OPTS)
def compact(table, to_new):
    """Drop the pruned words' records: the live words get ids 0..live-1 in their order, and
    to_new[w] (int32[the ids before]) is word w's new id, -1 for a pruned word."""
    slots, records, pool, meta = table
    n = 0
    end = 0
    for w in range(meta[META_WORDS]):
        if records[w, REC_COUNT] < 0:
            to_new[w] = -1
            continue
        off, length = records[w, REC_OFFSET], records[w, REC_LEN]
        for b in range(length):  # w's bytes lie at or after end: moving down never overwrites unread bytes
            pool[end + b] = pool[off + b]
        records[n, REC_HEAD] = records[w, REC_HEAD]
        records[n, REC_OFFSET] = end
        records[n, REC_LEN] = length
        records[n, REC_COUNT] = records[w, REC_COUNT]
        to_new[w] = n
        n += 1
        end += length
    meta[META_WORDS] = n
    meta[META_POOL] = end
    slots[:] = -1
    for w in range(n):
        _put(table, w)


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
