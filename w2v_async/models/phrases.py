"""Phrase detection on raw bytes (gensim Phrases, word2vec.c word2phrase): counting words and bigrams.

Lines and tokens are split exactly as tokens.scan_text splits them; a line the kernel cannot
settle comes back to the caller, which splits it in Python and passes its tokens back joined by
single spaces. A sentence is a line, or 10,000 tokens of a longer one; no bigram crosses its end.

Words are counted in a word table (word_table.py), bigrams in a pair table of their words' ids:
PAIRS = (slots int64[capacity, 3]: first id << 32 | last id (-1: empty), connector sequence
(0: none, else its id in the sequence table + 1), count; meta int64[PAIR_META]). Connector words
(gensim's connector_words) are not counted; between two words they form the bigram's sequence,
counted in a word table of their own under their bytes joined by spaces ("of the"). The words and
bigrams share word2vec.c's ReduceVocab pruning: past max_vocab keys, every key counted min_reduce
times or fewer goes. A bigram is never counted more often than either of its words, so a word's
pruning takes its bigrams with it.
"""

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .common import KERNEL_OPTS, prefetch_item, prefetch_row
from .tokens import (CHECK, FALLBACK, MAX_SENTENCE_TOKENS, ST_FILE_LINES, ST_LINE_TOKENS, ST_LINES, ST_LONG, ST_OPEN,
                     ST_SENT_TOKENS, ST_SPLIT, ST_TOKENS, TEXT, _space, utf8_valid)
from .word_table import (DONE, GROW, IDENTITY, META_LIVE, META_MIN_REDUCE, META_PRUNED, META_WORDS, NEED_ROOM, REC_COUNT,
                         TABLE, _slot_of, add_word, find_hashed, find_word, rebuild_slots, word_hash)

GROW_SEQS, GROW_PAIRS, GROW_KEY = 5, 6, 7  # after tokens' DONE, GROW (the word table), FALLBACK, CHECK
# state: tokens.ST_* counters (indices 2-9), then the phrase kernels' own
P_KEY, P_START, P_PARTS, P_OUT, P_LINE_OUT, P_JOINED, P_WORD = range(10, 17)
STATE_SIZE = 17
LIMIT_VOCAB, LIMIT_CHECK_LINE, LIMIT_LEN = range(3)  # limits: keys held (0: no pruning), check line, max length
PM_LIVE, PM_PRUNED = range(2)
PAIR_META = 2
EMPTY = -1
SPACE = 32
BATCH = 32  # tokens whose table lines are fetched together

TABLES = types.Tuple((TABLE, TABLE, TABLE))  # words, connector sequences, connector words
PAIRS = types.Tuple((types.int64[:, ::1], types.int64[::1]))
RESULT = types.UniTuple(types.int64, 3)  # status, position to resume from, bytes needed
MIX_KEY, MIX_SEQ = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)


@intrinsic
def borrowed(typingctx, arr):
    """arr as a view without a reference count, for a kernel's whole call while its caller holds arr.

    Numba takes and drops a reference to an array each time a variable binds it, an atomic
    operation on its count; inlined helpers bind their arguments at every token, and these
    operations cost a kernel as much as its work. A borrowed view has no count to change.
    """
    def codegen(context, builder, signature, args):
        src = context.make_array(signature.args[0])(context, builder, args[0])
        dst = context.make_array(signature.return_type)(context, builder)
        for name in ("nitems", "itemsize", "data", "shape", "strides"):
            setattr(dst, name, getattr(src, name))
        dst.meminfo = cgutils.get_null_value(dst.meminfo.type)
        dst.parent = cgutils.get_null_value(dst.parent.type)
        return dst._getvalue()

    return arr(arr), codegen


@njit(inline="always", **KERNEL_OPTS)
def borrowed_table(table):
    return borrowed(table[0]), borrowed(table[1]), borrowed(table[2]), borrowed(table[3])


@njit(inline="always", **KERNEL_OPTS)
def _line_end(buf, i, end):
    """(where the line starting at i ends: its '\\n' or end, whether it has a non-ASCII byte)."""
    high = False
    while i < end and buf[i] != 10:
        if buf[i] >= 0x80:
            high = True
        i += 1
    return i, high


@njit(inline="always", **KERNEL_OPTS)
def next_token(buf, j, line_end):
    """(start, end) of the next token of buf[j:line_end]; start == line_end when there is none."""
    while j < line_end:
        gap = _space(buf, j, line_end)
        if gap == 0:
            break
        j += gap
    start = j
    if j < line_end:
        j += 1
        while j < line_end and _space(buf, j, line_end) == 0:
            j += 1
    return start, j


