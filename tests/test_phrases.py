"""Phrases (`w2v-async phrases`): the same phrase table and output as gensim's Phrases + FrozenPhrases
on generated text with planted bigrams, word2vec.c's word2phrase score, NPMI within [-1, 1] over
passes, pruning, threads, --save / --apply, connector words, and one-line errors for bad inputs."""

import gzip
import json
import math
import os
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner
from gensim.models.phrases import ENGLISH_CONNECTOR_WORDS, FrozenPhrases, Phrases, npmi_scorer

import w2v_async
from w2v_async.cli import cli
from w2v_async.cli.phrases import SCORINGS as CLI_SCORINGS
from w2v_async.data import scan
from w2v_async.data.phrases_table import ENGLISH_CONNECTOR_WORDS as OURS_ENGLISH
from w2v_async.data.phrases_table import SCORINGS, PhraseTable, scores
from w2v_async.errors import ConfigError

PLANTED = [("new", "york"), ("san", "francisco"), ("machine", "learning"), ("hot", "dog"), ("ice", "cream"),
           ("bank", "of", "america"), ("eye", "of", "the", "beholder"), ("new", "york", "city")]
ALONE = ["new", "york", "hot", "cream", "bank", "the", "of", "a", "city"]  # planted words also seen apart


def planted_text(path, n_lines=3000, seed=0, n_words=2000, long_line=True, upper=False):
    """Zipf-distributed words w0..w1999 with the planted phrases (and some of their words alone)
    inserted; one line of 25,000 tokens (split into 10,000-token sentences when read)."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_words + 1) ** 1.1
    p /= p.sum()
    lines = []
    for k in range(n_lines):
        tokens = []
        for _ in range(int(rng.integers(3, 40))):
            r = rng.random()
            if r < 0.08:
                tokens.extend(PLANTED[int(rng.integers(len(PLANTED)))])
            elif r < 0.12:
                tokens.append(ALONE[int(rng.integers(len(ALONE)))])
            else:
                tokens.append(f"w{int(rng.choice(n_words, p=p))}")
        if upper and k % 3 == 0:
            tokens = [t.upper() if i % 2 else "Über" + t for i, t in enumerate(tokens)]
        lines.append(" ".join(tokens))
    if long_line:
        lines.append(" ".join(["new", "york"] * 12_500))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n\n")  # and an empty line
    return str(path)


def sentences_of(path, lowercase=False):
    """gensim's LineSentence: a sentence per line, 10,000 tokens at most; empty lines give none."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            tokens = (line.lower() if lowercase else line).split()
            out.extend(tokens[i:i + 10_000] for i in range(0, len(tokens), 10_000))
    return out


def nonempty_lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.split() for line in f if line.strip()]


