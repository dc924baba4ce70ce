"""The loop that feeds word2vec's updates: one thread's epoch over its sentences (the threads
engine). The Ray engine's pre-drawn batches are in word2vec_batch.py.

The epoch kernels (skip-gram pair, skip-gram window, CBOW, each also with hierarchical softmax,
fastText's subword skip-gram and CBOW, and the experiment's guarded pairs) are compiled on first use
(epoch_kernel), for their one signature: a run compiles, or loads from numba's cache, only the
model it trains."""

import numpy as np
from numba import njit, types

from .common import CORPUS, DIVERGED, F4_2D, KERNEL_OPTS, PROGRESS_EVERY, RUN, TABLES, prefetch_row
from .hot_rows import _touch_hot_rows
from .sampling import _draw_window, _subsample, learning_rate
from .word2vec import (CBOW_SCRATCH, SGNS_COLLISION_SCRATCH, SGNS_GLOBAL_LOCK_SCRATCH, SGNS_ROW_LOCK_SCRATCH,
                       SGNS_SCRATCH, SGNS_WINDOW_SCRATCH)
from .subwords import CBOW_SUB_SCRATCH, SGNS_SUB_SCRATCH
from .word2vec_hs import CBOW_HS_SCRATCH, SGNS_HS_SCRATCH, SGNS_WINDOW_HS_SCRATCH
from .word2vec_updates import contexts_touched_per_window, negatives_per_context, sync_rows, train_word

# (window, shrink): a word's window reaches window - (a draw below shrink) words each side, so
# shrink = window gives word2vec.c's reduced windows in [1, window] and shrink = 1 a fixed window
WINDOWS = types.UniTuple(types.int64, 2)

def _epoch_sig(scratch):
    return types.Tuple((types.float64, types.int64, types.int64, types.int64))(
        F4_2D, F4_2D, CORPUS, TABLES, types.float64[::1], types.uint64[::1], types.int64[::1], types.int64,
        WINDOWS, scratch,
    )


@njit(**KERNEL_OPTS)
def _prepare_word(r, i, n, windows, tables, w_in, w_out, sent_buf, negatives, per_context, per_word, hot):
    """Draw word i's reduced window and its negatives, and prefetch the rows they will touch.

    negatives receives per_context ids for each context word plus per_word ids (skip-gram draws
    per pair, CBOW per word); hot negatives are the thread's private rows (HOT tuple hot), and
    count as uses of them. Returns (rng state, reach).
    """
    info, uses = hot[0], hot[1]
    n_hot = info[0]
    r, reach, m = _draw_window(r, i, n, windows, tables, negatives, per_context, per_word, (n_hot, info[1]))
    _touch_hot_rows(w_out, negatives[:m], info, uses[n_hot:], hot[3])
    if per_context + per_word > 0:  # negative sampling's rows (none with --hs --negative 0)
        prefetch_row(w_out, sent_buf[i])
    for q in range(m):
        prefetch_row(w_out, negatives[q])
    if i + reach < n:
        prefetch_row(w_in, sent_buf[i + reach])
    return r, reach


@njit(**KERNEL_OPTS)
def _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch):
    """The epoch loop shared by skip-gram and CBOW (see train_sgns_epoch)."""
    ids, sent_starts, sentences = corpus
    keep_prob = tables[0]
    sent_buf, negatives = scratch[0], scratch[1]
    half = negatives.shape[0] // 2
    neg_cur, neg_next = negatives[:half], negatives[half:]
    k = half // (2 * windows[0])
    per_context, per_word = (k, 0) if negatives_per_context(scratch) else (0, k)
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
    sync_rows(w_in, w_out, scratch)
    n_sentences = 0
    for s in sentences:
        if words_done - last_report >= PROGRESS_EVERY:
            counters[slot] = words_done
            last_report = words_done
            sync_rows(w_in, w_out, scratch)
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
        if not contexts_touched_per_window(scratch):
            _touch_hot_rows(w_in, sent_buf[:n], info, uses[:n_hot], hot[2])  # contexts
        if k > 0:
            _touch_hot_rows(w_out, sent_buf[:n], info, uses[n_hot:], hot[3])  # centers
        # two-stage pipeline: word i + 1's window and negatives are drawn, and its rows
        # prefetched, before word i trains
        r, reach = _prepare_word(r, 0, n, windows, tables, w_in, w_out, sent_buf, neg_cur, per_context, per_word,
                                 hot)
        for i in range(n):
            next_reach = 0
            if i + 1 < n:
                r, next_reach = _prepare_word(
                    r, i + 1, n, windows, tables, w_in, w_out, sent_buf, neg_next, per_context, per_word, hot
                )
            word_loss, n_word = train_word(w_in, w_out, sent_buf, i, reach, n, neg_cur, k, lr, scratch)
            loss += word_loss
            n_examples += n_word
            neg_cur, neg_next = neg_next, neg_cur
            reach = next_reach
    sync_rows(w_in, w_out, scratch)
    if not np.isfinite(loss):
        counters[0] = DIVERGED
    counters[slot] = words_done
    rng_state[0] = r
    return loss, n_examples, words_done - first_word, n_sentences


