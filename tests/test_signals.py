"""Real subprocesses: Ctrl-C / SIGTERM save a checkpoint and partial vectors, a second signal exits at
once, and kill -9 loses at most one checkpoint interval. Nothing a previous run completed is damaged."""

import json
import os
import shlex
import signal
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import planted_corpus
from w2v_async.cli import cli
from w2v_async.io import checkpoint_files, load_checkpoint, load_vectors

PREVIOUS = b"previous good vectors"
EPOCHS = 20
# one thread; the runs wait at test hooks (w2v_async/testhooks.py) where a signal or a kill must land,
# so that how long they take decides nothing
TRAIN = ["--epochs", str(EPOCHS), "--min-count", "1", "--threads", "1", "--seed", "4"]


@pytest.fixture(autouse=True)
def _no_ray_left_behind():
    """The Ray tests resume in this process, which starts a local Ray: shut it down, so that the
    next test module's own Ray starts, whatever order the modules run in."""
    yield
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def _start(hooks, stages, *args):
    """Start train with args, waiting at the test hooks' stages. Its stderr goes to a file: the
    progress bar would fill a pipe that nobody reads while the test waits, and stall the run."""
    cmd = [sys.executable, "-m", "w2v_async.cli", "train", *args]
    err = open(os.path.join(hooks.directory, "stderr"), "w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True, env=hooks.env(*stages))
    proc.err_file = err
    return proc


def _finish(proc, timeout=120):
    """Wait for proc (the timeout only guards against a hang); its stderr."""
    proc.wait(timeout=timeout)
    proc.err_file.seek(0)
    err = proc.err_file.read()
    proc.err_file.close()
    return err


def _files(path):
    return sorted(os.path.relpath(os.path.join(root, f), path) for root, _, files in os.walk(path) for f in files)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_saves_a_checkpoint_and_partial_vectors_then_resume_is_bit_identical(tmp_path, hooks, sig):
    corpus = planted_corpus(tmp_path / "c.txt")
    out = tmp_path / "v.bin"
    out.write_bytes(PREVIOUS)
    proc = _start(hooks, ["hogwild-epoch-1"], str(corpus), "-o", str(out), *TRAIN)
    hooks.wait("hogwild-epoch-1", proc)  # the first epoch is trained; the second waits for the signal
    proc.send_signal(sig)
    err = _finish(proc)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"Error: stopped by {sig.name} in epoch 2/{EPOCHS} ")
    assert " Resume with: w2v-async train " in last
    assert out.read_bytes() == PREVIOUS  # the previous vectors are untouched
    partial = tmp_path / "v.partial.bin"
    kv = load_vectors(str(partial))
    assert len(kv) == 40 and np.isfinite(kv.vectors).all()
    meta, _, _ = load_checkpoint(str(out) + ".checkpoint")
    assert 1 / EPOCHS < meta["progress"] < 2 / EPOCHS  # stopped inside the second epoch, at a progress tick
    checkpoint = os.path.basename(checkpoint_files(str(out) + ".checkpoint")[0][1])
    assert _files(tmp_path) == sorted(["c.txt", "v.bin", "v.partial.bin", "v.partial.bin.json",
                                       f"v.bin.checkpoint/{checkpoint}"])
    # the printed command resumes; the result is the uninterrupted run's, bit for bit
    resume_args = shlex.split(last.split(" Resume with: w2v-async ", 1)[1])
    assert CliRunner().invoke(cli, resume_args + ["-q"]).exit_code == 0
    plain = tmp_path / "plain.bin"
    assert CliRunner().invoke(cli, ["train", str(corpus), "-o", str(plain), *TRAIN, "-q"]).exit_code == 0
    assert out.read_bytes() == plain.read_bytes()


def test_second_signal_exits_at_once_and_leaves_no_temporary_files(tmp_path, hooks):
    """The second signal comes while the first one's checkpoint is being written (both held there
    by test hooks): the run exits without finishing it, and leaves nothing half written."""
    corpus = planted_corpus(tmp_path / "c.txt")
    out = tmp_path / "v.bin"
    out.write_bytes(PREVIOUS)
    proc = _start(hooks, ["hogwild-epoch-1", "checkpoint-1-unpublished"], str(corpus), "-o", str(out), *TRAIN)
    hooks.wait("hogwild-epoch-1", proc)
    proc.send_signal(signal.SIGINT)
    hooks.wait("checkpoint-1-unpublished", proc)  # the stop's checkpoint is in its temporary file
    assert [f for f in _files(tmp_path) if f.endswith(".tmp")]
    proc.send_signal(signal.SIGINT)
    err = _finish(proc)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("Error: ")
    assert out.read_bytes() == PREVIOUS
    assert not [f for f in _files(tmp_path) if f.endswith(".tmp")]
    assert checkpoint_files(str(out) + ".checkpoint") == [] and not (tmp_path / "v.partial.bin").exists()


