"""Web text at its worst: very long tokens, NUL bytes, CRLF, broken UTF-8, a line of 100 MB; each
gives vectors or one `Error:` line, and the vocabulary is stored at its real size everywhere.
The 10M-type case is scripts/bench_web_text.py (too slow for the suite)."""

import json
import os
import resource
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from conftest import planted_corpus
from w2v_async.api import train_word2vec
from w2v_async.cli import cli
from w2v_async.config import VocabConfig
from w2v_async.data import scan as scan_module
from w2v_async.data.corpus import CorpusReader, SentenceReader
from w2v_async.data.vocab import scan_corpus
from w2v_async.engines.base import RunState, merged_state
from w2v_async.io import checkpoint_files, pack_words, unpack_words

LONG = 30_000  # characters of the long token (a base64 blob, a minified script)


def _run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result


def _ok(*args):
    result = _run(*args)
    assert result.exit_code == 0, result.output
    return result


def _with_long_lines(path, long_path, n_lines=6, token=None):
    token = token or "x" * LONG
    with open(path) as f, open(long_path, "w") as out:
        out.write(f.read())
        for _ in range(n_lines):
            out.write(f"g0w1 {token} g0w2\n")
    return long_path


@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30), max_size=40))
def test_packed_words_round_trip_any_text(words):
    packed = pack_words(words)
    assert packed["words_utf8"].dtype == np.uint8 and packed["words_ends"].dtype == np.int64
    assert packed["words_utf8"].nbytes == sum(len(w.encode()) for w in words)  # the real size, nothing padded
    assert unpack_words(packed) == words


def test_files_written_before_the_packed_vocabulary_still_load():
    assert unpack_words({"words": np.array(["a", "bb", "ccc"])}) == ["a", "bb", "ccc"]


def test_a_long_token_costs_its_length_in_checkpoints_and_cooccurrences(tmp_path):
    base = planted_corpus(tmp_path / "base.txt")
    long = _with_long_lines(base, tmp_path / "long.txt")
    sizes = {}
    for name, corpus in (("base", base), ("long", long)):
        ck = tmp_path / f"ck-{name}"
        summary = json.loads(_ok("train", corpus, "-o", tmp_path / f"{name}.bin", "--dim", "8", "--epochs", "1",
                                 "--threads", "1", "--max-word-length", "0", "--checkpoint-dir", ck, "--no-cache",
                                 "--json", "-q").stdout)
        assert summary["corpus"]["long_tokens_skipped"] == 0
        npz = tmp_path / f"{name}.npz"
        _ok("cooccur", corpus, "-o", npz, "--max-word-length", "0", "--no-cache", "-q")
        sizes[name] = (os.path.getsize(checkpoint_files(str(ck))[0][1]), os.path.getsize(npz))
    # the token is in the vocabulary (6 >= min count 5): it adds about its 30 kB, not 30,000 x 4 bytes
    # for each of the 42 words (5 MB) as a fixed-width string array did
    assert sizes["long"][0] - sizes["base"][0] < 4 * LONG
    assert sizes["long"][1] - sizes["base"][1] < 4 * LONG + 6 * 1000


@pytest.mark.parametrize("threads", [1, 3])
def test_tokens_over_max_word_length_are_skipped_and_counted(tmp_path, monkeypatch, threads):
    monkeypatch.setattr(scan_module, "MIN_SPAN_BYTES", 1 << 10)  # several spans, so several tables merged
    base = planted_corpus(tmp_path / "base.txt")
    long = _with_long_lines(base, tmp_path / "long.txt", n_lines=7, token="y" * 101)
    cfg = VocabConfig(min_count=1)
    reader = CorpusReader(str(long))
    vocab, encoded = scan_corpus(reader, cfg, threads=threads)
    assert reader.stats.n_long_tokens == 7 and "y" * 101 not in vocab.index
    expected, _ = scan_corpus(CorpusReader(str(base)), cfg, threads=1)
    assert vocab.counts[vocab.index["g0w1"]] == expected.counts[expected.index["g0w1"]] + 7
    assert encoded.n_words == reader.stats.n_tokens - 7  # the skipped tokens are dropped, nothing else
    assert encoded.ids.max() < len(vocab)
    kept, _ = scan_corpus(CorpusReader(str(long)), VocabConfig(min_count=1, max_word_length=0), threads=threads)
    assert kept.counts[kept.index["y" * 101]] == 7


