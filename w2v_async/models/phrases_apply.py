"""Joining phrases in raw text (gensim's FrozenPhrases, word2vec.c word2phrase's output), on the
lines and tokens of phrases.count_text.

A phrase is looked up under its words' bytes joined by the delimiter, as gensim's FrozenPhrases
looks up "new_york": the candidate is the pending start word, the connector words after it and
the current word. The output has the tokens of a line joined by single spaces, a line per line.
"""

import numpy as np
from numba import njit, types

from .common import KERNEL_OPTS, prefetch_item, prefetch_row
from .phrases import (LIMIT_CHECK_LINE, LIMIT_LEN, P_JOINED, P_KEY, P_LINE_OUT, P_OUT, P_PARTS, RESULT,
                      SPACE, borrowed, borrowed_table, end_line, needs_python, next_token, tally)
from .tokens import CHECK, FALLBACK, ST_OPEN, TEXT
from .word_table import (DONE, FNV_OFFSET, FNV_PRIME, GROW, IDENTITY, META_LIVE, REC_LEN, REC_OFFSET, REC_SIZE,
                         TABLE, _slot_of, find_hashed, find_word)

FLUSH = 8  # the output needs room: the caller writes it out (or grows it when empty) and calls again
TABLES = types.Tuple((TABLE, TABLE))  # phrases, connector words
SCRATCH = types.Tuple((types.uint8[::1], types.int64[::1], types.uint8[::1]))  # key, its parts' ends, output


@njit(inline="always", **KERNEL_OPTS)
def _fnv(h, head, k, byte):
    """word_table.word_hash's step: the hash and head after byte, the k-th of the key."""
    h = (h ^ byte) * FNV_PRIME
    if k < 8:
        head |= byte << np.uint64(8 * k)
    return h, head


@njit(inline="always", **KERNEL_OPTS)
def _bigram_hash(buf, start, end, delim, next_start, next_end, fold):
    """word_table.word_hash of fold[buf[start:end]] + delim + fold[buf[next_start:next_end]]."""
    h, head = FNV_OFFSET, np.uint64(0)
    for p in range(start, end):
        h, head = _fnv(h, head, p - start, np.uint64(fold[buf[p]]))
    k = end - start
    for p in range(delim.shape[0]):
        h, head = _fnv(h, head, k + p, np.uint64(delim[p]))
    k += delim.shape[0]
    for p in range(next_start, next_end):
        h, head = _fnv(h, head, k + p - next_start, np.uint64(fold[buf[p]]))
    return h, np.int64(head)


@njit(inline="always", **KERNEL_OPTS)
def _emit(out, state, src, start, end, fold):
    """Write fold[src[start:end]] as the line's next token (after a space unless it is the first)."""
    o = state[P_OUT]
    if state[P_LINE_OUT]:
        out[o] = SPACE
        o += 1
    for b in range(end - start):
        out[o + b] = fold[src[start + b]]
    state[P_OUT] = o + end - start
    state[P_LINE_OUT] = 1


@njit(inline="always", **KERNEL_OPTS)
def _flush(key, parts, out, state, dl):
    """Write the pending start word and connector words as they came, each its own token."""
    identity = IDENTITY
    a = 0
    for p in range(state[P_PARTS]):
        _emit(out, state, key, a, parts[p], identity)
        a = parts[p] + dl
    state[P_PARTS] = 0
    state[P_KEY] = 0


@njit(inline="always", **KERNEL_OPTS)
def _close_line(key, parts, out, state, dl):
    """Write the pending words and the line's '\\n'; returns the output bytes it lacks (0: done)."""
    need = state[P_KEY] + 2 * state[P_PARTS] + 2
    if state[P_OUT] + need > out.shape[0]:
        return need
    _flush(key, parts, out, state, dl)
    out[state[P_OUT]] = 10
    state[P_OUT] += 1
    state[P_LINE_OUT] = 0
    return 0


