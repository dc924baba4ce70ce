"""The loops that feed word2vec's updates: one thread's epoch over its sentences (the threads
engine) and a pre-drawn batch of windows and negatives (the Ray engine)."""

import numpy as np
from numba import njit, types

from .common import CORPUS, DIVERGED, F4_2D, I4_1D, KERNEL_OPTS, PROGRESS_EVERY, RUN, TABLES, prefetch_row
from .hot_rows import _sync_hot_rows, _touch_hot_rows
from .sampling import _draw_window, _subsample, learning_rate
from .word2vec import (CBOW_SCRATCH, SGNS_SCRATCH, SGNS_WINDOW_SCRATCH, _contexts_touched_per_window,
                       _negatives_per_context, _train_word)

def _epoch_sig(scratch):
    return types.Tuple((types.float64, types.int64, types.int64, types.int64))(
        F4_2D, F4_2D, CORPUS, TABLES, types.float64[::1], types.uint64[::1], types.int64[::1], types.int64,
        types.int64, scratch,
    )


@njit(**KERNEL_OPTS)
def _prepare_word(r, i, n, window, tables, w_in, w_out, sent_buf, negatives, per_context, per_word, hot):
    """Draw word i's reduced window and its negatives, and prefetch the rows they will touch.

    negatives receives per_context ids for each context word plus per_word ids (skip-gram draws
    per pair, CBOW per word); hot negatives are the thread's private rows (HOT tuple hot), and
    count as uses of them. Returns (rng state, reach).
    """
    info, uses = hot[0], hot[1]
    n_hot = info[0]
    r, reach, m = _draw_window(r, i, n, window, tables, negatives, per_context, per_word, (n_hot, info[1]))
    _touch_hot_rows(w_out, negatives[:m], info, uses[n_hot:], hot[3])
    prefetch_row(w_out, sent_buf[i])
    for q in range(m):
        prefetch_row(w_out, negatives[q])
    if i + reach < n:
        prefetch_row(w_in, sent_buf[i + reach])
    return r, reach


@njit(**KERNEL_OPTS)
def _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, window, scratch):
    """The epoch loop shared by skip-gram and CBOW (see train_sgns_epoch)."""
    ids, sent_starts, sentences = corpus
    keep_prob = tables[0]
    sent_buf, negatives = scratch[0], scratch[1]
    half = negatives.shape[0] // 2
    neg_cur, neg_next = negatives[:half], negatives[half:]
    k = half // (2 * window)
    per_context, per_word = (k, 0) if _negatives_per_context(scratch) else (0, k)
    r = rng_state[0]
    slot = 1 + thread_idx
    words_done = counters[slot]
    first_word = words_done
    last_report = words_done
    lr = learning_rate(sched, counters)
    loss = 0.0
    n_examples = 0
    hot = scratch[2]
    info, uses = hot[0], hot[1]
    n_hot, offset = info[0], info[1]
    _sync_hot_rows(w_in, w_out, hot)
    n_sentences = 0
    for s in sentences:
        if words_done - last_report >= PROGRESS_EVERY:
            counters[slot] = words_done
            last_report = words_done
            _sync_hot_rows(w_in, w_out, hot)
            if not np.isfinite(loss):
                counters[0] = DIVERGED
            if counters[0] != RUN:
                break
            lr = learning_rate(sched, counters)
        n_sentences += 1
        start = sent_starts[s]
        end = sent_starts[s + 1]
        r, n = _subsample(r, ids, start, end, keep_prob, sent_buf, n_hot, offset)
        words_done += end - start
        if n == 0:
            continue
        if not _contexts_touched_per_window(scratch):
            _touch_hot_rows(w_in, sent_buf[:n], info, uses[:n_hot], hot[2])  # contexts
        _touch_hot_rows(w_out, sent_buf[:n], info, uses[n_hot:], hot[3])  # centers
        # two-stage pipeline: word i + 1's window and negatives are drawn, and its rows
        # prefetched, before word i trains
        r, reach = _prepare_word(r, 0, n, window, tables, w_in, w_out, sent_buf, neg_cur, per_context, per_word, hot)
        for i in range(n):
            next_reach = 0
            if i + 1 < n:
                r, next_reach = _prepare_word(
                    r, i + 1, n, window, tables, w_in, w_out, sent_buf, neg_next, per_context, per_word, hot
                )
            word_loss, n_word = _train_word(w_in, w_out, sent_buf, i, reach, n, neg_cur, k, lr, scratch)
            loss += word_loss
            n_examples += n_word
            neg_cur, neg_next = neg_next, neg_cur
            reach = next_reach
    _sync_hot_rows(w_in, w_out, hot)
    if not np.isfinite(loss):
        counters[0] = DIVERGED
    counters[slot] = words_done
    rng_state[0] = r
    return loss, n_examples, words_done - first_word, n_sentences