def test_token_lists_and_lines_python_splits_skip_the_same_tokens(tmp_path):
    sentences = [["a", "b" * 200, "c"]] * 3 + [["a", "\u00e9" * 60]]  # 120 bytes: UTF-8 bytes count, not letters
    reader = SentenceReader(sentences)
    vocab, encoded = scan_corpus(reader, VocabConfig(min_count=1))
    assert reader.stats.n_long_tokens == 4 and sorted(vocab.words) == ["a", "c"] and encoded.n_words == 7
    path = tmp_path / "bad.txt"  # a line of invalid UTF-8 is split in Python: the same rule applies
    path.write_bytes(b"a \xff" + b"b" * 200 + b" c\n" + b"a c\n" * 20)
    reader = CorpusReader(str(path))
    vocab, _ = scan_corpus(reader, VocabConfig(min_count=1), threads=1)
    assert reader.stats.n_long_tokens == 1 and sorted(vocab.words) == ["a", "c"]


def test_the_summary_and_a_warning_say_how_many_tokens_were_skipped(tmp_path):
    long = _with_long_lines(planted_corpus(tmp_path / "base.txt"), tmp_path / "long.txt")
    result = _ok("vocab", long, "-o", tmp_path / "v.tsv", "--json")
    assert json.loads(result.stdout)["long_tokens_skipped"] == 6
    assert "6 token(s) longer than --max-word-length bytes were skipped" in result.stderr
    bad = _run("vocab", long, "-o", tmp_path / "w.tsv", "--max-word-length", "-1")
    assert bad.exit_code == 2 and bad.output.startswith("Error: --max-word-length must be >= 0 bytes")
    assert not (tmp_path / "w.tsv").exists()


def test_merged_state_keeps_the_items_and_words_done():
    state = RunState.new(3, 4)
    state.epoch[:] = [2, 1, 1]  # thread 0 finished epoch 1 (its 50 items) and started epoch 2
    state.position[:] = [5, 30, 12]
    state.counters[1:] = [700, 600, 500]
    state.loss[:, 0] = 1.0
    one = merged_state(state, [50, 40, 40])
    assert one.epoch.tolist() == [1] and one.position.tolist() == [50 + 30 + 12]
    assert one.counters[1] == 1800 and one.loss[0, 0] == 3.0


def test_a_run_resumes_on_another_number_of_cores(tmp_path):
    corpus = planted_corpus(tmp_path / "p.txt")
    ck = tmp_path / "ck"
    common = ["--dim", "8", "--epochs", "2", "--min-count", "1", "--seed", "3", "-q"]
    _ok("train", corpus, "-o", tmp_path / "a.bin", "--threads", "3", "--checkpoint-dir", ck, *common)
    os.unlink(checkpoint_files(str(ck))[0][1])  # as if killed during epoch 2: the epoch-1 checkpoint is left
    for threads in ("2", "1"):
        out = tmp_path / f"r{threads}.bin"
        summary = json.loads(_ok("train", corpus, "-o", out, "--resume", ck, "--threads", threads, "--json",
                                 "-q").stdout)
        assert summary["config"]["train"]["threads"] == int(threads)
        assert summary["words_trained"] == pytest.approx(2 * summary["corpus"]["words_in_vocab"], rel=0.02)


# ---- the battery: each input gives vectors or one Error: line, never a traceback ----

def _write_battery(d):
    words = " ".join(f"w{i % 30}" for i in range(400))
    cases = {
        "token-100k.txt": (words + "\n") * 20 + ("z" * 100_000 + " " + words + "\n") * 6,
        "crlf.txt": (words + "\r\n") * 30,
        "nul-late.txt": (words + "\n") * 200 + "w1 a\0b w2\n" * 10,  # past the head the NUL check reads
        "broken-utf8.txt": None,
    }
    for name, text in cases.items():
        if text is not None:
            (d / name).write_text(text, newline="")
    (d / "broken-utf8.txt").write_bytes(((words + "\n").encode() * 30) + (b"w1 \xff\xfe w2 \xc3(\n" * 5))
    return list(cases)


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    d = tmp_path_factory.mktemp("web")
    return d, _write_battery(d)