def gensim_lines(frozen, path, lowercase=False):
    """gensim's output, a line per non-empty input line (a long line's sentences joined again)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            tokens = (line.lower() if lowercase else line).split()
            if tokens:
                out.append([t for i in range(0, len(tokens), 10_000) for t in frozen[tokens[i:i + 10_000]]])
    return out


def assert_same_table(ours: dict, theirs: dict):
    assert set(ours) == set(theirs)
    for phrase, score in theirs.items():
        assert ours[phrase][0] == pytest.approx(score, rel=1e-6, abs=1e-6), phrase


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return planted_text(tmp_path_factory.mktemp("phrases") / "corpus.txt")


@pytest.mark.parametrize("scoring, threshold, connectors", [
    ("default", 10.0, "none"), ("npmi", 0.3, "none"), ("default", 10.0, "english"), ("npmi", 0.2, "english")])
def test_same_phrases_and_output_as_gensim(corpus, tmp_path, scoring, threshold, connectors):
    out = tmp_path / "out.txt"
    table, summary = w2v_async.phrases(corpus, str(out), scoring=scoring, threshold=threshold,
                                       connector_words=connectors, threads=2, log=lambda msg: None)
    words = ENGLISH_CONNECTOR_WORDS if connectors == "english" else frozenset()
    model = Phrases(sentences_of(corpus), min_count=5, threshold=threshold, scoring=scoring, connector_words=words)
    frozen = FrozenPhrases(model)
    assert len(frozen.phrasegrams) >= 5  # the planted phrases at least
    assert_same_table(table.passes[0], frozen.phrasegrams)
    assert nonempty_lines(out) == gensim_lines(frozen, corpus)
    assert summary["passes"][0]["keys"] == len(model.vocab)  # gensim's len_vocab
    assert summary["tokens"] == model.corpus_word_count
    if connectors == "english":
        assert "bank_of_america" in table.passes[0] and "eye_of_the_beholder" in table.passes[0]


def test_lowercase_and_lines_split_in_python_as_gensim_on_lowercased_text(tmp_path):
    corpus = planted_text(tmp_path / "upper.txt", n_lines=1500, upper=True, long_line=False)
    with open(corpus, "ab") as f:
        f.write(b"NEW YORK caf\xe9 \xff broken NEW york\n")  # invalid UTF-8: split in Python, bad bytes replaced
    table, _ = w2v_async.phrases(corpus, str(tmp_path / "out.txt"), lowercase=True, threads=1, log=lambda m: None)
    text = open(corpus, "rb").read().decode("utf-8", "replace")
    (tmp_path / "decoded.txt").write_text(text, encoding="utf-8")
    frozen = FrozenPhrases(Phrases(sentences_of(tmp_path / "decoded.txt", lowercase=True), min_count=5, threshold=10))
    assert_same_table(table.passes[0], frozen.phrasegrams)
    assert "new_york" in table.passes[0]
    assert nonempty_lines(tmp_path / "out.txt") == gensim_lines(frozen, tmp_path / "decoded.txt", lowercase=True)


def word2phrase_reference(path, min_count, threshold):
    """word2vec.c's word2phrase.c in Python: the score of each bigram of adjacent words of a line, and
    the text it writes (a word joins the one before when their score passes, unless that one joined)."""
    lines = [line.split() for line in open(path, encoding="utf-8")]
    words = Counter(t for line in lines for t in line)
    pairs = Counter((a, b) for line in lines for a, b in zip(line, line[1:]))
    total = sum(words.values())
    table = {}
    for (a, b), n_ab in pairs.items():
        if words[a] >= min_count and words[b] >= min_count and n_ab >= min_count:
            score = (n_ab - min_count) / words[a] / words[b] * total
            if score > threshold:
                table[f"{a}_{b}"] = (score, n_ab)
    out = []
    for line in lines:
        joined, prev_joined = [], True
        for t in line:
            if not prev_joined and f"{joined[-1]}_{t}" in table:
                joined[-1] = f"{joined[-1]}_{t}"
                prev_joined = True
            else:
                joined.append(t)
                prev_joined = False
        if joined:
            out.append(joined)
    return table, out


def test_word2phrase_scores_and_output_are_word2vec_c_s(tmp_path):
    corpus = planted_text(tmp_path / "c.txt", long_line=False)
    table, summary = w2v_async.phrases(corpus, str(tmp_path / "out.txt"), scoring="word2phrase", threshold=20,
                                       min_count=5, threads=1, log=lambda m: None)
    expected, text = word2phrase_reference(corpus, 5, 20)
    assert set(table.passes[0]) == set(expected) and len(expected) >= 5
    for phrase, (score, count) in expected.items():
        assert table.passes[0][phrase] == (pytest.approx(score, rel=1e-12), count)
    assert nonempty_lines(tmp_path / "out.txt") == text


def test_scorers_match_gensim_s_functions_one_by_one():
    rng = np.random.default_rng(1)
    n_a, n_b = rng.integers(1, 10_000, 500), rng.integers(1, 10_000, 500)
    n_ab = np.minimum(np.minimum(n_a, n_b), rng.integers(1, 3_000, 500))
    ours = scores("npmi", n_a, n_b, n_ab, 5, 123_456, 1_000_000)
    for k in range(500):
        theirs = npmi_scorer(int(n_a[k]), int(n_b[k]), int(n_ab[k]), 123_456, 5, 1_000_000)
        assert (ours[k] == theirs == -math.inf) or ours[k] == pytest.approx(theirs, abs=1e-12)
    assert set(SCORINGS) == set(CLI_SCORINGS) and OURS_ENGLISH == ENGLISH_CONNECTOR_WORDS


def test_npmi_stays_within_bounds_over_two_passes_where_gensim_s_chain_does_not(tmp_path):
    corpus = planted_text(tmp_path / "c.txt", long_line=False)
    table, _ = w2v_async.phrases(corpus, str(tmp_path / "out.txt"), scoring="npmi", passes=2, threshold="0.1,0.1",
                                 threads=2, log=lambda m: None)
    all_scores = [s for p in table.passes for s, _ in p.values()]
    assert table.passes[1] and min(all_scores) >= -1 and max(all_scores) <= 1
    assert "new_york_city" in table.passes[1] or "new_york_city" in table.passes[0]
    # the trap is real: gensim chained on the same text scores some "phrases" above 1 (issues #1979, #3042),
    # as it counts the token new_york and the bigram new york under one key and scores it by new and york
    first = Phrases(sentences_of(corpus), min_count=5, threshold=0.1, scoring="npmi")
    second = Phrases(first[sentences_of(corpus)], min_count=5, threshold=0.1, scoring="npmi")
    assert max(FrozenPhrases(second).phrasegrams.values()) > 1


def test_pruning_bounds_the_table_and_keeps_the_frequent_phrases(tmp_path):
    corpus = tmp_path / "junk.txt"
    with open(corpus, "w") as f:
        for k in range(20_000):
            f.write(f"junk{k} new york junk{k}x ice cream\n")
    table, summary = w2v_async.phrases(str(corpus), str(tmp_path / "out.txt"), scoring="npmi", max_vocab_size=3_000,
                                       threads=2, log=lambda m: None)
    row = summary["passes"][0]
    assert row["keys"] <= 3_000 and row["keys_pruned"] > 70_000
    assert {"new_york", "ice_cream"} <= set(table.passes[0])
    unpruned, _ = w2v_async.phrases(str(corpus), None, scoring="npmi", threads=1, log=lambda m: None)
    assert unpruned.passes[0]["new_york"][1] == 20_000 >= table.passes[0]["new_york"][1]


def test_threads_give_the_same_table_and_output(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "MIN_SPAN_BYTES", 50_000)  # so that this small file is cut into spans
    results = {}
    for threads in (1, 3):
        out = tmp_path / f"out{threads}.txt"
        table, summary = w2v_async.phrases(corpus, str(out), passes=2, connector_words="english", threads=threads,
                                           log=lambda m: None)
        assert summary["reading_workers"] == threads
        results[threads] = (table.passes, summary["passes"][0]["keys"], out.read_bytes())
    assert results[1] == results[3]


def test_save_then_apply_reproduces_the_output_and_applies_to_other_text(tmp_path):
    corpus = planted_text(tmp_path / "c.txt", long_line=False)
    saved, out = tmp_path / "phrases.tsv", tmp_path / "out.txt"
    table, _ = w2v_async.phrases(corpus, str(out), passes=2, connector_words="english", save=str(saved), threads=2,
                                 log=lambda m: None)
    loaded = PhraseTable.load(str(saved))
    assert loaded.passes == table.passes and loaded.connector_words == tuple(sorted(ENGLISH_CONNECTOR_WORDS))
    header = saved.read_text().splitlines()[:3]
    assert json.loads(header[0][2:])["delimiter"] == "_" and header[1] == "phrase\tscore\tcount\tpass"
    again = tmp_path / "again.txt"
    _, summary = w2v_async.phrases(corpus, str(again), apply=str(saved), threads=3, log=lambda m: None)
    assert again.read_bytes() == out.read_bytes() and summary["phrases"] == table.n_phrases()
    other = tmp_path / "other.txt"
    other.write_text("i ate a hot dog in new york city\nthe eye of the beholder\n")
    result = CliRunner().invoke(cli, ["phrases", str(other), "-o", str(tmp_path / "o.txt"), "--apply", str(saved)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o.txt").read_text() == "i ate a hot_dog in new_york_city\nthe eye_of_the_beholder\n"


def test_compressed_files_and_stdin_give_the_plain_file_s_output(corpus, tmp_path):
    """A .gz, a directory of them (the first without a last newline) and stdin are read once to count,
    and joined from the copy made while counting."""
    text = open(corpus, "rb").read()
    expected = tmp_path / "plain.txt"
    w2v_async.phrases(corpus, str(expected), threads=2, log=lambda m: None)
    folder = tmp_path / "parts"
    folder.mkdir()
    cut = text.index(b"\n", len(text) // 2)
    for name, part in (("a.txt.gz", text[:cut]), ("b.txt.gz", text[cut + 1:])):  # a.txt.gz ends without "\n"
        with gzip.open(folder / name, "wb") as f:
            f.write(part)
    out = tmp_path / "out.txt"
    _, summary = w2v_async.phrases(str(folder), str(out), threads=2, log=lambda m: None)
    assert out.read_bytes() == expected.read_bytes() and summary["reading_workers"] == 1
    result = CliRunner().invoke(cli, ["phrases", "-", "-o", str(tmp_path / "stdin.txt"), "-q"], input=text)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "stdin.txt").read_bytes() == expected.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["out.txt", "parts", "plain.txt", "stdin.txt"]  # no temporary file left


def test_command_line_json_summary_and_delimiter(corpus, tmp_path):
    out = tmp_path / "out.txt"
    result = CliRunner().invoke(cli, ["phrases", corpus, "-o", str(out), "--delimiter", "::", "--json", "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["output"] == str(out) and summary["passes"][0]["joined"] > 1000
    assert "san::francisco" in out.read_text() and result.stderr == ""


BAD = [  # (arguments after the corpus, exit code, what the one Error: line says)
    (["--threshold", "10,abc"], 2, "--threshold takes numbers separated by commas, one per pass, such as 200,100"),
    (["--passes", "2", "--threshold", "1,2,3"], 2, "--threshold gives 3 values for --passes 2"),
    (["--threshold", "0"], 2, "--threshold must be positive for --scoring default"),
    (["--scoring", "npmi", "--threshold", "2"], 2, "--threshold 2 is outside [-1, 1]"),
    (["--scoring", "pmi"], 2, "Invalid value for '--scoring'"),
    (["--passes", "0"], 2, "--passes must be 1 to 8"),
    (["--delimiter", " "], 2, "--delimiter must be one or more characters other than whitespace"),
    (["--connector-words", "{tmp}/missing.txt"], 2, "is not none, english or a file"),
    (["--apply", "{tmp}/missing.tsv"], 2, "phrase table '{tmp}/missing.tsv' does not exist"),
    (["--apply", "{tmp}/garbage.tsv"], 1, "is not a phrase table written by `w2v-async phrases --save`"),
    (["--apply", "{tmp}/bad-row.tsv"], 1, "line 4 is not 'phrase<TAB>score<TAB>count<TAB>pass'"),
    (["--apply", "{tmp}/good.tsv", "--min-count", "3"], 2, "--min-count does not apply with --apply"),
    (["--apply", "{tmp}/good.tsv", "--save", "{tmp}/s.tsv"], 2, "--save does not apply with --apply"),
]


@pytest.mark.parametrize("args, code, message", BAD + [
    (None, 2, "corpus '{tmp}/missing.txt' does not exist"), ("utf16", 1, "is UTF-16 or UTF-32 text"),
    ("empty", 1, "has no words"), ("self", 2, "is the corpus itself")])
def test_bad_inputs_are_one_error_line_and_write_nothing(tmp_path, args, code, message):
    corpus = tmp_path / "c.txt"
    corpus.write_text("new york is new york\n" * 10)
    (tmp_path / "garbage.tsv").write_text("not a table\n")
    good = tmp_path / "good.tsv"
    w2v_async.phrases(str(corpus), None, min_count=1, save=str(good), log=lambda m: None)
    header = good.read_text().splitlines()[:2]
    (tmp_path / "bad-row.tsv").write_text("\n".join(header + ["new_york\t12.5\t3\t1", "new_york\tten\t3\t1"]) + "\n")
    output = tmp_path / "out.txt"
    output.write_bytes(b"previous output")
    if args is None:
        argv = [str(tmp_path / "missing.txt"), "-o", str(output)]
    elif args == "utf16":
        corpus.write_bytes("new york\n".encode("utf-16"))
        argv = [str(corpus), "-o", str(output)]
    elif args == "empty":
        corpus.write_text("\n \n")
        argv = [str(corpus), "-o", str(output)]
    elif args == "self":
        argv = [str(corpus), "-o", str(corpus)]
    else:
        argv = [str(corpus), "-o", str(output)] + [a.format(tmp=tmp_path) for a in args]
    before = sorted(os.listdir(tmp_path))
    result = CliRunner().invoke(cli, ["phrases", *argv])
    assert result.exit_code == code, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), result.stderr
    assert message.format(tmp=tmp_path) in result.stderr and "Traceback" not in result.output
    assert output.read_bytes() == b"previous output" and sorted(os.listdir(tmp_path)) == before


def test_python_api_refuses_what_does_not_apply(corpus, tmp_path):
    with pytest.raises(ConfigError, match="unknown option"):
        w2v_async.phrases(corpus, None, window=5)
    with pytest.raises(ConfigError, match="give an output"):
        w2v_async.phrases(corpus, None, passes=2)


def test_applying_a_table_onto_itself_is_refused_and_the_table_kept(corpus, tmp_path):
    table = tmp_path / "t.tsv"
    w2v_async.phrases(corpus, None, save=str(table), threshold=1.0, min_count=1)
    before = table.read_bytes()
    with pytest.raises(ConfigError, match="-o and --apply are the same file"):
        w2v_async.phrases(corpus, str(table), apply=str(table))
    assert table.read_bytes() == before


def test_a_disk_too_small_is_refused_before_counting(corpus, tmp_path, monkeypatch):
    """The joined text is about as long as the corpus: with less free space than that beside the
    output, phrases stops at once with one Error line and writes nothing."""
    import shutil

    from w2v_async import io as w2v_io

    size = os.path.getsize(corpus)
    monkeypatch.setattr(w2v_io.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 ** 12, 0, size // 2))
    result = CliRunner().invoke(cli, ["phrases", corpus, "-o", str(tmp_path / "o.txt"), "-q"])
    assert result.exit_code != 0 and result.output.startswith("Error: ") and "MB free" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and os.listdir(tmp_path) == []


def test_a_full_disk_mid_pass_is_one_error_line_and_leaves_no_files(corpus, tmp_path, monkeypatch):
    """The disk fills up while the second of three passes writes: one Error line naming the fix, and
    neither the output nor any pass's temporary file is left behind."""
    import errno

    from w2v_async.data import phrases as data_phrases

    real, calls = data_phrases.join_phrases, []

    def join(src, dest, *args):
        calls.append(sorted(os.listdir(tmp_path)))
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dest, *args)

    monkeypatch.setattr(data_phrases, "join_phrases", join)
    result = CliRunner().invoke(cli, ["phrases", corpus, "-o", str(tmp_path / "o.txt"), "--passes", "3",
                                      "--threshold", "5,5,5", "--min-count", "2", "-q"])
    assert result.exit_code != 0 and result.output.startswith("Error: "), result.output
    assert "No space left on device" in result.output and "free some space" in result.output
    assert len(result.output.strip().splitlines()) == 1 and os.listdir(tmp_path) == []


def test_each_pass_removes_the_temporary_text_it_read(corpus, tmp_path, monkeypatch):
    """Three passes hold at most one temporary copy of the text at a time beside the output (what
    the space check reckons), and the output equals the API's."""
    from w2v_async.data import phrases as data_phrases

    real, seen = data_phrases.join_phrases, []

    def join(src, dest, *args):
        seen.append(len([f for f in os.listdir(tmp_path / "a") if f.endswith(".tmp")]))
        return real(src, dest, *args)

    (tmp_path / "a").mkdir()
    monkeypatch.setattr(data_phrases, "join_phrases", join)
    args = dict(passes=3, threshold=[5.0, 5.0, 5.0], min_count=2)
    w2v_async.phrases(corpus, str(tmp_path / "a" / "o.txt"), **args)
    assert seen == [1, 2, 2]  # the pass's own output (and, from the second, its input)
    assert sorted(os.listdir(tmp_path / "a")) == ["o.txt"]
