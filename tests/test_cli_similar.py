"""`w2v-async similar`: one word's neighbours, and analogy queries (--positive / --negative) answered
as gensim's KeyedVectors.most_similar answers them."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from gensim.models import KeyedVectors

from w2v_async.cli import cli

WORDS = ["king", "queen", "man", "woman", "prince", "princess", "boy", "girl", "apple", "pear", "car", "bus"] + \
        [f"w{i}" for i in range(28)]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    """A word2vec text file of random vectors (40 words, dim 6), and gensim's reading of it."""
    path = tmp_path_factory.mktemp("vectors") / "v.txt"
    rng = np.random.default_rng(4)
    kv = KeyedVectors(6)
    kv.add_vectors(WORDS, rng.standard_normal((len(WORDS), 6)).astype(np.float32))
    kv.save_word2vec_format(str(path), binary=False)
    return path, KeyedVectors.load_word2vec_format(str(path), binary=False)


def _answer(result):
    assert result.exit_code == 0, result.output
    return [(w, s) for w, s in json.loads(result.stdout)]


QUERIES = [
    (["king", "woman"], ["man"]),
    (["boy", "queen", "pear"], ["girl", "apple"]),
    ([], ["car"]),
    (["bus"], []),
    (["w3", "w3"], ["w7"]),  # a repeated word, as gensim takes it
]


@pytest.mark.parametrize("positive, negative", QUERIES)
@pytest.mark.parametrize("topn", [4, 50])
def test_an_analogy_query_answers_as_gensims_most_similar(vectors, positive, negative, topn):
    path, kv = vectors
    args = (["--positive", *positive] if positive else []) + (["--negative", *negative] if negative else [])
    got = _answer(invoke("similar", path, *args, "-n", topn, "--json"))
    expected = kv.most_similar(positive=positive, negative=negative, topn=topn)
    assert [w for w, _ in got] == [w for w, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-6)
    assert not set(w for w, _ in got) & set(positive + negative)  # the query's words are never answers
    if topn == 50:
        assert len(got) == len(WORDS) - len(set(positive + negative))


def test_the_negative_words_change_the_answer(vectors):
    """The query above is one where dropping --negative would give another answer (so the test can fail)."""
    path, kv = vectors
    with_negative = _answer(invoke("similar", path, "--positive", "king", "woman", "--negative", "man", "--json"))
    without = _answer(invoke("similar", path, "--positive", "king", "woman", "--json"))
    assert [w for w, _ in with_negative] != [w for w, _ in without]
    assert [w for w, _ in without] == [w for w, _ in kv.most_similar(positive=["king", "woman"])]


def test_the_word_lists_can_be_written_several_ways(vectors):
    path, _ = vectors
    expected = _answer(invoke("similar", path, "--positive", "king", "woman", "--negative", "man", "-n", "5",
                              "--json"))
    for args in (["--positive", "king", "--positive", "woman", "--negative=man", "--topn", "5"],
                 ["king", "--positive", "woman", "--negative", "man", "-n", "5"],  # WORD is a positive word
                 ["-n", "5", "--negative", "man", "--positive=king", "woman"],
                 ["--json", "--positive", "king", "woman", "-n", "5", "--negative", "man"]):
        assert _answer(invoke("similar", path, *args, "--json")) == expected, args


def test_one_word_gives_its_neighbours_as_before(vectors):
    path, kv = vectors
    got = _answer(invoke("similar", path, "queen", "-n", "3", "--json"))
    assert got == [(w, float(s)) for w, s in kv.most_similar("queen", topn=3)]
    text = invoke("similar", path, "queen", "-n", "3")
    assert text.exit_code == 0
    assert text.stdout.splitlines() == [f"{w}\t{s:.4f}" for w, s in got]


def test_unknown_words_are_named_on_one_error_line(vectors):
    path, _ = vectors
    result = invoke("similar", path, "--positive", "king", "nosuch", "--negative", "man", "other", "nosuch")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"Error: 'nosuch', 'other' are not in the vocabulary of {path}; try other words.\n"
    result = invoke("similar", path, "--positive", "king", "woman", "--negative", "nosuch")
    assert result.exit_code == 1
    assert result.stderr == f"Error: 'nosuch' is not in the vocabulary of {path}; try another word.\n"


def test_a_query_needs_a_word(vectors):
    path, _ = vectors
    result = invoke("similar", path)
    assert result.exit_code == 2 and result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    result = invoke("similar", path, "--positive")
    assert result.exit_code == 2 and result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