@njit(_epoch_sig(SGNS_SCRATCH), **KERNEL_OPTS)
def train_sgns_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, window, scratch):
    """One pass of one thread over its sentences with word2vec.c skip-gram semantics.

    w_in, w_out : float32[V + T H, d], shared, updated in place without locks; rows from V on
    hold each thread's private copies of the H most frequent words' rows.
    corpus : (ids int32[N], sent_starts int64[S+1], sentences int64[m]): trains the sentences
    ids[sent_starts[s]:sent_starts[s + 1]] for s in sentences, in that order.
    tables : (keep_prob float32[V], noise_prob float32[V], noise_alias int32[V]).
    sched : float64[3] = (alpha, min_alpha, words of the whole run, all epochs).
    rng_state : uint64[1], advanced. counters : int64[1 + n_threads] shared by all threads:
    (stop flag, words done by each thread). scratch : (sentence int32[L], negatives
    int32[4 window negative] (two words' worth), hot rows, grad float32[d]), where hot rows =
    (int64[3] (H, offset, K), uses int32[2 H], base_in, base_out float32[H, d]): the thread
    trains ids w < H in its rows offset + w and merges each into row w after every K uses, at
    the start, every PROGRESS_EVERY words and at the end (merge_hot_row); H = 0 for none.
    Every PROGRESS_EVERY words it publishes its word count, and returns early when counters[0]
    is not RUN (a pause, a stop, or a thread that saw its loss turn non-finite and set DIVERGED).
    Returns (loss sum, n pairs, n words read, n sentences trained): a caller resumes an early
    return by passing sentences[n sentences trained:].
    """
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, window, scratch)


@njit(_epoch_sig(CBOW_SCRATCH), **KERNEL_OPTS)
def train_cbow_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, window, scratch):
    """One pass of one thread over its sentences with word2vec.c CBOW semantics (mean of contexts).

    As train_sgns_epoch, with scratch (sentence, negatives, hot rows, grad float32[d],
    contexts int32[2 window], neu1 float32[d]). Returns (loss sum, n center
    words trained, n words read, n sentences trained).
    """
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, window, scratch)


@njit(_epoch_sig(SGNS_WINDOW_SCRATCH), **KERNEL_OPTS)
def train_sgns_window_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, window, scratch):
    """One pass of one thread over its sentences with HogBatch skip-gram (sgns_window_update).

    As train_sgns_epoch, with scratch (sentence, negatives, hot rows, contexts int32[2 window],
    deltas float32[2 window, d], grads float32[2 window, negative + 1]). Returns as
    train_sgns_epoch.
    """
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, window, scratch)


# ---- Downpour batches (the Ray engine): windows and negatives drawn first, then trained on any matrices ----

# words (subsampled sentences, concatenated), sent_bounds, reach per word, neg_bounds per word, negatives
BATCH = types.Tuple((I4_1D, types.int64[::1], I4_1D, types.int64[::1], I4_1D))


@njit(types.UniTuple(types.int64, 4)(CORPUS, TABLES, types.uint64[::1], types.int64, types.int64, types.int64, BATCH),
      **KERNEL_OPTS)
