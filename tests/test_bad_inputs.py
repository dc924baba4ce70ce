"""The bad-input battery: every input a user can get wrong gives one `Error:` line, the documented
exit code (1 bad data, 2 bad usage), and writes nothing: no output, no temporary file, and an
existing output left byte for byte as it was."""

import gzip
import hashlib
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import planted_corpus
from w2v_async.cli import cli

PREVIOUS = b"previous good vectors"

BAD_INPUTS = [
    # (args, exit code, what the one Error: line must contain); {d}: shared inputs, {tmp}: this test's directory
    # -- the corpus
    (["train", "{d}/missing.txt", "-o", "{tmp}/keep.bin"], 2, "corpus '{d}/missing.txt' does not exist"),
    (["train", "{d}/empty.txt", "-o", "{tmp}/keep.bin"], 1, "corpus '{d}/empty.txt' has no words"),
    (["train", "{d}/blank-lines.txt", "-o", "{tmp}/keep.bin"], 1, "corpus '{d}/blank-lines.txt' has no words"),
    (["train", "{d}/rare.txt", "-o", "{tmp}/keep.bin"], 1, "has 0 words with count >= 5; lower --min-count."),
    (["train", "{d}/huge-line.txt", "-o", "{tmp}/keep.bin"], 1, "has 0 words with count >= 5; lower --min-count."),
    (["train", "{d}/no-files", "-o", "{tmp}/keep.bin"], 1, "directory '{d}/no-files' has no text files"),
    (["train", "{d}/program.bin", "-o", "{tmp}/keep.bin"], 1, "is not text (it has NUL bytes)"),
    (["train", "{d}/images", "-o", "{tmp}/keep.bin"], 1, "'{d}/images/a.png' is not text (it has NUL bytes)"),
    (["train", "{d}/latin1.txt", "-o", "{tmp}/keep.bin"], 1, "is not UTF-8 (3 of its first 3 lines are not)"),
    (["train", "{d}/utf16.txt", "-o", "{tmp}/keep.bin"], 1, "is UTF-16 or UTF-32 text; convert it to UTF-8"),
    (["train", "{d}/truncated.txt.gz", "-o", "{tmp}/keep.bin"], 1, "Compressed file ended before the end-of-stream"),
    (["train", "{d}/not-gzip.gz", "-o", "{tmp}/keep.bin"], 1, "cannot read '{d}/not-gzip.gz': Not a gzipped file"),
    (["train", "-", "-o", "{tmp}/keep.bin"], 1, "corpus '-' has no words"),
    (["cooccur", "{d}/missing.txt", "-o", "{tmp}/c.npz"], 2, "corpus '{d}/missing.txt' does not exist"),
    (["vocab", "{d}/program.bin", "-o", "{tmp}/v.tsv"], 1, "is not text (it has NUL bytes)"),
    # -- vocabulary, co-occurrence, checkpoint and vector files: truncated or from another run
    (["train", "{d}/good.txt", "--vocab", "{d}/truncated.vocab", "-o", "{tmp}/keep.bin"], 1,
     "truncated.vocab:2 is not 'word count'"),
    (["train", "{d}/good.txt", "--vocab", "{d}/other.vocab", "-o", "{tmp}/keep.bin"], 1,
     "no word of corpus '{d}/good.txt' is in the vocabulary"),
    (["train", "{d}/good.txt", "--vocab", "{d}/missing.vocab", "-o", "{tmp}/keep.bin"], 1,
     "vocabulary file '{d}/missing.vocab' does not exist"),
    (["train", "--model", "glove", "--cooccur", "{d}/truncated.npz", "-o", "{tmp}/keep.bin"], 1,
     "is not a w2v-async co-occurrence file (not an .npz archive)"),
    (["train", "--model", "glove", "--cooccur", "{d}/good.txt", "-o", "{tmp}/keep.bin"], 1,
     "is not a w2v-async co-occurrence file"),
    (["train", "--model", "glove", "--cooccur", "{d}/other.npz", "--vocab", "{d}/good.vocab", "--min-count", "1",
      "-o", "{tmp}/keep.bin"], 1, "was counted with another vocabulary"),
    (["train", "{d}/good.txt", "--min-count", "1", "--dim", "8", "--epochs", "1", "--resume", "{d}/ck-truncated",
      "-o", "{tmp}/keep.bin"], 1, "no usable checkpoint in '{d}/ck-truncated'"),
    (["train", "{d}/good.txt", "--resume", "{d}/ck-other", "-o", "{tmp}/keep.bin"], 1,
     "this corpus gives another vocabulary (40 words) than the checkpoint's (5 words)"),
    (["train", "{d}/good.txt", "--resume", "{d}/ck-good", "--dim", "16", "-o", "{tmp}/keep.bin"], 2,
     "these settings differ from the checkpoint's: dim 16 (checkpoint: 8)"),
    (["train", "{d}/good.txt", "--resume", "{d}/ck-good", "--model", "cbow", "-o", "{tmp}/keep.bin"], 2,
     "these settings differ from the checkpoint's: model 'cbow' (checkpoint: 'sgns')"),
    (["train", "{d}/good.txt", "--resume", "{d}/missing-dir", "-o", "{tmp}/keep.bin"], 2,
     "checkpoint directory '{d}/missing-dir' does not exist"),
    (["train", "{d}/good.txt", "--resume", "{d}/no-files", "-o", "{tmp}/keep.bin"], 1,
     "holds no checkpoint-*.npz file"),
    (["eval", "{d}/truncated.bin"], 1, "looks like word2vec binary format but cannot be read"),
    (["eval", "{d}/good.txt"], 1, "is not a word2vec vectors file: its first line must be 'vocab_size dim'"),
    (["similar", "{d}/missing.bin", "king"], 1, "vectors file '{d}/missing.bin' does not exist"),
    # -- outputs and checkpoint directories
    (["train", "{d}/good.txt", "-o", "{tmp}/no/such/dir/o.bin"], 2,
     "output directory '{tmp}/no/such/dir' does not exist"),
    (["train", "{d}/good.txt", "-o", "{d}"], 2, "is a directory; give a file name"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--checkpoint-dir", "{d}/good.txt"], 2,
     "checkpoint directory '{d}/good.txt' is a file"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--checkpoint-every", "5"], 2,
     "--checkpoint-every needs --checkpoint-dir DIR"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--checkpoint-dir", "{tmp}/ck", "--checkpoint-every", "-1"], 2,
     "--checkpoint-every must be >= 0 minutes"),
    # -- hyperparameters
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--dim", "0"], 2, "--dim must be a positive number, got 0"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--window", "-1"], 2, "--window must be a positive number"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--negative", "0"], 2, "--negative must be a positive number"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--sample", "-1"], 2, "--sample must be >= 0"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--alpha", "0"], 2, "--alpha must be positive, got 0.0"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--min-alpha", "1"], 2, "--min-alpha must be between 0 and"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--epochs", "0"], 2, "--epochs must be a positive number"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--threads", "0"], 2, "--threads must be a positive number"),
    (["vocab", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--threads", "0"], 2, "--threads must be a positive number"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--seed", "-1"], 2, "--seed must be >= 0, got -1"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--dim", "ten"], 2, "'ten' is not a valid integer"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--model", "glove2"], 2, "'glove2' is not one of"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--model", "cbow", "--batching", "pair"], 2,
     "--batching pair is for --model sgns"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--format", "glove"], 2, "--format glove is for --model glove"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--min-count", "0"], 2, "--min-count must be a positive number"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--max-vocab-size", "0"], 2, "--max-vocab-size must be"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--max-final-vocab", "0"], 2, "--max-final-vocab must be"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--model", "glove", "--x-max", "0"], 2,
     "--x-max must be positive"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--model", "glove", "--glove-alpha", "0"], 2,
     "--glove-alpha must be positive"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--model", "glove", "--eta", "-1"], 2, "--eta must be positive"),
    (["cooccur", "{d}/good.txt", "-o", "{tmp}/c.npz", "--memory", "0"], 2, "--memory must be positive (GB)"),
    (["cooccur", "{d}/good.txt", "-o", "{tmp}/c.npz", "--window", "0"], 2, "--window must be a positive number"),
    (["eval", "{d}/good.bin", "--restrict-vocab", "0"], 2, "--restrict-vocab must be positive"),
    (["similar", "{d}/good.bin", "g0w1", "-n", "0"], 2, "-n must be positive"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--engine", "ray", "--replicas", "0"], 2,
     "--replicas must be a positive number, got 0"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--engine", "ray", "--n-fetch", "0"], 2,
     "--n-fetch must be a positive number, got 0"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--engine", "ray", "--ps-eta", "0"], 2,
     "--ps-eta must be positive, got 0.0"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--engine", "ray", "--ps-optimizer", "adam"], 2,
     "'adam' is not one of 'sgd', 'adagrad'"),
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--model", "glove", "--engine", "ray", "--ps-optimizer",
      "adagrad"], 2, "GloVe on Ray runs its own AdaGrad in the replicas; use --ps-optimizer sgd."),
    # -- a learning rate that diverges: stopped, nothing non-finite written
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--min-count", "1", "--alpha", "50", "--threads", "1"], 1,
     "training diverged in epoch 1/5: the loss became NaN or infinite. No vectors were written. Lower --alpha"),  # 1 thread: with 64 one may be in epoch 2 when it is seen
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--min-count", "1", "--model", "glove", "--x-max", "10",
      "--eta", "10000", "--grad-clip", "1e30"], 1, "training diverged in epoch 1/15"),  # clipping would hold it
    (["train", "{d}/good.txt", "-o", "{tmp}/keep.bin", "--model", "glove", "--grad-clip", "0"], 2,
     "--grad-clip must be positive, got 0.0; GloVe uses 100."),
]


