"""Every model at thread counts far above this machine's cores: oversubscribed threads still race
and still see each other's stale rows, so what breaks at 16 cores breaks here too."""

import numpy as np
import pytest

from conftest import group_margin, planted_corpus, zipf_corpus
from w2v_async.config import GloveConfig, VocabConfig, Word2VecConfig
from w2v_async.data.cooccur import count_cooccurrences
from w2v_async.data.corpus import CorpusReader
from w2v_async.models.hot_rows import HOT_ROW_STALENESS, hot_row_merge_every, hot_rows
from w2v_async.engines.threads import train_glove, train_word2vec
from w2v_async.data.vocab import scan_corpus

MODES = [("sgns", "window"), ("sgns", "pair"), ("cbow", None)]
MANY = [8, 16, 64]


@pytest.fixture(scope="module")
def zipf(tmp_path_factory):
    path = zipf_corpus(tmp_path_factory.mktemp("zipf") / "zipf.txt", n_tokens=800_000)
    return scan_corpus(CorpusReader(str(path)), VocabConfig(min_count=1))


@pytest.fixture(scope="module")
def planted_big(tmp_path_factory):
    """The planted groups, long enough (120,000 words) for every one of 16 threads to get blocks."""
    path = planted_corpus(tmp_path_factory.mktemp("planted") / "p.txt", n_sentences=6000)
    return scan_corpus(CorpusReader(str(path)), VocabConfig(min_count=1))


def _train(encoded, model, batching, threads, **kw):
    vocab, enc = encoded
    cfg = Word2VecConfig(model=model, batching=batching, threads=threads, **kw)
    return train_word2vec(enc, vocab, cfg, progress=False)


@pytest.mark.parametrize("model, batching", MODES)
def test_epoch_loss_with_a_very_hot_head_does_not_depend_on_threads(zipf, model, batching):
    """The 16-core divergence: hot rows copied per thread and merged every 10,000 words took each
    thread's change against one stale value, and T of them overshot; at 16 threads this epoch-1
    loss was 10% above one thread's and the second epoch's rose to 4.6 (one thread: 2.7)."""
    kw = dict(dim=32, epochs=2)
    one = _train(zipf, model, batching, 1, **kw).epoch_loss
    for threads in MANY:
        many = _train(zipf, model, batching, threads, **kw).epoch_loss
        # threads do not wait for each other between epochs: 64 threads sharing 2 cores run far
        # apart, so an epoch's loss mixes in the next one's; the last epoch is the one to compare
        compared = slice(None) if threads <= 16 else slice(-1, None)
        np.testing.assert_allclose(many[compared], one[compared], rtol=0.03, err_msg=f"{threads} threads")


# one thread reaches 0.63-0.66; window and CBOW keep 0.6-0.69 at 2-64 threads. Pair updates by
# two or more threads on these 40 equally frequent words pull every vector towards a common
# direction (the mean unit vector's norm is 0.9) and reach 0.2-0.57, with or without hot-row copies
MIN_MARGIN = {"window": 0.45, "pair": 0.15, None: 0.45}


@pytest.mark.parametrize("model, batching", MODES)
@pytest.mark.parametrize("threads", MANY)
def test_planted_groups_are_learned_by_many_threads(planted_big, model, batching, threads):
    vocab, _ = planted_big
    res = _train(planted_big, model, batching, threads, dim=16, window=3, sample=0.0, epochs=2)
    assert np.isfinite(res.w_in).all() and np.isfinite(res.w_out).all()
    assert group_margin(vocab.words, res.w_in) > MIN_MARGIN[batching]
    assert res.epoch_loss[-1] < res.epoch_loss[0]


def test_every_thread_gets_work_on_a_small_corpus(planted_big):
    """16 threads on 120,000 words: blocks shrink below 10,000 words so that none sits idle."""
    _, enc = planted_big
    shards = enc.shards(16)
    assert all(len(sh) > 0 for sh in shards)
    assert sorted(np.concatenate(shards).tolist()) == list(range(enc.n_sentences))
    sizes = [int((enc.sent_starts[sh + 1] - enc.sent_starts[sh]).sum()) for sh in shards]
    assert max(sizes) < 1.5 * min(sizes)


