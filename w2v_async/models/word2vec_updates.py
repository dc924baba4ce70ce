"""The one home of word2vec's update dispatch: the epoch loops (word2vec_loops.py) and the Downpour
batches (word2vec_batch.py) call these, and the type of the thread's scratch tuple picks, at
compile time, the update it belongs to: negative sampling (word2vec.py), hierarchical softmax
(word2vec_hs.py), fastText's subword model (subwords.py), or the experiment's guarded pairs (word2vec_guarded.py). This module imports the
variants; none of them imports it, so no import circle hides here. The guarded pairs are imported
when a guarded scratch is typed: their locks (locks.py) compile when imported, and only the
experiment uses them."""

from numba.extending import overload

from .common import KERNEL_OPTS
from .hot_rows import _sync_hot_rows
from .word2vec import CBOW_SCRATCH, GUARDED_SCRATCHES, SGNS_SCRATCH, SGNS_WINDOW_SCRATCH, _cbow_word, _sgns_window_word, \
    _sgns_word
from .word2vec_hs import (CBOW_HS_SCRATCH, HS_SCRATCHES, SGNS_HS_SCRATCH, SGNS_WINDOW_HS_SCRATCH, _cbow_hs_word,
                          _sgns_hs_word, _sgns_window_hs_word, _sync_hs_rows)
from .subwords import (CBOW_SUB_SCRATCH, SGNS_SUB_SCRATCH, SUB_SCRATCHES, _cbow_sub_word, _sgns_sub_word,
                       _sync_sub_rows)

_WORD_STEPS = {SGNS_SCRATCH: _sgns_word, SGNS_WINDOW_SCRATCH: _sgns_window_word, CBOW_SCRATCH: _cbow_word,
               SGNS_HS_SCRATCH: _sgns_hs_word, SGNS_WINDOW_HS_SCRATCH: _sgns_window_hs_word,
               CBOW_HS_SCRATCH: _cbow_hs_word, SGNS_SUB_SCRATCH: _sgns_sub_word, CBOW_SUB_SCRATCH: _cbow_sub_word}


def train_word(w_in, w_out, sent_buf, i, reach, n, negatives, k, lr, scratch):
    """Train center word i with the model that the scratch tuple belongs to (resolved at compile
    time); returns (loss, examples)."""


@overload(train_word, jit_options=KERNEL_OPTS)
def _train_word_for_scratch(w_in, w_out, sent_buf, i, reach, n, negatives, k, lr, scratch):
    if scratch in GUARDED_SCRATCHES:
        from .word2vec_guarded import _sgns_word_guarded  # the experiment's kernels only (see above)

        return _sgns_word_guarded.py_func
    return _WORD_STEPS[scratch].py_func


def sync_rows(w_in, w_out, scratch):
    """Merge every private hot row of this thread into the shared matrices: the words' rows, and
    with hierarchical softmax the inner nodes' rows of syn1, with subwords the n-grams' of w_sub."""


@overload(sync_rows, jit_options=KERNEL_OPTS)
def _sync_rows_for_scratch(w_in, w_out, scratch):
    if scratch in HS_SCRATCHES:
        def sync_words_and_nodes(w_in, w_out, scratch):
            _sync_hot_rows(w_in, w_out, scratch[2])
            _sync_hs_rows(scratch[-1], scratch[2][0])
        return sync_words_and_nodes
    if scratch in SUB_SCRATCHES:
        def sync_words_and_ngrams(w_in, w_out, scratch):
            _sync_hot_rows(w_in, w_out, scratch[2])
            _sync_sub_rows(scratch[-1])
        return sync_words_and_ngrams
    return lambda w_in, w_out, scratch: _sync_hot_rows(w_in, w_out, scratch[2])


def contexts_touched_per_window(scratch):
    """CBOW counts a use of a hot context row in every window that updates it (_cbow_word): the
    row takes the window's whole gradient each time, about 2 x reach times per occurrence, and
    counting once per occurrence let the copies lag 11 full steps per counted use at window 10
    (issue 16). Skip-gram counts once per occurrence, as calibrated on 16 cores."""


@overload(contexts_touched_per_window, jit_options=KERNEL_OPTS)
def _contexts_touched_per_window_for_scratch(scratch):
    per_window = scratch in (CBOW_SCRATCH, CBOW_HS_SCRATCH, CBOW_SUB_SCRATCH)
    return lambda scratch: per_window


def negatives_per_context(scratch):
    """word2vec.c skip-gram (and fastText's, subwords) draws negatives for every (center, context)
    pair; CBOW and HogBatch skip-gram once per center word."""


@overload(negatives_per_context, jit_options=KERNEL_OPTS)
def _negatives_per_context_for_scratch(scratch):
    per_pair = scratch in (SGNS_SCRATCH, SGNS_HS_SCRATCH, SGNS_SUB_SCRATCH) or scratch in GUARDED_SCRATCHES
    return lambda scratch: per_pair