def _run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Every bad (and a few good) input file, made once for the module."""
    d = tmp_path_factory.mktemp("inputs")
    planted_corpus(d / "good.txt", n_sentences=200)
    (d / "empty.txt").write_bytes(b"")
    (d / "blank-lines.txt").write_text("\n\n   \n\t\n")
    (d / "rare.txt").write_text("only a few words here\n")
    (d / "huge-line.txt").write_text("x" * 4_000_000 + "\n")  # one 4 MB line: a single 'word'
    (d / "no-files").mkdir()
    (d / "program.bin").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 64)
    (d / "images").mkdir()
    (d / "images" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(500))
    (d / "images" / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(500))
    (d / "latin1.txt").write_bytes("café naïve\nrésumé déjà vu\nvoilà été\n".encode("latin-1"))
    (d / "utf16.txt").write_bytes("some text in utf-16\n".encode("utf-16"))
    (d / "truncated.txt.gz").write_bytes(gzip.compress((d / "good.txt").read_bytes())[:2000])
    (d / "not-gzip.gz").write_text("plain text with a .gz name\n")
    (d / "truncated.vocab").write_text("g0w1 120\ng0w2")
    (d / "other.vocab").write_text("zebra 10\nquokka 9\n")
    _run("vocab", d / "good.txt", "-o", d / "good.vocab", "--min-count", "1")
    planted_corpus(d / "other.txt", n_groups=1, group_size=5, n_sentences=50)
    _run("cooccur", d / "good.txt", "-o", d / "good.npz", "--min-count", "1")
    (d / "truncated.npz").write_bytes((d / "good.npz").read_bytes()[:3000])
    _run("cooccur", d / "other.txt", "-o", d / "other.npz", "--min-count", "1")
    fast = ["--min-count", "1", "--dim", "8", "--epochs", "1", "-q"]
    _run("train", d / "good.txt", "-o", d / "good.bin", "--checkpoint-dir", d / "ck-good", *fast)
    (d / "truncated.bin").write_bytes((d / "good.bin").read_bytes()[:300])
    _run("train", d / "other.txt", "-o", d / "other.bin", "--checkpoint-dir", d / "ck-other", *fast)
    shutil.copytree(d / "ck-good", d / "ck-truncated")
    for name in os.listdir(d / "ck-truncated"):
        path = d / "ck-truncated" / name
        path.write_bytes(path.read_bytes()[:5000])
    return d


def _snapshot(*dirs):
    """Every file below dirs with a hash of its bytes."""
    out = {}
    for top in dirs:
        for root, _, files in os.walk(top):
            for f in files:
                path = os.path.join(root, f)
                out[path] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


def test_the_battery_has_at_least_25_cases():
    assert len(BAD_INPUTS) >= 25


@pytest.mark.parametrize("args, code, message", BAD_INPUTS, ids=[" ".join(a[:2]) + f" #{i}" for i, (a, _, _) in
                                                                   enumerate(BAD_INPUTS)])
def test_bad_input_gives_one_error_line_and_writes_nothing(inputs, tmp_path, args, code, message):
    (tmp_path / "keep.bin").write_bytes(PREVIOUS)
    before = _snapshot(inputs, tmp_path)
    fill = dict(d=inputs, tmp=tmp_path)
    result = CliRunner().invoke(cli, [a.format(**fill) for a in args], input="")
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()  # log lines may come first; the error is one line, the last
    assert [line for line in lines if line.startswith("Error: ")] == lines[-1:], result.stderr
    assert "Traceback" not in result.stderr and message.format(**fill) in lines[-1]
    assert result.stdout == ""
    assert _snapshot(inputs, tmp_path) == before  # nothing written, nothing changed, no temporary file


def test_too_little_free_space_is_refused_before_training(inputs, tmp_path, monkeypatch):
    from w2v_async import io

    monkeypatch.setattr(io.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    (tmp_path / "keep.bin").write_bytes(PREVIOUS)
    result = CliRunner().invoke(cli, ["train", str(inputs / "good.txt"), "-o", str(tmp_path / "keep.bin"),
                                      "--min-count", "1", "--checkpoint-dir", str(tmp_path / "ck"), "-q"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: '{tmp_path}' has 0.0 MB free but ")  # encoding, or the outputs
    assert result.stderr.count("\n") == 1
    assert (tmp_path / "keep.bin").read_bytes() == PREVIOUS and os.listdir(tmp_path / "ck") == []


def test_a_disk_that_fills_while_writing_leaves_the_old_vectors_and_no_temporary_file(inputs, tmp_path, monkeypatch):
    from gensim.models import KeyedVectors

    def full(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a vector file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(KeyedVectors, "save_word2vec_format", full)
    (tmp_path / "keep.bin").write_bytes(PREVIOUS)
    result = CliRunner().invoke(cli, ["train", str(inputs / "good.txt"), "-o", str(tmp_path / "keep.bin"),
                                      "--min-count", "1", "--dim", "8", "--epochs", "1", "-q"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"Error: could not write '{tmp_path}/keep.bin': No space left on device; free "
                                     "some space or choose another -o (nothing partial was left behind).")
    assert sorted(os.listdir(tmp_path)) == ["keep.bin"] and (tmp_path / "keep.bin").read_bytes() == PREVIOUS


def test_divergence_keeps_the_last_good_checkpoint(inputs, tmp_path, monkeypatch):
    """A NaN that appears after the second checkpoint (planted here) stops the run; both checkpoints
    stay and verify, and no vectors are written."""
    from w2v_async import io, job

    real_save = io.save_checkpoint
    calls = []

    def save_then_poison(directory, meta, arrays):
        path = real_save(directory, meta, arrays)
        calls.append(path)
        if len(calls) == 2:
            arrays["w_in"][:] = np.nan  # the live matrix: the next updates produce a NaN loss
        return path

    monkeypatch.setattr(job, "save_checkpoint", save_then_poison)
    result = CliRunner().invoke(cli, ["train", str(inputs / "good.txt"), "-o", str(tmp_path / "v.bin"), "--min-count",
                                      "1", "--dim", "8", "--epochs", "5", "--threads", "1", "-q",
                                      "--checkpoint-dir", str(tmp_path / "ck")])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: training diverged in epoch 3/5: the loss became NaN or infinite. No vectors were written. Lower "
        f"--alpha (it was 0.025; try 0.0025). The last good checkpoint, {calls[-1]}, is kept.")
    assert not (tmp_path / "v.bin").exists()
    meta, _, path = io.load_checkpoint(str(tmp_path / "ck"))
    assert path == calls[-1] and meta["epoch"] == 3


# -- arbitrary bytes: the reader and the vocabulary builder succeed or raise our error type, nothing else

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from w2v_async.config import VocabConfig  # noqa: E402
from w2v_async.data.corpus import CorpusReader  # noqa: E402
from w2v_async.errors import W2VError  # noqa: E402
from w2v_async.data.vocab import scan_corpus  # noqa: E402

TEXTISH = st.lists(st.sampled_from([b"a", b"b", b"word", b" ", b"\n", b"\t", b"\r", b"\xff", b"\xc3\xa9", b"\x00",
                                    b"\xef\xbb\xbf", b"\xfe\xff", b"\x1f\x8b"]), max_size=200).map(b"".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=2000), TEXTISH), suffix=st.sampled_from([".txt", ".gz", ".bz2"]),
       min_count=st.integers(1, 3))
def test_arbitrary_bytes_are_read_or_refused_with_our_error(tmp_path, data, suffix, min_count):
    path = tmp_path / ("corpus" + suffix)
    path.write_bytes(data)
    reader = CorpusReader(str(path))
    try:
        vocab, encoded = scan_corpus(reader, VocabConfig(min_count=min_count))
    except W2VError as e:
        assert str(e) and "\n" not in str(e)
        return
    # what was read is consistent: every kept word is a whitespace-free token seen >= min_count times
    assert len(vocab) > 0 and encoded.n_words == int(vocab.counts.sum())
    assert all(w and not any(c.isspace() for c in w) for w in vocab.words)
    assert vocab.counts.min() >= min_count and np.all(np.diff(vocab.counts) <= 0)
    assert reader.stats.n_tokens >= encoded.n_words


VOCAB_LINES = st.lists(st.tuples(st.text(min_size=1, max_size=5), st.sampled_from([" ", "\t", "  "]),
                                  st.one_of(st.integers(0, 10**25).map(str), st.text(max_size=4))),
                        max_size=20).map(lambda rows: "\n".join(w + sep + c for w, sep, c in rows).encode())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=500), VOCAB_LINES))
def test_arbitrary_bytes_as_a_vocab_file_load_or_raise_our_error(tmp_path, data):
    from w2v_async.data.vocab import Vocab

    path = tmp_path / "v.tsv"
    path.write_bytes(data)
    try:
        vocab = Vocab.load(str(path))
    except W2VError:
        return
    assert np.all(np.diff(vocab.counts) <= 0) and len(set(vocab.words)) <= len(vocab.words)


def test_engine_ray_without_ray_names_the_install_command(inputs, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    (tmp_path / "keep.bin").write_bytes(PREVIOUS)
    result = CliRunner().invoke(cli, ["train", str(inputs / "good.txt"), "-o", str(tmp_path / "keep.bin"),
                                      "--engine", "ray", "-q"])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("Error: --engine ray needs Ray, which is not installed; install it with "
                                     "pip install 'w2v-async[ray]'.")
    assert sorted(os.listdir(tmp_path)) == ["keep.bin"] and (tmp_path / "keep.bin").read_bytes() == PREVIOUS