def sample_batch(corpus, tables, rng_state, window, per_context, per_word, batch):
    """Draw everything a batch of sentences needs before any row is read: what _train_epoch draws.

    For each sentence of corpus (ids, sent_starts, sentences) the kept words, and for each kept
    word its reduced window and negatives, in _train_epoch's RNG order: with the same rng_state,
    train_*_batch on the result makes the same updates as train_*_epoch on those sentences (within
    one PROGRESS_EVERY stretch, where the learning rate is constant). batch receives them; its
    arrays must hold every word read (and per word 2 window per_context + per_word negatives).
    rng_state : uint64[1], advanced. Returns (sentences, words, negatives kept, words read).
    """
    ids, sent_starts, sentences = corpus
    words, sent_bounds, reach, neg_bounds, negatives = batch
    no_hot = (np.int64(0), np.int64(0))
    r = rng_state[0]
    n_sent = 0
    n_words = 0
    n_negs = 0
    words_read = 0
    sent_bounds[0] = 0
    neg_bounds[0] = 0
    for s in sentences:
        start = sent_starts[s]
        end = sent_starts[s + 1]
        words_read += end - start
        r, n = _subsample(r, ids, start, end, tables[0], words[n_words:], 0, 0)
        if n == 0:
            continue
        for i in range(n):
            r, reach_i, m = _draw_window(r, i, n, window, tables, negatives[n_negs:], per_context, per_word, no_hot)
            reach[n_words + i] = reach_i
            n_negs += m
            neg_bounds[n_words + i + 1] = n_negs
        n_words += n
        n_sent += 1
        sent_bounds[n_sent] = n_words
    rng_state[0] = r
    return n_sent, n_words, n_negs, words_read


@njit(**KERNEL_OPTS)
def _train_batch(w_in, w_out, batch, n_sent, k, lr, scratch):
    words, sent_bounds, reach, neg_bounds, negatives = batch
    loss = 0.0
    n_examples = 0
    for s in range(n_sent):
        a = sent_bounds[s]
        n = sent_bounds[s + 1] - a
        sent = words[a : a + n]
        for i in range(n):
            negs = negatives[neg_bounds[a + i] : neg_bounds[a + i + 1]]
            word_loss, n_word = _train_word(w_in, w_out, sent, i, reach[a + i], n, negs, k, lr, scratch)
            loss += word_loss
            n_examples += n_word
    return loss, n_examples


def _batch_sig(scratch):
    return types.Tuple((types.float64, types.int64))(F4_2D, F4_2D, BATCH, types.int64, types.int64, types.float32,
                                                     scratch)


@njit(_batch_sig(SGNS_SCRATCH), **KERNEL_OPTS)
def train_sgns_batch(w_in, w_out, batch, n_sent, k, lr, scratch):
    """Train the first n_sent sentences of a sample_batch batch with word2vec.c skip-gram updates.

    Word ids index w_in and w_out directly: the full matrices, or a compact copy of the rows the
    batch touches with its ids remapped. k negatives per pair; lr constant. Returns (loss sum,
    examples).
    """
    return _train_batch(w_in, w_out, batch, n_sent, k, lr, scratch)


@njit(_batch_sig(CBOW_SCRATCH), **KERNEL_OPTS)
def train_cbow_batch(w_in, w_out, batch, n_sent, k, lr, scratch):
    """As train_sgns_batch, with CBOW updates (k negatives per center word)."""
    return _train_batch(w_in, w_out, batch, n_sent, k, lr, scratch)


@njit(_batch_sig(SGNS_WINDOW_SCRATCH), **KERNEL_OPTS)
def train_sgns_window_batch(w_in, w_out, batch, n_sent, k, lr, scratch):
    """As train_sgns_batch, with HogBatch window updates (k negatives per center word; no hot rows)."""
    return _train_batch(w_in, w_out, batch, n_sent, k, lr, scratch)
