"""The command line: help, exit codes, one-line errors, JSON, stdin, Ctrl-C."""

import json
import signal
import subprocess
import sys

import numpy as np
from click.testing import CliRunner

from conftest import planted_corpus
from w2v_async import __version__
from w2v_async.cli import cli

FAST = ["--dim", "8", "--epochs", "1", "--min-count", "1", "-q"]


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def test_version_and_every_command_has_help_with_an_example():
    assert invoke("--version").output.strip().endswith(__version__)
    for name, command in cli.commands.items():
        result = invoke(name, "-h")
        assert result.exit_code == 0, name
        assert "Example:" in result.output and " ".join(command.help.split()[:4]) in result.output


def test_train_json_summary_and_outputs(planted, tmp_path):
    out = tmp_path / "v.txt"
    result = invoke("train", planted, "-o", out, "--json", "--threads", "2", *FAST)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["vocab_size"] == 40 and summary["words_trained"] == 1500 * 20
    assert len(summary["epoch_loss"]) == 1 and summary["words_per_sec"] > 0
    assert summary["outputs"] == {"vectors": str(out), "format": "txt", "config": str(out) + ".json",
                                  "checkpoint": None}
    assert json.loads((tmp_path / "v.txt.json").read_text())["train"]["dim"] == 8
    assert out.read_text().splitlines()[0] == "40 8"


