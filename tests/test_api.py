"""The Python API: the same training as the CLI from a path or from token lists, KeyedVectors back,
and the project's exceptions (never SystemExit)."""

import numpy as np
import pytest

import w2v_async
from conftest import group_margin, planted_corpus
from w2v_async.errors import ConfigError, InputError

SMALL = dict(dim=16, window=3, sample=0.0, epochs=2, min_count=1, threads=1, seed=4, progress=False)


def _sentences(path):
    with open(path) as f:
        return [line.split() for line in f]


def test_token_lists_train_exactly_as_the_same_text_file(planted, tmp_path):
    out = str(tmp_path / "v.bin")
    from_file, summary = w2v_async.train_word2vec(planted, out, **SMALL)
    from_lists, summary2 = w2v_async.train_word2vec(iter(_sentences(planted)), **SMALL)  # a one-pass generator
    assert from_file.index_to_key == from_lists.index_to_key
    assert np.array_equal(from_file.vectors, from_lists.vectors)
    assert summary["epoch_loss"] == summary2["epoch_loss"] and summary2["outputs"]["vectors"] is None
    assert summary2["corpus"]["source"] == "<sentences>" and summary["corpus"]["source"] == planted
    from w2v_async.io import load_vectors

    assert np.array_equal(load_vectors(out).vectors, from_file.vectors)
    assert group_margin(from_file.index_to_key, from_file.vectors) > 0.3


def test_glove_from_token_lists_learns_the_groups(planted_mixed):
    kv, summary = w2v_async.train_glove(_sentences(planted_mixed), dim=16, window=5, epochs=25, x_max=10.0, min_count=1,
                                        threads=2, progress=False)
    assert summary["model"] == "glove" and summary["epoch_cost"][-1] < 0.5 * summary["epoch_cost"][0]
    assert group_margin(kv.index_to_key, kv.vectors) > 0.3


def test_cbow_and_options_reach_the_config(planted):
    _, summary = w2v_async.train_word2vec(planted, **{**SMALL, "model": "cbow", "negative": 3, "alpha": 0.03})
    train = summary["config"]["train"]
    assert (train["model"], train["negative"], train["alpha"], train["dim"]) == ("cbow", 3, 0.03, 16)


@pytest.mark.parametrize("call, error, text", [
    (lambda p: w2v_async.train_word2vec(p, dimm=10), ConfigError, "unknown option(s) for --model sgns: dimm"),
    (lambda p: w2v_async.train_word2vec(p, x_max=10), ConfigError, "x_max"),
    (lambda p: w2v_async.train_word2vec(p, model="glove"), ConfigError, "train_glove"),
    (lambda p: w2v_async.train_word2vec(p, dim=0, progress=False), ConfigError, "--dim must be a positive"),
    (lambda p: w2v_async.train_word2vec(["a b c", "d e"], progress=False), InputError, "lists of tokens"),
    (lambda p: w2v_async.train_word2vec(p + ".missing", progress=False), ConfigError, "does not exist"),
])
def test_bad_options_raise_the_projects_exceptions(planted, call, error, text):
    with pytest.raises(error) as e:
        call(planted)
    assert text in str(e.value)


def test_evaluate_returns_the_report(planted):
    kv, _ = w2v_async.train_word2vec(planted, **SMALL)
    report = w2v_async.evaluate(kv)
    d = report.to_dict()
    assert [a["dataset"] for a in d["analogies"]] == ["questions-words.txt"]
    assert {s["dataset"] for s in d["similarities"]} == {"wordsim353.tsv", "simlex999.txt"}
    assert d["analogies"][0]["evaluated"] == 0  # the planted words are in no analogy question


def test_importing_the_package_loads_neither_numba_nor_gensim():
    import subprocess
    import sys

    code = "import sys, w2v_async; print('numba' in sys.modules, 'gensim' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == \
        ["False", "False"]


@pytest.fixture
def planted(tmp_path):
    return str(planted_corpus(tmp_path / "planted.txt", n_sentences=600))


def test_vocabulary_and_cooccurrences_from_python(planted, tmp_path):
    vocab, summary = w2v_async.build_vocab(_sentences(planted), str(tmp_path / "v.tsv"), min_count=1)
    assert len(vocab) == 40 and summary["vocab_size"] == 40 and (tmp_path / "v.tsv").exists()
    summary = w2v_async.count_cooccurrences(planted, str(tmp_path / "c.npz"), vocab=str(tmp_path / "v.tsv"),
                                            window=5, threads=2)
    assert summary["nnz"] > 0 and summary["window"] == 5
    kv, _ = w2v_async.train_glove(cooccur=str(tmp_path / "c.npz"), dim=8, epochs=2, progress=False)
    assert kv.index_to_key == vocab.words
    with pytest.raises(ConfigError, match="unknown option"):
        w2v_async.build_vocab(planted, min_cont=1)