@njit(types.int64(TABLE, TABLE, types.int64[:, ::1], types.uint8[::1], types.uint8[::1]), **KERNEL_OPTS)
def phrase_text(words, seqs, rows, delim, out):
    """Write the phrase of each row (first word, last word, connector sequence: 0, or its id + 1,
    as phrases.pair_counts gives them) into out: its words' bytes joined by delim, then a '\\n'.
    out holds them all (the caller sizes it). Returns the bytes written."""
    w_rec, w_pool, s_rec, s_pool = words[1], words[2], seqs[1], seqs[2]
    o = 0
    for r in range(rows.shape[0]):
        for part in range(3):
            if part == 1 and rows[r, 2] == 0:
                continue
            rec, pool, w = (s_rec, s_pool, rows[r, 2] - 1) if part == 1 else (w_rec, w_pool, rows[r, part // 2])
            if part:
                out[o:o + delim.shape[0]] = delim
                o += delim.shape[0]
            for b in range(rec[w, REC_OFFSET], rec[w, REC_OFFSET] + rec[w, REC_LEN]):
                if pool[b] == SPACE:  # between connector words
                    out[o:o + delim.shape[0]] = delim
                    o += delim.shape[0]
                else:
                    out[o] = pool[b]
                    o += 1
        out[o] = 10
        o += 1
    return o


APPLY_SIG = RESULT(TEXT, types.int64, types.int64, types.boolean, TABLES, SCRATCH, types.uint8[::1],
                   types.int64[::1], types.uint8[::1], types.int64[::1])
BECOMES_START, ALONE, CONNECTOR, JOINED, NOT_JOINED = range(5)  # what a token does
BATCH = 16  # tokens whose candidates' table lines are fetched together
LARGE_TABLE_BYTES = 1 << 21  # a phrase table's records beyond a core's L2 cache (2 MB here)


@njit(APPLY_SIG, **KERNEL_OPTS)
def apply_text(buf, pos, end, closes, tables, scratch, delim, state, fold, limits):
    """Write buf[pos:end] with the phrases of tables[0] joined into scratch's output (state[P_OUT]
    bytes filled); tables[1]: the connector words. As gensim's analyze_sentence: a word after a
    pending start word (and connector words) is joined to it when "start_..._word" is a phrase,
    else the pending words are written as they came and the word becomes the start word; a token
    of over limits[LIMIT_LEN] bytes is never part of a phrase.

    Lines as count_text's. Returns (status, position to resume from, extra): DONE; FLUSH (the
    output lacks extra free bytes); GROW (the key needs extra bytes); FALLBACK (extra: the line's
    end); CHECK.
    """
    check_line, max_len = limits[LIMIT_CHECK_LINE], limits[LIMIT_LEN]
    phrases, connectors = borrowed_table(tables[0]), borrowed_table(tables[1])
    key, parts, out = borrowed(scratch[0]), borrowed(scratch[1]), borrowed(scratch[2])
    buf, delim, state, fold = borrowed(buf), borrowed(delim), borrowed(state), borrowed(fold)
    identity = IDENTITY
    dl = delim.shape[0]
    with_connectors = connectors[3][META_LIVE] > 0
    with_phrases = phrases[3][META_LIVE] > 0
    phrase_slots, phrase_records = phrases[0], phrases[1]
    large = phrases[3][META_LIVE] * REC_SIZE * 8 > LARGE_TABLE_BYTES
    lowering = fold[65] == 97
    starts, ends, heads = np.empty(BATCH, np.int64), np.empty(BATCH, np.int64), np.empty(BATCH, np.int64)
    hashes = np.empty(BATCH, np.uint64)
    i = pos
    while i < end:
        state[ST_OPEN] = 1
        line_end, python = needs_python(buf, i, end, lowering)
        if python:
            return FALLBACK, i, line_end
        j = i
        while j < line_end:
            n_batch = 0
            while n_batch < BATCH:
                start, j = next_token(buf, j, line_end)
                if start >= line_end:
                    break
                starts[n_batch], ends[n_batch] = start, j
                n_batch += 1
            # each token with the one before is the likely candidate: in a table beyond the core's cache,
            # the candidates' table lines are fetched together, so that their latency overlaps
            for b in range(1, n_batch if large else 0):
                hashes[b], heads[b] = _bigram_hash(buf, starts[b - 1], ends[b - 1], delim, starts[b], ends[b], fold)
                prefetch_item(phrase_slots, _slot_of(hashes[b], phrase_slots.shape[0] - 1)[0])
            for b in range(1, n_batch if large else 0):
                slot, tag = _slot_of(hashes[b], phrase_slots.shape[0] - 1)
                e = phrase_slots[slot]
                if e >= 0 and (e >> 32) == tag:
                    prefetch_row(phrase_records, e & 0xFFFFFFFF)
            started = -1  # the batch's token that is the pending start word, alone
            for b in range(n_batch):
                start, stop = starts[b], ends[b]
                n, k, n_parts = stop - start, state[P_KEY], state[P_PARTS]
                need = k + 2 * n_parts + n + dl + 4
                if state[P_OUT] + need > out.shape[0]:
                    return FLUSH, start, need
                if k + dl + n > key.shape[0]:
                    return GROW, start, k + dl + n
                # what the token does, decided first: the steps below are written once each
                if n > max_len:
                    action = ALONE
                else:
                    connector = with_connectors and find_word(connectors, buf, start, stop, fold)[0] >= 0
                    if n_parts == 0:
                        action = ALONE if connector else BECOMES_START
                    else:
                        for c in range(dl):
                            key[k + c] = delim[c]
                        for c in range(n):
                            key[k + dl + c] = fold[buf[start + c]]
                        if connector:
                            action = CONNECTOR
                        elif not with_phrases:
                            action = NOT_JOINED
                        elif large and started == b - 1 and b > 0:
                            found = find_hashed(phrases, key, 0, k + dl + n, identity, hashes[b], heads[b])[0]
                            action = JOINED if found >= 0 else NOT_JOINED
                        else:
                            action = JOINED if find_word(phrases, key, 0, k + dl + n, identity)[0] >= 0 else NOT_JOINED
                started = b if action == BECOMES_START or action == NOT_JOINED else -1
                if action == JOINED:
                    _emit(out, state, key, 0, k + dl + n, identity)
                    state[P_PARTS] = 0
                    state[P_KEY] = 0
                    state[P_JOINED] += 1
                elif action == CONNECTOR:
                    parts[n_parts] = k + dl + n
                    state[P_PARTS] = n_parts + 1
                    state[P_KEY] = k + dl + n
                else:
                    if n_parts and (action == ALONE or action == NOT_JOINED):
                        _flush(key, parts, out, state, dl)
                    if action == ALONE:
                        _emit(out, state, buf, start, stop, fold)
                    else:
                        for c in range(n):  # the word starts the next candidate
                            key[c] = key[k + dl + c] if action == NOT_JOINED else fold[buf[start + c]]
                        parts[0] = n
                        state[P_PARTS] = 1
                        state[P_KEY] = n
                if tally(state):
                    _flush(key, parts, out, state, dl)
                    started = -1
        i = line_end
        if i < end:
            need = _close_line(key, parts, out, state, dl)
            if need:
                return FLUSH, i, need
            i += 1
            if end_line(state, check_line):
                return CHECK, i, 0
    if closes and state[ST_OPEN]:
        need = _close_line(key, parts, out, state, dl)
        if need:
            return FLUSH, i, need
        if end_line(state, check_line):
            return CHECK, i, 0
    return DONE, i, 0
