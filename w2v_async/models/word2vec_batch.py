"""Downpour batches (the Ray engine): a batch's windows and negatives drawn first (sample_batch),
then trained on any matrices (train_*_batch), with the epoch loop's updates."""

import numpy as np
from numba import njit, types

from .common import CORPUS, F4_2D, I4_1D, KERNEL_OPTS, TABLES
from .sampling import _draw_window, _subsample
from .word2vec import CBOW_SCRATCH, SGNS_SCRATCH, SGNS_WINDOW_SCRATCH
from .word2vec_updates import train_word

# words (subsampled sentences, concatenated), sent_bounds, reach per word, neg_bounds per word, negatives
BATCH = types.Tuple((I4_1D, types.int64[::1], I4_1D, types.int64[::1], I4_1D))


@njit(types.UniTuple(types.int64, 4)(CORPUS, TABLES, types.uint64[::1], types.UniTuple(types.int64, 2), types.int64,
                                     types.int64, BATCH),
      **KERNEL_OPTS)
def sample_batch(corpus, tables, rng_state, windows, per_context, per_word, batch):
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
            r, reach_i, m = _draw_window(r, i, n, windows, tables, negatives[n_negs:], per_context, per_word, no_hot)
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
            word_loss, n_word = train_word(w_in, w_out, sent, i, reach[a + i], n, negs, k, lr, scratch)
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