@njit(inline="always", **KERNEL_OPTS)
def needs_python(buf, i, end, lowering):
    """(the end of the line starting at i, whether the caller must split it in Python: invalid
    UTF-8, or non-ASCII text to lowercase)."""
    line_end, high = _line_end(buf, i, end)
    return line_end, high and (lowering or not utf8_valid(buf, i, line_end))


@njit(inline="always", **KERNEL_OPTS)
def tally(state):
    """Count a token; True when it ends a sentence (the 10,000th of one)."""
    state[ST_TOKENS] += 1
    state[ST_LINE_TOKENS] += 1
    state[ST_SENT_TOKENS] += 1
    if state[ST_SENT_TOKENS] == MAX_SENTENCE_TOKENS:
        state[ST_SENT_TOKENS] = 0
        return True
    return False


@njit(inline="always", **KERNEL_OPTS)
def end_line(state, check_line):
    """Close the current line; True when it is the file's check_line-th."""
    if state[ST_LINE_TOKENS] > MAX_SENTENCE_TOKENS:
        state[ST_SPLIT] += 1
    state[ST_SENT_TOKENS] = 0
    state[ST_LINE_TOKENS] = 0
    state[ST_LINES] += 1
    state[ST_FILE_LINES] += 1
    state[ST_OPEN] = 0
    return state[ST_FILE_LINES] == check_line


@njit(inline="always", **KERNEL_OPTS)
def _pair_home(key, seq, mask):
    """Where the probe for bigram (key, seq) starts."""
    h = np.uint64(key) * MIX_KEY + np.uint64(seq) * MIX_SEQ
    return np.int64((h ^ (h >> np.uint64(31))) & np.uint64(mask))


@njit(inline="always", **KERNEL_OPTS)
def _pair_slot(slots, key, seq):
    """The slot of bigram (key, seq), or the empty one where it would go."""
    mask = slots.shape[0] - 1
    s = _pair_home(key, seq, mask)
    while slots[s, 0] != EMPTY and (slots[s, 0] != key or slots[s, 1] != seq):
        s = (s + 1) & mask
    return s


@njit(inline="always", **KERNEL_OPTS)
def _add_pair(slots, meta, key, seq, count):
    s = _pair_slot(slots, key, seq)
    if slots[s, 0] == EMPTY:
        slots[s, 0] = key
        slots[s, 1] = seq
        slots[s, 2] = 0
        meta[PM_LIVE] += 1
    slots[s, 2] += count


@njit(inline="always", **KERNEL_OPTS)
def pairs_full(slots, meta, more):
    """Whether more bigrams would fill the pair table past 70%."""
    return 10 * (meta[PM_LIVE] + more) > 7 * slots.shape[0]


@njit(**KERNEL_OPTS)  # typed on first use (count_text carries its own copy): only pruning needs it
def rekey(pairs, to_new):
    """Rebuild the pair table in place without its removed entries, the word ids mapped through
    to_new (old id -> new id, -1 dropped; empty: unchanged)."""
    slots, meta = pairs
    live = np.empty((meta[PM_LIVE], 3), np.int64)
    n = 0
    for s in range(slots.shape[0]):
        if slots[s, 0] >= 0:
            live[n] = slots[s]
            n += 1
    slots[:, 0] = EMPTY
    meta[PM_LIVE] = 0
    for k in range(n):
        key = live[k, 0]
        if to_new.shape[0]:
            a, b = to_new[key >> 32], to_new[key & 0xFFFFFFFF]
            if a < 0 or b < 0:
                continue
            key = (np.int64(a) << 32) | b
        _add_pair(slots, meta, key, live[k, 1], live[k, 2])


@njit(**KERNEL_OPTS)  # typed on first use (count_text carries its own copy): only pruning needs it
def prune(words, pairs, max_keys):
    """word2vec.c's ReduceVocab over words and bigrams together, while more than max_keys live: drop
    every key counted min_reduce times or fewer, then raise min_reduce. A dropped word keeps its
    record (count -1) until the caller compacts the table."""
    records, meta = words[1], words[3]
    slots, pair_meta = pairs
    while meta[META_LIVE] + pair_meta[PM_LIVE] > max_keys:
        cut = meta[META_MIN_REDUCE]
        for w in range(meta[META_WORDS]):
            if 0 <= records[w, REC_COUNT] <= cut:
                records[w, REC_COUNT] = -1
                meta[META_LIVE] -= 1
                meta[META_PRUNED] += 1
        for s in range(slots.shape[0]):
            if slots[s, 0] != EMPTY and slots[s, 2] <= cut:
                slots[s, 0] = -2  # removed below
                pair_meta[PM_LIVE] -= 1
                pair_meta[PM_PRUNED] += 1
        meta[META_MIN_REDUCE] += 1
    rebuild_slots(words)
    rekey(pairs, np.empty(0, np.int32))