def test_kill_9_loses_at_most_one_checkpoint_interval(tmp_path, hooks):
    """kill -9 while the fourth checkpoint is written (a test hook holds it in its temporary
    file): the third is the newest that loads, and a resume from it finishes."""
    corpus = planted_corpus(tmp_path / "c.txt")
    out = tmp_path / "v.bin"
    out.write_bytes(PREVIOUS)
    ck = tmp_path / "ck"
    proc = _start(hooks, ["checkpoint-4-unpublished"], str(corpus), "-o", str(out), *TRAIN, "--checkpoint-dir",
                  str(ck), "--checkpoint-every", "0.001")
    hooks.wait("checkpoint-4-unpublished", proc)
    assert len([f for f in os.listdir(ck) if f.endswith(".tmp")]) == 1
    proc.kill()
    _finish(proc, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert out.read_bytes() == PREVIOUS
    meta, _, path = load_checkpoint(str(ck))  # the newest complete checkpoint verifies
    assert meta["sequence"] == 3 and 0 < meta["progress"] < 1
    result = CliRunner().invoke(cli, ["train", str(corpus), "-o", str(out), "--resume", str(ck), "-q", "--json"])
    assert result.exit_code == 0, result.output
    assert not [f for f in _files(tmp_path) if f.endswith(".tmp")]
    kv = load_vectors(str(out))
    assert len(kv) == 40 and np.isfinite(kv.vectors).all()


def _interrupt_after_a_checkpoint(hooks, args):
    """Start train with args, send SIGINT once it has saved its first checkpoint (a test hook holds
    the run there until the signal has come); (exit code, stderr)."""
    proc = _start(hooks, ["checkpoint-1-saved"], *args)
    hooks.wait("checkpoint-1-saved", proc)
    proc.send_signal(signal.SIGINT)
    err = _finish(proc)
    return proc.returncode, err


def test_ray_engine_stops_cleanly_on_sigint_and_resumes(tmp_path, hooks):
    pytest.importorskip("ray")
    corpus = planted_corpus(tmp_path / "c.txt", n_sentences=3000)
    out, ck = tmp_path / "v.bin", tmp_path / "ck"
    args = [str(corpus), "-o", str(out), "--engine", "ray", "--min-count", "1", "--epochs", "30",
            "--batch-words", "5000", "--dim", "16", "--checkpoint-dir", str(ck), "-q"]
    returncode, err = _interrupt_after_a_checkpoint(hooks, args)
    assert returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("Error: stopped by SIGINT in epoch ")
    assert not out.exists() and np.isfinite(load_vectors(str(tmp_path / "v.partial.bin")).vectors).all()
    meta, _, _ = load_checkpoint(str(ck))
    assert 0 < meta["progress"] < 1
    result = CliRunner().invoke(cli, ["train", *args[:1], "-o", str(out), "--resume", str(ck), "-q", "--json"])
    assert result.exit_code == 0, result.output
    assert len(load_vectors(str(out))) == 40


def test_sandblaster_stops_cleanly_on_sigint_and_resumes(tmp_path, hooks):
    """Ctrl-C during a batch pass: the checkpoint holds the last finished iteration (L-BFGS's
    history with it), the message counts iterations, and the printed command finishes the run."""
    pytest.importorskip("ray")
    corpus = planted_corpus(tmp_path / "c.txt", n_sentences=3000, mix=0.1)
    out, ck = tmp_path / "v.txt", tmp_path / "ck"
    args = [str(corpus), "-o", str(out), "--model", "glove", "--engine", "sandblaster", "--min-count", "1",
            "--max-iter", "300", "--batch-words", "200", "--dim", "16", "--x-max", "10", "--checkpoint-dir", str(ck),
            "--checkpoint-every", "0", "-q"]
    returncode, err = _interrupt_after_a_checkpoint(hooks, args)
    assert returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("Error: stopped by SIGINT in iteration ") and "/300 " in last
    assert not out.exists() and np.isfinite(load_vectors(str(tmp_path / "v.partial.txt")).vectors).all()
    meta, arrays, _ = load_checkpoint(str(ck))
    assert meta["engine"] == "sandblaster" and 0 < meta["progress"] < 1 and arrays["lbfgs_s"].shape[0] >= 1
    resume_args = shlex.split(last.split(" Resume with: w2v-async ", 1)[1])
    result = CliRunner().invoke(cli, resume_args + ["--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["downpour"]["iterations"] >= meta["epoch"] and len(load_vectors(str(out))) == 40