def test_hot_row_staleness_is_bounded_for_any_thread_count():
    """Copies merge after K uses with T K within the budget (smaller for a larger --alpha); where
    K would be 1, no copies are kept."""
    for alpha_ratio in (0.5, 1.0, 2.0, 10.0):
        for threads in (1, 2, 3, 4, 8, 16, 32, 64, 1024):
            k = hot_row_merge_every(threads, alpha_ratio)
            n_hot = hot_rows(60_000, 100, threads, k)
            assert k >= 1
            if threads == 1 or k < 2:
                assert n_hot == 0
            else:
                assert n_hot > 0 and threads * k * max(1.0, alpha_ratio) <= HOT_ROW_STALENESS
    assert hot_row_merge_every(8, 2.0) < hot_row_merge_every(8, 1.0) == hot_row_merge_every(8, 0.5)


@pytest.fixture(scope="module")
def zipf_cooc(zipf):
    vocab, enc = zipf
    return count_cooccurrences(enc, vocab, window=5, threads=4)


def _glove_cost(res, cooc, x_max=100.0, alpha=0.75):
    """Mean weighted GloVe cost of the final parameters over every entry (no epoch mixing)."""
    rows, cols, x = cooc.rows, cooc.cols, cooc.values.astype(np.float64)
    diff = (np.einsum("ij,ij->i", res.w_word[rows], res.w_ctx[cols]) + res.b_word[rows] + res.b_ctx[cols]
            - np.log(x))
    return float(np.mean(np.minimum(1.0, (x / x_max) ** alpha) * diff * diff / 2))


# 64 threads on 2 cores each own 13,000 of these 847,000 entries. Without glove.c's barrier after
# every epoch, each ran several epochs of its own entries in one time slice: +20-23% cost at 64
# threads and +4-5% at 16 (since the biases learn at glove.c's rate 1). With it, within 1%.
GLOVE_COST_TOLERANCE = {8: 0.03, 16: 0.03, 64: 0.03}


def test_glove_cost_does_not_depend_on_threads(zipf_cooc):
    """The final parameters' cost over all entries: an epoch's reported cost mixes epochs when
    oversubscribed threads run far apart."""
    runs = {t: train_glove(zipf_cooc, GloveConfig(dim=16, epochs=6, threads=t, seed=2), progress=False)
            for t in [1] + MANY}
    one = _glove_cost(runs[1], zipf_cooc)
    for t in MANY:
        assert np.isfinite(runs[t].epoch_cost).all()
        assert _glove_cost(runs[t], zipf_cooc) == pytest.approx(one, rel=GLOVE_COST_TOLERANCE[t]), f"{t} threads"
    assert one < 0.6 * runs[1].epoch_cost[0]


@pytest.mark.parametrize("threads", [8, 16])
def test_glove_learns_planted_groups_with_many_threads(tmp_path_factory, threads):
    path = planted_corpus(tmp_path_factory.mktemp("planted") / "p.txt", n_sentences=6000, mix=0.1)
    vocab, enc = scan_corpus(CorpusReader(str(path)), VocabConfig(min_count=1))
    cooc = count_cooccurrences(enc, vocab, window=5, threads=threads)
    res = train_glove(cooc, GloveConfig(dim=16, epochs=25, x_max=10.0, threads=threads), progress=False)
    assert np.isfinite(res.vectors()).all()
    assert res.epoch_cost[-1] < 0.5 * res.epoch_cost[0]
    assert group_margin(cooc.vocab.words, res.vectors()) > 0.3


def test_cooccurrence_counts_do_not_depend_on_threads(zipf):
    vocab, enc = zipf
    one = count_cooccurrences(enc, vocab, window=5, threads=1)
    for threads in (16, 64):
        many = count_cooccurrences(enc, vocab, window=5, threads=threads)
        np.testing.assert_array_equal(many.rows, one.rows)
        np.testing.assert_array_equal(many.cols, one.cols)
        np.testing.assert_allclose(many.values, one.values, rtol=1e-6)