@njit(**KERNEL_OPTS)  # typed on first use: only several threads, or a growing table, need it
def merge_pairs(dst, src, word_map, seq_map, first):
    """Add src's bigrams into dst, src's ids mapped through word_map and seq_map (-1: dropped; an
    empty map: the same ids), from src slot first. Returns the slot to resume from once dst has
    grown, or -1 when done."""
    slots, meta = dst
    src_slots = src[0]
    for s in range(first, src_slots.shape[0]):
        key, seq = src_slots[s, 0], src_slots[s, 1]
        if key < 0:
            continue
        if pairs_full(slots, meta, 1):
            return s
        if word_map.shape[0]:
            a, b = word_map[key >> 32], word_map[key & 0xFFFFFFFF]
            if a < 0 or b < 0:
                continue
            key = (np.int64(a) << 32) | b
        if seq > 0 and seq_map.shape[0]:
            seq = seq_map[seq - 1] + 1
            if seq <= 0:
                continue
        _add_pair(slots, meta, key, seq, src_slots[s, 2])
    return -1


@njit(types.int64(PAIRS, types.int64[:, ::1], types.int64, types.int64[:, ::1]), **KERNEL_OPTS)
def pair_counts(pairs, records, min_count, out):
    """Rows (first word, last word, sequence, count of the first, of the last, of the bigram) of
    out (int64[>= such bigrams, 6]) for the bigrams counted at least min_count times (a word no
    longer held counts 0). Returns the rows filled."""
    slots = pairs[0]
    k = 0
    for s in range(slots.shape[0]):
        key, count = slots[s, 0], slots[s, 2]
        if key < 0 or count < min_count:
            continue
        a, b = key >> 32, key & 0xFFFFFFFF
        out[k, 0], out[k, 1], out[k, 2] = a, b, slots[s, 1]
        out[k, 3], out[k, 4], out[k, 5] = max(records[a, REC_COUNT], 0), max(records[b, REC_COUNT], 0), count
        k += 1
    return k


COUNT_SIG = RESULT(TEXT, types.int64, types.int64, types.boolean, TABLES, PAIRS, types.uint8[::1], types.int64[::1],
                   types.uint8[::1], types.int64[::1])