@pytest.mark.parametrize("name", ["token-100k.txt", "crlf.txt", "nul-late.txt", "broken-utf8.txt"])
def test_web_like_inputs_give_vectors(battery, tmp_path, name):
    d, _ = battery
    out = tmp_path / "v.bin"
    summary = json.loads(_ok("train", d / name, "-o", out, "--dim", "8", "--epochs", "1", "--threads", "2",
                             "--checkpoint-dir", tmp_path / "ck", "--json", "-q").stdout)
    assert out.stat().st_size < 1 << 20 and summary["vocab_size"] >= 30
    assert all(os.path.getsize(p) < 1 << 20 for _, p in checkpoint_files(str(tmp_path / "ck")))
    assert summary["corpus"]["long_tokens_skipped"] == (6 if name == "token-100k.txt" else 0)


def test_a_100_mb_line_is_read_in_bounded_memory(tmp_path):
    path = tmp_path / "one-line.txt"
    with open(path, "wb") as f:  # 100 MB, no newline at all
        piece = b" ".join(b"w%d" % (i % 1000) for i in range(100_000)) + b" "
        for _ in range(100 * (1 << 20) // len(piece) + 1):
            f.write(piece)
    # VmHWM: this process's peak, reset by exec (ru_maxrss keeps the forking test process's)
    code = ("import sys; from w2v_async.cli import main; sys.argv = ['w2v-async'] + sys.argv[1:]\n"
            "try:\n    main()\nfinally:\n"
            "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
            "    print('maxrss', hwm, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, "vocab", str(path), "-o", str(tmp_path / "v.tsv"),
                           "--threads", "2", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["vocab_size"] == 1000
    maxrss_mb = int(proc.stderr.rsplit("maxrss", 1)[1]) / 1024
    assert maxrss_mb < 600, proc.stderr  # the interpreter and numba take about 250 MB; the line is 100 MB


def test_a_100_mb_word_with_no_space_is_one_error_line(tmp_path):
    path = tmp_path / "blob.txt"
    with open(path, "wb") as f:
        for _ in range(100):
            f.write(b"A" * (1 << 20))
    result = _run("train", path, "-o", tmp_path / "v.bin")
    assert result.exit_code == 1 and result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "with no space in it" in result.output and not (tmp_path / "v.bin").exists()


def test_the_api_with_a_long_token(tmp_path):
    sentences = [["a", "b", "c", "d"] * 5] * 50 + [["a", "q" * 10_000]] * 6
    kv, summary = train_word2vec(sentences, dim=8, epochs=1, min_count=1, threads=1, progress=False)
    assert "q" * 10_000 not in kv.key_to_index and summary["corpus"]["long_tokens_skipped"] == 6


def test_a_resume_that_reads_another_pruned_vocabulary_names_the_thread_count(tmp_path, monkeypatch):
    monkeypatch.setattr(scan_module, "MIN_SPAN_BYTES", 1 << 10)  # the planted corpus is read in several spans
    monkeypatch.setattr(scan_module, "READER_MIN_WORDS", 10)  # and each reader may count with 10 words
    corpus = planted_corpus(tmp_path / "p.txt")
    ck = tmp_path / "ck"
    common = ["--dim", "8", "--epochs", "1", "--min-count", "1", "--max-vocab-size", "30", "--no-cache", "-q"]
    _ok("train", corpus, "-o", tmp_path / "a.bin", "--threads", "1", "--checkpoint-dir", ck, *common)
    result = _run("train", corpus, "-o", tmp_path / "b.bin", "--resume", ck, "--threads", "3", *common)
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "than the checkpoint's" in result.output and "resume with --threads 1 (words were pruned" in result.output
    _ok("train", corpus, "-o", tmp_path / "c.bin", "--resume", ck, "--threads", "1", *common)


def test_a_checkpoint_from_before_max_word_length_resumes_with_no_limit():
    """Runs from before --max-word-length read every token whole: resuming one, the setting not
    given is 0 (no limit), not today's default of 100, so its vocabulary is read again as it was."""
    from w2v_async.config import resumed_config

    old = {"min_count": 1, "max_vocab_size": 30_000_000, "max_final_vocab": None, "lowercase": False}
    assert resumed_config(VocabConfig(), old, set()).max_word_length == 0
    assert resumed_config(VocabConfig(), {**old, "max_word_length": 100}, set()).max_word_length == 100
