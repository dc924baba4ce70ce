"""Vocabulary counting, pruning, the vocab file, subsampling."""

import collections

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from w2v_async.config import VocabConfig
from w2v_async.data.corpus import CorpusReader
from w2v_async.errors import InputError
from w2v_async.data.vocab import Vocab, scan_corpus, vocab_of
from w2v_async.data.words import WordTable

words_st = st.text(alphabet="abcdefgh", min_size=1, max_size=3)


@settings(max_examples=80, deadline=None)
@given(st.lists(words_st, max_size=300), st.integers(1, 4))
def test_counter_matches_collections_counter(tokens, min_count):
    table = WordTable(words=4, pool=8)  # tiny, so that it grows while counting
    for i in range(0, len(tokens), 37):
        table.add(tokens[i : i + 37])
    vocab, remap = vocab_of(table, VocabConfig(min_count=min_count))
    expected = {w: c for w, c in collections.Counter(tokens).items() if c >= min_count}
    assert dict(zip(vocab.words, vocab.counts.tolist())) == expected
    assert (np.diff(vocab.counts) <= 0).all()
    # ties keep first-occurrence order
    first = {w: tokens.index(w) for w in expected}
    for a, b in zip(vocab.words, vocab.words[1:]):
        if expected[a] == expected[b]:
            assert first[a] < first[b]
    assert sorted(remap[remap >= 0].tolist()) == list(range(len(vocab)))


def test_pruning_bounds_distinct_words_and_keeps_frequent_ones():
    rng = np.random.default_rng(0)
    table = WordTable()
    for _ in range(40):
        rare = [f"r{x}" for x in rng.integers(0, 10_000, size=100)]
        table.add(["the", "of", "and"] * 20 + rare, max_vocab=50)
        assert len(table) <= 50
    vocab, _ = vocab_of(table, VocabConfig(min_count=1))
    assert vocab.words[:3] == ["the", "of", "and"]
    assert vocab.counts[0] == 800
    assert table.n_pruned > 3900  # nearly every rare word came and went


def test_max_final_vocab_raises_min_count_without_splitting_ties():
    table = WordTable()
    table.add(["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 3 + ["e"])
    vocab, _ = vocab_of(table, VocabConfig(min_count=1, max_final_vocab=3))
    assert vocab.words == ["a", "b"]  # c and d tie at 3: both go rather than an arbitrary one


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text(alphabet=st.characters(blacklist_categories=("Z", "C")), min_size=1, max_size=8),
                       st.integers(1, 10**9), min_size=1, max_size=40))
def test_vocab_file_round_trip(tmp_path_factory, counts):
    words = sorted(counts, key=lambda w: -counts[w])
    vocab = Vocab(words, [counts[w] for w in words])
    path = tmp_path_factory.mktemp("v") / "vocab.tsv"
    vocab.save(str(path))
    back = Vocab.load(str(path))
    assert back.words == vocab.words and back.counts.tolist() == vocab.counts.tolist()


def test_vocab_load_rejects_other_formats(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("hello world again\n")
    with pytest.raises(InputError, match="is not 'word count'"):
        Vocab.load(str(path))


def test_keep_probs_follow_word2vec_c_formula():
    vocab = Vocab(["a", "b", "c"], [1_000_000, 1000, 1])
    p = vocab.keep_probs(1e-3)
    t = 1e-3 * vocab.total
    assert p[0] == pytest.approx((np.sqrt(1_000_000 / t) + 1) * t / 1_000_000, rel=1e-6)
    assert p[1] == 1.0 and p[2] == 1.0
    assert (vocab.keep_probs(0) == 1).all()


def test_scan_encodes_in_vocabulary_tokens_per_sentence(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("a b a rare\n\nb a\nrare2 rare3\n")
    vocab, enc = scan_corpus(CorpusReader(str(path)), VocabConfig(min_count=2))
    assert vocab.words == ["a", "b"]
    decoded = [[vocab.words[i] for i in enc.ids[s:e]] for s, e in zip(enc.sent_starts[:-1], enc.sent_starts[1:])]
    assert decoded == [["a", "b", "a"], ["b", "a"]]  # OOV dropped, empty sentences dropped


def test_scan_with_given_vocab_does_not_count(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("x y z x\n")
    given_vocab = Vocab(["z", "x"], [10, 3])
    vocab, enc = scan_corpus(CorpusReader(str(path)), VocabConfig(min_count=1), vocab=given_vocab)
    assert vocab is given_vocab
    assert enc.ids.tolist() == [1, 0, 1]


def test_scan_errors_name_the_problem(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(InputError, match="has no words"):
        scan_corpus(CorpusReader(str(empty)), VocabConfig())
    rare = tmp_path / "rare.txt"
    rare.write_text("a b c\n")
    with pytest.raises(InputError, match="0 words with count >= 5; lower --min-count"):
        scan_corpus(CorpusReader(str(rare)), VocabConfig(min_count=5))