def test_vocab_then_train_with_vocab_then_eval_and_similar(planted, tmp_path):
    vocab = tmp_path / "vocab.tsv"
    assert invoke("vocab", planted, "-o", vocab, "--min-count", "1").exit_code == 0
    assert len(vocab.read_text().splitlines()) == 40
    out = tmp_path / "v.bin"
    result = invoke("train", planted, "--vocab", vocab, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("g0w1\tg0w2\t9\ng0w1\tg1w1\t1\ng2w3\tg2w4\t8\ng2w3\tg3w5\t2\ng1w1\tg1w2\t7\n")
    result = invoke("eval", out, "--no-defaults", "--similarities", pairs, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["similarities"][0]["dataset"] == "pairs.tsv" and report["analogies"] == []
    result = invoke("similar", out, "g0w1", "-n", "3", "--json")
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 3


def test_eval_default_sets_print_a_table(planted, tmp_path):
    out = tmp_path / "v.bin"
    assert invoke("train", planted, "-o", out, *FAST).exit_code == 0
    result = invoke("eval", out)
    assert result.exit_code == 0, result.output
    assert "questions-words.txt" in result.output and "simlex999.txt" in result.output


def test_stdin_corpus(tmp_path):
    out = tmp_path / "v.txt"
    text = "a b c a b\n" * 50
    result = invoke("train", "-", "-o", out, "--json", *FAST, input=text)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["corpus"]["tokens"] == 250


def _write(path, text):
    path.write_text(text)
    return path


def test_a_few_bad_utf8_lines_warn_on_stderr_and_train(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(b"a b c \xff a b c\n" * 5 + b"a b c a b c\n" * 15)
    result = invoke("train", corpus, "-o", tmp_path / "v.txt", "--dim", "4", "--epochs", "1", "--min-count", "1")
    assert result.exit_code == 0, result.output
    assert "warning: 5 line(s) had invalid UTF-8" in result.stderr
    assert json.loads((tmp_path / "v.txt.json").read_text())["vocab"]["min_count"] == 1


def test_explicit_format_overrides_the_file_name(planted, tmp_path):
    out = tmp_path / "v.bin"
    assert invoke("train", planted, "-o", out, "--format", "txt", *FAST).exit_code == 0
    assert out.read_text().splitlines()[0] == "40 8"


def test_similar_unknown_word_is_a_runtime_error(planted, tmp_path):
    out = tmp_path / "v.bin"
    assert invoke("train", planted, "-o", out, *FAST).exit_code == 0
    result = invoke("similar", out, "nosuchword")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: 'nosuchword' is not in the vocabulary of {out}; try another word."


def test_cooccur_command_writes_a_loadable_file(planted, tmp_path):
    from w2v_async.data.cooccur import Cooccurrence

    out = tmp_path / "cooc.npz"
    result = invoke("cooccur", planted, "-o", out, "--min-count", "1", "--window", "3", "--json", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    cooc = Cooccurrence.load(str(out))
    assert summary["nnz"] == cooc.nnz and summary["vocab_size"] == 40 and cooc.window == 3
    group = np.array([w.split("w")[0] for w in cooc.vocab.words])
    assert (group[cooc.rows] == group[cooc.cols]).all()  # planted groups never co-occur across groups
    # no spilled run is left behind; the encoded corpus is kept in the cache, one entry
    assert sorted(p.name for p in tmp_path.iterdir()) == [".w2v-cache", "cooc.npz", "planted.txt"]
    assert len(list((tmp_path / ".w2v-cache").iterdir())) == 1


def test_glove_from_corpus_and_from_cooccur_file(planted, tmp_path):
    out = tmp_path / "g.txt"
    flags = ["--dim", "8", "--epochs", "3", "--min-count", "1", "--x-max", "10", "-q", "--threads", "1"]
    result = invoke("train", planted, "--model", "glove", "-o", out, "--format", "glove", "--json", *flags)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert len(summary["epoch_cost"]) == 3 and summary["nnz"] > 0
    first = out.read_text().splitlines()[0].split()
    assert len(first) == 9  # GloVe text format: no header line
    assert invoke("eval", out, "--no-defaults", "--analogies", planted).exit_code != 2  # eval reads GloVe text
    cooc, vocab = tmp_path / "c.npz", tmp_path / "v.tsv"
    assert invoke("vocab", planted, "-o", vocab, "--min-count", "1").exit_code == 0
    assert invoke("cooccur", planted, "-o", cooc, "--vocab", vocab, "--min-count", "1", "-q").exit_code == 0
    out2 = tmp_path / "g.bin"
    result = invoke("train", "--model", "glove", "--cooccur", cooc, "--vocab", vocab, "-o", out2, *flags)
    assert result.exit_code == 0, result.output
    other = tmp_path / "other.tsv"
    other.write_text("a 5\nb 4\n")
    result = invoke("train", "--model", "glove", "--cooccur", cooc, "--vocab", other, "-o", out2, *flags)
    assert result.exit_code == 1
    assert "was counted with another vocabulary (40 words)" in result.stderr


def test_ctrl_c_during_cooccur_removes_temporary_runs(tmp_path, hooks):
    """Ctrl-C while counting removes the spilled runs. The count waits (a test hook) once its first
    sorted run is on disk, until the signal has stopped it: the signal lands mid-count however
    fast or busy the machine is."""
    block = (tmp_path / "block.txt")
    planted_corpus(block, n_sentences=1000, length=200)
    corpus = tmp_path / "big.txt"
    corpus.write_text(block.read_text() * 5)  # 1M words: about 60 runs of --memory 0.01
    block.unlink()
    out = tmp_path / "cooc.npz"
    cmd = [sys.executable, "-m", "w2v_async.cli", "cooccur", str(corpus), "-o", str(out), "--min-count", "1",
           "--memory", "0.01", "--threads", "1", "--window", "10"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=hooks.env("cooccur-spilled"))
    hooks.wait("cooccur-spilled", proc)
    [runs] = [p for p in tmp_path.iterdir() if p.name.startswith(".w2v-cooccur-")]
    assert [p for p in runs.rglob("*") if p.is_file()]  # a sorted run is on disk
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "non-zero co-occurrences" not in err  # interrupted while counting, not after
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt"]  # no output, no run files


def test_a_second_ctrl_c_during_cooccur_still_removes_the_runs_and_exits_130(tmp_path, hooks):
    """The second signal lands while a counting thread is still busy (a test hook holds it, after
    the first signal, until the second has come): it only counts, as the first did, so no
    exception is thrown into the main thread's waits (which could leave a lock held for ever); the
    count stops, its runs are removed, and it exits 130."""
    block = (tmp_path / "block.txt")
    planted_corpus(block, n_sentences=1000, length=200)
    corpus = tmp_path / "big.txt"
    corpus.write_text(block.read_text() * 5)
    block.unlink()
    cmd = [sys.executable, "-m", "w2v_async.cli", "cooccur", str(corpus), "-o", str(tmp_path / "cooc.npz"),
           "--min-count", "1", "--memory", "0.01", "--threads", "1", "--window", "10"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=hooks.env("cooccur-spilled", "cooccur-stopping"))
    hooks.wait("cooccur-spilled", proc)
    proc.send_signal(signal.SIGINT)
    hooks.wait("cooccur-stopping", proc)  # the first signal has stopped the count; a thread is still at work
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "non-zero co-occurrences" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt"]
