"""Memory that must not grow with the corpus (README: "bounded by the model"): the threads
engine's shards and longest sentence, made in pieces (pieces forced tiny here, so a test corpus
has many), and the Ray driver's blocks, in Ray's store only while their jobs run."""

import tracemalloc

import numpy as np
import pytest

from w2v_async.config import Word2VecConfig
from w2v_async.data import encoded
from w2v_async.data.encoded import EncodedCorpus
from w2v_async.data.vocab import Vocab
from w2v_async.engines import threads


def _whole_array_shards(starts: np.ndarray, n: int, block_words: int = 10_000):
    """The deal as one computation over whole arrays (the reference for the pieces)."""
    n_words, n_sentences = int(starts[-1]), starts.shape[0] - 1
    block_words = max(1, min(block_words, n_words // (4 * n)))
    block = starts[:-1] // block_words
    new = np.concatenate([[True], block[1:] > block[:-1]]) if n_sentences else np.zeros(0, bool)
    numbers = np.cumsum(new) - 1
    return [np.flatnonzero(numbers % n == t).astype(np.int64) for t in range(n)]


def _corpus(lengths) -> EncodedCorpus:
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return EncodedCorpus(np.zeros(int(starts[-1]), np.int32), starts)


CORPORA = {
    "short": [3] * 50,
    "varied": np.random.default_rng(0).integers(1, 400, size=3000),
    "spanning blocks": np.random.default_rng(1).choice([1, 2, 25_000], size=400),  # sentences past a block
    "empty": [],
}


@pytest.mark.parametrize("piece", [1, 3, 64, encoded.SHARD_PIECE])
@pytest.mark.parametrize("name", list(CORPORA))
@pytest.mark.parametrize("n", [1, 2, 5])
def test_the_deal_in_pieces_is_the_whole_array_deal(monkeypatch, name, n, piece):
    monkeypatch.setattr(encoded, "SHARD_PIECE", piece)
    corpus = _corpus(CORPORA[name])
    for block_words in (10_000, 7):
        expected = _whole_array_shards(corpus.sent_starts, n, block_words)
        deal = corpus.deal(n, block_words)
        for shard, want in zip(deal, expected):
            assert len(shard) == shard.shape[0] == want.shape[0]
            got = np.concatenate([shard.sentences(a, a + 5) for a in range(0, len(shard), 5)] + [np.zeros(0, np.int64)])
            np.testing.assert_array_equal(got, want)
            assert shard.sentences().dtype == np.int64 and shard.sentences(2, 1).shape == (0,)
            probes = np.arange(-1, corpus.n_sentences + 2)
            for side in ("left", "right"):  # where a checkpoint's sentences done fall (resume)
                np.testing.assert_array_equal(np.searchsorted(shard, probes, side), np.searchsorted(want, probes, side))
            assert int(np.searchsorted(shard, 3)) == int(np.searchsorted(want, 3))
        for got, want in zip(corpus.shards(n, block_words), expected):
            np.testing.assert_array_equal(got, want)
    assert corpus.longest_sentence() == max([1, *CORPORA[name]])


def _encoded(n_sentences: int, length: int, n_words: int = 50):
    rng = np.random.default_rng(5)
    ids = rng.integers(0, n_words, size=n_sentences * length).astype(np.int32)
    vocab = Vocab([f"w{i}" for i in range(n_words)], np.bincount(ids, minlength=n_words)[np.arange(n_words)] + 1)
    return vocab, EncodedCorpus(ids, np.arange(0, n_sentences * length + 1, length, dtype=np.int64))


def test_the_kernels_get_each_shard_in_bounded_pieces_each_sentence_once_an_epoch(monkeypatch):
    """Pieces of 7 sentences: every call's sentences are at most 7, and each thread's calls cover
    its shard in order, once per epoch."""
    from w2v_async.models import word2vec_loops

    monkeypatch.setattr(threads, "PIECE_SENTENCES", 7, raising=False)
    real = word2vec_loops.epoch_kernel
    seen = {}

    def recording(update):
        kernel = real(update)

        def run(w_in, w_out, shard, *args):
            seen.setdefault(args[4], []).append(np.array(shard[2]))
            return kernel(w_in, w_out, shard, *args)

        return run

    monkeypatch.setattr(word2vec_loops, "epoch_kernel", recording)
    vocab, corpus = _encoded(400, 5)
    cfg = Word2VecConfig(dim=8, window=2, epochs=2, threads=2, sample=0.0, seed=1)
    res = threads.train_word2vec(corpus, vocab, cfg, progress=False)
    assert res.words_trained == 2 * corpus.n_words
    assert max(len(s) for calls in seen.values() for s in calls) <= 7
    for t, shard in enumerate(corpus.shards(2)):
        np.testing.assert_array_equal(np.concatenate(seen[t]), np.tile(shard, 2))


def test_training_allocates_nothing_the_size_of_the_sentences(monkeypatch):
    """1M two-word sentences: an O(sentences) int64 array is 8 MB. Before, the engine allocated
    np.diff of the sentence starts (8 MB) and the shards (8 MB, then copied by astype); in pieces
    (forced smaller than the corpus) it allocates a fraction of that."""
    monkeypatch.setattr(encoded, "SHARD_PIECE", 1 << 14)
    monkeypatch.setattr(threads, "PIECE_SENTENCES", 1 << 14, raising=False)
    n_sentences = 1_000_000
    vocab, corpus = _encoded(n_sentences, 2)
    cfg = Word2VecConfig(dim=4, window=1, negative=1, epochs=1, threads=2, sample=0.0, seed=1)
    threads.train_word2vec(corpus, vocab, cfg, progress=False)  # compiled (or loaded) before measuring
    tracemalloc.start()
    try:
        threads.train_word2vec(corpus, vocab, cfg, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n_sentences * 8 / 4, f"{peak / 1e6:.1f} MB traced"


class _FakeRay:
    def __init__(self):
        self.puts = []

    def put(self, value):
        self.puts.append(value)
        return ("ref", len(self.puts))


def test_blocks_are_held_while_their_jobs_run_and_put_again_when_needed_again():
    from w2v_async.engines.ray import BlocksInFlight

    ray = _FakeRay()
    blocks = BlocksInFlight(ray, lambda k: f"block {k}")
    first = blocks.take(0)
    assert blocks.take(0) == first and ray.puts == ["block 0"]  # two jobs of one block: one object
    blocks.take(1)
    blocks.give_back(0)
    assert set(blocks.held) == {0, 1}
    blocks.give_back(0)
    blocks.give_back(1)
    assert blocks.held == {} and blocks.most == 2
    assert blocks.take(0) != first and ray.puts[-1] == "block 0"  # a retry, or the next epoch


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    import logging

    ray.init(address="local", num_cpus=3, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.parametrize("model", ["sgns", "glove"])
def test_the_ray_driver_holds_the_blocks_of_the_jobs_in_flight_not_the_corpus(local_ray, monkeypatch, model):
    """Blocks of 1,000 words (or entries), 20 and more an epoch, two replicas: at most four
    blocks (two jobs in flight per replica) are ever in the store; before, all were put first."""
    from w2v_async.config import GloveConfig, RayConfig
    from w2v_async.engines import ray as ray_engine

    made = []

    class Recorded(ray_engine.BlocksInFlight):
        def __init__(self, *args):
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(ray_engine, "BlocksInFlight", Recorded)
    rcfg = RayConfig(replicas=2, ps_shards=1, batch_words=500, job_words=1000)
    if model == "sgns":
        vocab, corpus = _encoded(10_000, 2)
        cfg = Word2VecConfig(dim=8, window=1, epochs=2, threads=1, sample=0.0, seed=1)
        res = ray_engine.train_word2vec_ray(corpus, vocab, cfg, rcfg, progress=False)
        n_blocks, done = corpus.n_words // 1000, res.words_trained
        assert done == 2 * corpus.n_words
    else:
        from conftest import random_cooc

        cooc = random_cooc(150, seed=2)  # 22,500 entries
        cfg = GloveConfig(dim=8, epochs=2, threads=1, seed=1)
        res = ray_engine.train_glove_ray(cooc, cfg, rcfg, progress=False)
        n_blocks = cooc.nnz // 1000
        assert res.entries_trained == 2 * cooc.nnz
    assert n_blocks >= 20
    assert 1 <= made[0].most <= 2 * rcfg.replicas and made[0].held == {}
