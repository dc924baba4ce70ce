"""Joining phrases in raw text (gensim's FrozenPhrases, word2vec.c word2phrase's output), on the
lines and tokens of phrases.count_text.

A phrase is looked up under its words' bytes joined by the delimiter, as gensim's FrozenPhrases
looks up "new_york": the candidate is the pending start word, the connector words after it and
the current word. The output has the tokens of a line joined by single spaces, a line per line.
"""

from numba import njit, types

from .common import KERNEL_OPTS
from .phrases import (LIMIT_CHECK_LINE, LIMIT_LEN, P_JOINED, P_KEY, P_LINE_OUT, P_OUT, P_PARTS, RESULT, SPACE,
                      end_line, needs_python, next_token, tally)
from .tokens import CHECK, FALLBACK, ST_OPEN, TEXT
from .word_table import DONE, GROW, IDENTITY, META_LIVE, TABLE, find_word

FLUSH = 8  # the output needs room: the caller writes it out (or grows it when empty) and calls again
TABLES = types.Tuple((TABLE, TABLE))  # phrases, connector words
SCRATCH = types.Tuple((types.uint8[::1], types.int64[::1], types.uint8[::1]))  # key, its parts' ends, output


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


APPLY_SIG = RESULT(TEXT, types.int64, types.int64, types.boolean, TABLES, SCRATCH, types.uint8[::1],
                   types.int64[::1], types.uint8[::1], types.int64[::1])
BECOMES_START, ALONE, CONNECTOR, JOINED, NOT_JOINED = range(5)  # what a token does


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
    phrases, connectors = tables
    key, parts, out = scratch
    identity = IDENTITY
    dl = delim.shape[0]
    with_connectors = connectors[3][META_LIVE] > 0
    with_phrases = phrases[3][META_LIVE] > 0
    lowering = fold[65] == 97
    i = pos
    while i < end:
        state[ST_OPEN] = 1
        line_end, python = needs_python(buf, i, end, lowering)
        if python:
            return FALLBACK, i, line_end
        j = i
        while True:
            start, j = next_token(buf, j, line_end)
            if start >= line_end:
                break
            n, k, n_parts = j - start, state[P_KEY], state[P_PARTS]
            need = k + 2 * n_parts + n + dl + 4
            if state[P_OUT] + need > out.shape[0]:
                return FLUSH, start, need
            if k + dl + n > key.shape[0]:
                return GROW, start, k + dl + n
            # what the token does, decided first: the steps below are written once each
            if n > max_len:
                action = ALONE
            else:
                connector = with_connectors and find_word(connectors, buf, start, j, fold)[0] >= 0
                if n_parts == 0:
                    action = ALONE if connector else BECOMES_START
                else:
                    for b in range(dl):
                        key[k + b] = delim[b]
                    for b in range(n):
                        key[k + dl + b] = fold[buf[start + b]]
                    if connector:
                        action = CONNECTOR
                    elif with_phrases and find_word(phrases, key, 0, k + dl + n, identity)[0] >= 0:
                        action = JOINED
                    else:
                        action = NOT_JOINED
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
                    _emit(out, state, buf, start, j, fold)
                else:
                    for b in range(n):  # the word starts the next candidate
                        key[b] = key[k + dl + b] if action == NOT_JOINED else fold[buf[start + b]]
                    parts[0] = n
                    state[P_PARTS] = 1
                    state[P_KEY] = n
            if tally(state):
                _flush(key, parts, out, state, dl)
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