@njit(**KERNEL_OPTS)
def train_sgns_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch):
    """One pass of one thread over its sentences with word2vec.c skip-gram semantics.

    w_in, w_out : float32[V + T H, d], shared, updated in place without locks; rows from V on
    hold each thread's private copies of the H most frequent words' rows.
    corpus : (ids int32[N], sent_starts int64[S+1], sentences int64[m]): trains the sentences
    ids[sent_starts[s]:sent_starts[s + 1]] for s in sentences, in that order.
    tables : (keep_prob float32[V], noise_prob float32[V], noise_alias int32[V]).
    windows : (window, shrink) (WINDOWS). sched : float64[3] = (alpha, min_alpha, words of the whole run, all epochs).
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
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch)


@njit(**KERNEL_OPTS)
def train_cbow_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch):
    """One pass of one thread over its sentences with word2vec.c CBOW semantics (mean of contexts).

    As train_sgns_epoch, with scratch (sentence, negatives, hot rows, grad float32[d],
    contexts int32[2 window], neu1 float32[d]). Returns (loss sum, n center
    words trained, n words read, n sentences trained).
    """
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch)


@njit(**KERNEL_OPTS)
def train_sgns_window_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch):
    """One pass of one thread over its sentences with HogBatch skip-gram (sgns_window_update).

    As train_sgns_epoch, with scratch (sentence, negatives, hot rows, contexts int32[2 window],
    deltas float32[2 window, d], grads float32[2 window, negative + 1]). Returns as
    train_sgns_epoch.
    """
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch)


@njit(**KERNEL_OPTS)
def train_sgns_global_lock_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch):
    """As train_sgns_epoch, each pair update inside one lock that every thread shares (scratch:
    word2vec_guarded.guarded_scratch "global"). For the experiment: what "just add a mutex" costs."""
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch)


@njit(**KERNEL_OPTS)
def train_sgns_row_lock_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch):
    """As train_sgns_epoch, each pair update holding the locks of the rows it touches, taken in id
    order (guarded_scratch "rows"): HOGWILD!'s fine-grained locking alternative."""
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch)


@njit(**KERNEL_OPTS)
def train_sgns_counted_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch):
    """As train_sgns_epoch, lock-free, counting each row's writes and the writes another thread's
    write to the same row overtook (guarded_scratch "count"): the observed collision rate."""
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch)


@njit(**KERNEL_OPTS)
def train_sgns_hs_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch):
    """As train_sgns_epoch with hierarchical softmax (word2vec_hs.py) beside negative sampling, or
    alone with negative 0 (w_out is then never read); scratch ends with the HS tuple."""
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch)


@njit(**KERNEL_OPTS)
def train_sgns_window_hs_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch):
    """As train_sgns_window_epoch with hierarchical softmax: a window is one step on the center's path."""
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch)


@njit(**KERNEL_OPTS)
def train_cbow_hs_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch):
    """As train_cbow_epoch with hierarchical softmax on the center's path."""
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch)


@njit(**KERNEL_OPTS)
def train_sgns_sub_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch):
    """As train_sgns_epoch with fastText's subword model (subwords.py): each window is one step of
    the center's n-gram mean against every context's own negatives; scratch ends with the SUB tuple."""
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch)


@njit(**KERNEL_OPTS)
def train_cbow_sub_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch):
    """As train_cbow_epoch with fastText's subword model: the contexts' rows and n-gram rows."""
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, windows, scratch)


EPOCH_KERNELS = {"pair": (train_sgns_epoch, SGNS_SCRATCH), "window": (train_sgns_window_epoch, SGNS_WINDOW_SCRATCH),
                 "cbow": (train_cbow_epoch, CBOW_SCRATCH),
                 "pair-global": (train_sgns_global_lock_epoch, SGNS_GLOBAL_LOCK_SCRATCH),
                 "pair-rows": (train_sgns_row_lock_epoch, SGNS_ROW_LOCK_SCRATCH),
                 "pair-count": (train_sgns_counted_epoch, SGNS_COLLISION_SCRATCH),
                 "pair-hs": (train_sgns_hs_epoch, SGNS_HS_SCRATCH),
                 "window-hs": (train_sgns_window_hs_epoch, SGNS_WINDOW_HS_SCRATCH),
                 "cbow-hs": (train_cbow_hs_epoch, CBOW_HS_SCRATCH),
                 "sgns-sub": (train_sgns_sub_epoch, SGNS_SUB_SCRATCH), "cbow-sub": (train_cbow_sub_epoch, CBOW_SUB_SCRATCH)}


def epoch_kernel(update: str):
    """The epoch kernel of update ("pair", "window", "cbow", each with "-hs" for hierarchical
    softmax, or a guarded "pair-global", "pair-rows", "pair-count"), compiled (or loaded from numba's
    cache) for its signature, and then closed to other signatures, as an eagerly typed kernel is."""
    kernel, scratch = EPOCH_KERNELS[update]
    if not kernel.overloads:
        kernel.compile(_epoch_sig(scratch))
        kernel.disable_compile()
    return kernel