@njit(COUNT_SIG, **KERNEL_OPTS)
def count_text(buf, pos, end, closes, tables, pairs, key, state, fold, limits):
    """Count the words and bigrams of buf[pos:end] (gensim's _learn_vocab): each word that follows
    a word of its sentence, with only connector words between them (their bytes gathered in key),
    makes a bigram; pruning past limits[LIMIT_VOCAB] keys (0: none).

    Lines end at '\\n'; the last one ends at ``end`` only when closes, else it goes on in the next
    call. Returns (status, position to resume from, extra): DONE; GROW, GROW_SEQS, GROW_PAIRS or
    GROW_KEY (the word, connector-sequence, pair table or key needs room; extra: the bytes of the
    word or sequence); FALLBACK (a line to split in Python, extra its end); CHECK (the file's
    limits[LIMIT_CHECK_LINE]-th line ended). Nothing of the token at the position returned is
    counted yet.

    Tokens go in batches of BATCH: their words' table lines are fetched together, then each is
    counted in order and its bigram's slot fetched, then the bigrams are counted, so that the
    memory latency of the tables' cache misses overlaps instead of adding up.
    """
    max_vocab, check_line, max_len = limits[LIMIT_VOCAB], limits[LIMIT_CHECK_LINE], limits[LIMIT_LEN]
    words, seqs, connectors = borrowed_table(tables[0]), borrowed_table(tables[1]), borrowed_table(tables[2])
    pairs = (borrowed(pairs[0]), borrowed(pairs[1]))
    buf, key, state, fold = borrowed(buf), borrowed(key), borrowed(state), borrowed(fold)
    slots, pair_meta = pairs
    word_slots, records, meta = words[0], words[1], words[3]
    identity = IDENTITY
    with_connectors = connectors[3][META_LIVE] > 0
    lowering = fold[65] == 97  # only ASCII lines are lowercased here
    starts, ends, heads = np.empty(BATCH, np.int64), np.empty(BATCH, np.int64), np.empty(BATCH, np.int64)
    hashes = np.empty(BATCH, np.uint64)
    pair_keys, pair_seqs = np.empty(BATCH, np.int64), np.empty(BATCH, np.int64)
    i = pos
    while i < end:
        state[ST_OPEN] = 1
        line_end, python = needs_python(buf, i, end, lowering)
        if python:
            return FALLBACK, i, line_end
        j = i
        while j < line_end:
            if pairs_full(slots, pair_meta, BATCH):
                return GROW_PAIRS, j, 0
            n_batch = 0
            while n_batch < BATCH:
                start, j = next_token(buf, j, line_end)
                if start >= line_end:
                    break
                starts[n_batch], ends[n_batch] = start, j
                hashes[n_batch], heads[n_batch] = word_hash(buf, start, j, fold)
                prefetch_item(word_slots, _slot_of(hashes[n_batch], word_slots.shape[0] - 1)[0])
                n_batch += 1
            for b in range(n_batch):
                slot, tag = _slot_of(hashes[b], word_slots.shape[0] - 1)
                e = word_slots[slot]
                if e >= 0 and (e >> 32) == tag:
                    prefetch_row(records, e & 0xFFFFFFFF)
            n_pairs, status, at, extra = 0, DONE, 0, 0
            for b in range(n_batch):
                start, stop = starts[b], ends[b]
                n = stop - start
                if n > max_len:
                    state[ST_LONG] += 1
                    state[P_START] = 0
                elif with_connectors and find_word(connectors, buf, start, stop, fold)[0] >= 0:
                    if state[P_START]:  # gensim: `in_between.append(word)`
                        k = state[P_KEY]
                        if k + 1 + n > key.shape[0]:
                            status, at, extra = GROW_KEY, start, k + 1 + n
                            break
                        if k:
                            key[k] = SPACE
                            k += 1
                        for c in range(n):
                            key[k + c] = fold[buf[start + c]]
                        state[P_KEY] = k + n
                else:
                    w, h, slot = find_hashed(words, buf, start, stop, fold, hashes[b], heads[b])
                    if w < 0:
                        w = add_word(words, buf, start, stop, fold, h, slot)
                        if w == NEED_ROOM:
                            status, at, extra = GROW, start, n
                            break
                    if state[P_START]:
                        seq = 0
                        if state[P_KEY]:
                            seq, h, slot = find_word(seqs, key, 0, state[P_KEY], identity)
                            if seq < 0:
                                seq = add_word(seqs, key, 0, state[P_KEY], identity, h, slot)
                                if seq == NEED_ROOM:
                                    status, at, extra = GROW_SEQS, start, state[P_KEY]
                                    break
                            seqs[1][seq, REC_COUNT] += 1
                            seq += 1
                        pair_keys[n_pairs] = (state[P_WORD] << 32) | w
                        pair_seqs[n_pairs] = seq
                        prefetch_row(slots, _pair_home(pair_keys[n_pairs], seq, slots.shape[0] - 1))
                        n_pairs += 1
                    records[w, REC_COUNT] += 1
                    state[P_WORD] = w
                    state[P_START] = 1
                    state[P_KEY] = 0
                if tally(state):
                    state[P_START] = 0
            for p in range(n_pairs):
                _add_pair(slots, pair_meta, pair_keys[p], pair_seqs[p], 1)
            if status != DONE:
                return status, at, extra
            if max_vocab > 0 and meta[META_LIVE] + pair_meta[PM_LIVE] > max_vocab:
                prune(words, pairs, max_vocab)
                if state[P_START] and records[state[P_WORD], REC_COUNT] < 0:
                    state[P_START] = 0
        i = line_end
        if i < end:
            i += 1
            state[P_START] = 0
            if end_line(state, check_line):
                return CHECK, i, 0
    if closes and state[ST_OPEN]:
        state[P_START] = 0
        if end_line(state, check_line):
            return CHECK, i, 0
    return DONE, i, 0


def new_state() -> np.ndarray:
    return np.zeros(STATE_SIZE, np.int64)


def new_pairs(capacity: int = 1 << 16):
    """An empty pair table (PAIRS) of capacity slots (a power of two)."""
    slots = np.zeros((capacity, 3), np.int64)
    slots[:, 0] = EMPTY
    return slots, np.zeros(PAIR_META, np.int64)


def grown_pairs(pairs):
    """The pair table in twice the slots."""
    bigger = new_pairs(2 * pairs[0].shape[0])
    merge_pairs(bigger, pairs, np.empty(0, np.int32), np.empty(0, np.int32), 0)
    bigger[1][PM_PRUNED] = pairs[1][PM_PRUNED]
    return bigger

