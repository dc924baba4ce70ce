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
from w2v_async.models import tokens as kernels

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


def _reduce_vocab_reference(tokens, max_vocab):
    """word2vec.c's LearnVocabFromTrainFile + ReduceVocab over a dict, in Python."""
    counts, min_reduce = {}, 1
    for t in tokens:
        counts[t] = counts.get(t, 0) + 1
        while len(counts) > max_vocab:
            counts = {w: c for w, c in counts.items() if c > min_reduce}
            min_reduce += 1
    return counts


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=12), max_size=400), st.integers(1, 20))
def test_pruning_is_word2vec_c_reduce_vocab_and_frees_the_pruned_words_bytes(tokens, max_vocab):
    table = WordTable(words=4, pool=8)
    for i in range(0, len(tokens), 23):
        table.add(tokens[i: i + 23], max_vocab=max_vocab)
    live, counts = table.live()
    assert dict(zip(table.words(live), counts.tolist())) == _reduce_vocab_reference(tokens, max_vocab)
    used = int(table.meta[kernels.META_POOL])  # only the live words' bytes stay in the pool
    assert used == sum(len(w.encode()) for w in table.words(live))
    again = table.add(table.words(live), max_vocab=-1)  # the slots still find every live word
    assert again.tolist() == live.tolist()


def test_reading_workers_share_max_vocab_size(tmp_path, monkeypatch):
    from w2v_async.data import scan as scan_module

    monkeypatch.setattr(scan_module, "MIN_SPAN_BYTES", 1 << 12)
    monkeypatch.setattr(scan_module, "READER_MIN_WORDS", 100)  # 4 readers of 100 words each
    held = []
    merge = scan_module.merge_tables
    monkeypatch.setattr(scan_module, "merge_tables", lambda tables: (held.append([len(t) for t in tables]),
                                                                      merge(tables))[1])
    path = tmp_path / "junk.txt"
    rng = np.random.default_rng(1)
    path.write_text("".join(" ".join(f"j{x}" for x in rng.integers(0, 10**9, 50)) + " the of\n" for _ in range(2000)))
    reader = CorpusReader(str(path))
    vocab, _ = scan_corpus(reader, VocabConfig(min_count=1, max_vocab_size=400), encode=False, threads=4)
    assert len(held[0]) == reader.stats.n_readers > 2
    assert sum(held[0]) <= 400  # all the workers' tables together, not 4 x 400
    assert reader.stats.n_pruned > 90_000 and vocab.words[:2] in (["the", "of"], ["of", "the"])


def test_no_reader_counts_with_a_share_under_reader_min_words(tmp_path, monkeypatch):
    """--max-vocab-size 400 over 4 threads would leave each reader 100 words, each pruning by a
    quarter of the counts: with READER_MIN_WORDS 200, two readers count, 200 words each."""
    from w2v_async.data import scan as scan_module

    monkeypatch.setattr(scan_module, "MIN_SPAN_BYTES", 1 << 12)
    monkeypatch.setattr(scan_module, "READER_MIN_WORDS", 200)
    path = tmp_path / "junk.txt"
    rng = np.random.default_rng(1)
    path.write_text("".join(" ".join(f"j{x}" for x in rng.integers(0, 10**6, 50)) + "\n" for _ in range(2000)))
    readers = {}
    for size in (None, 10**6, 400, 150):
        reader = CorpusReader(str(path))
        scan_corpus(reader, VocabConfig(min_count=1, max_vocab_size=size), encode=False, threads=4)
        readers[size] = reader.stats.n_readers
    assert readers[None] == readers[10**6] >= 3 and readers[400] == 2 and readers[150] == 1


@pytest.mark.parametrize("threads, directory", [(1, False), (3, True)])
def test_compacting_pruned_records_changes_nothing_but_memory(tmp_path, monkeypatch, threads, directory):
    from w2v_async.data import scan as scan_module
    from w2v_async.data import words as words_module

    monkeypatch.setattr(scan_module, "MIN_SPAN_BYTES", 1 << 12)
    monkeypatch.setattr(scan_module, "CHUNK_BYTES", 1 << 10)  # many chunks, a chance to compact after each
    rng = np.random.default_rng(2)
    lines = [" ".join([f"j{x}" for x in rng.integers(0, 10**9, 8)] + ["the", "of", f"k{i % 7}"]) for i in range(3000)]
    path = tmp_path / "junk.txt"
    path.write_text("\n".join(lines) + "\n")
    cfg = VocabConfig(min_count=1, max_vocab_size=60)
    results = {}
    for compact_min in (1 << 40, 4):  # never compact (as before compaction existed), then after nearly every prune
        monkeypatch.setattr(words_module, "COMPACT_MIN", compact_min)
        compactions = []
        compact = words_module.WordTable.compact
        monkeypatch.setattr(words_module.WordTable, "compact",
                            lambda self, compact=compact: (lambda m: (compactions.append(m), m)[1])(compact(self)))
        tables = []
        merge = scan_module.merge_tables
        monkeypatch.setattr(scan_module, "merge_tables", lambda t, merge=merge: (tables.append(t), merge(t))[1])
        vocab, enc = scan_corpus(CorpusReader(str(path)), cfg, directory=str(tmp_path) if directory else None,
                                 threads=threads)
        results[compact_min] = (vocab.words, vocab.counts.tolist(), enc.ids.tolist(), enc.sent_starts.tolist(),
                                sum(m is not None for m in compactions), max(t.n_ids for t in tables[0]))
    never, often = results[1 << 40], results[4]
    assert often[:4] == never[:4]  # the same vocabulary and encoded corpus
    assert never[4] == 0 and often[4] > 10
    assert often[5] < never[5] / 10  # the records the tables hold: bounded, not one per distinct word
