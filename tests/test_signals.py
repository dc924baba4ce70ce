"""Real subprocesses: Ctrl-C / SIGTERM save a checkpoint and partial vectors, a second signal exits at
once, and kill -9 loses at most one checkpoint interval. Nothing a previous run completed is damaged."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import planted_corpus
from w2v_async.cli import cli
from w2v_async.io import checkpoint_files, load_checkpoint, load_vectors

PREVIOUS = b"previous good vectors"
TRAIN = ["--epochs", "400", "--min-count", "1", "--threads", "1", "--seed", "4"]  # about 3 s


@pytest.fixture(autouse=True)
def _no_ray_left_behind():
    """The Ray tests resume in this process, which starts a local Ray: shut it down, so that the
    next test module's own Ray starts, whatever order the modules run in."""
    yield
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def _start(*args):
    cmd = [sys.executable, "-m", "w2v_async.cli", "train", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_training(proc):
    """Block until the progress bar shows words/s: the corpus is read and training runs."""
    deadline = time.time() + 120
    seen = ""
    while "w/s" not in seen and time.time() < deadline and proc.poll() is None:
        seen += proc.stderr.read(32)
    assert "w/s" in seen, seen


def _files(path):
    return sorted(os.path.relpath(os.path.join(root, f), path) for root, _, files in os.walk(path) for f in files)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_saves_a_checkpoint_and_partial_vectors_then_resume_is_bit_identical(tmp_path, sig):
    corpus = planted_corpus(tmp_path / "c.txt")
    out = tmp_path / "v.bin"
    out.write_bytes(PREVIOUS)
    proc = _start(str(corpus), "-o", str(out), *TRAIN)
    _wait_for_training(proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"Error: stopped by {sig.name} in epoch ") and " Resume with: w2v-async train " in last
    assert out.read_bytes() == PREVIOUS  # the previous vectors are untouched
    partial = tmp_path / "v.partial.bin"
    kv = load_vectors(str(partial))
    assert len(kv) == 40 and np.isfinite(kv.vectors).all()
    meta, _, _ = load_checkpoint(str(out) + ".checkpoint")
    assert 0 < meta["progress"] < 1
    checkpoint = os.path.basename(checkpoint_files(str(out) + ".checkpoint")[0][1])
    assert _files(tmp_path) == sorted(["c.txt", "v.bin", "v.partial.bin", "v.partial.bin.json",
                                       f"v.bin.checkpoint/{checkpoint}"])
    # the printed command resumes; the result is the uninterrupted run's, bit for bit
    resume_args = shlex.split(last.split(" Resume with: w2v-async ", 1)[1])
    assert CliRunner().invoke(cli, resume_args + ["-q"]).exit_code == 0
    plain = tmp_path / "plain.bin"
    assert CliRunner().invoke(cli, ["train", str(corpus), "-o", str(plain), *TRAIN, "-q"]).exit_code == 0
    assert out.read_bytes() == plain.read_bytes()


def test_second_signal_exits_at_once_and_leaves_no_temporary_files(tmp_path):
    corpus = planted_corpus(tmp_path / "c.txt")
    out = tmp_path / "v.bin"
    out.write_bytes(PREVIOUS)
    proc = _start(str(corpus), "-o", str(out), *TRAIN)
    _wait_for_training(proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("Error: ")
    assert out.read_bytes() == PREVIOUS
    assert not [f for f in _files(tmp_path) if f.endswith(".tmp")]
    for _, path in checkpoint_files(str(out) + ".checkpoint"):  # whatever was completed is whole
        load_checkpoint(os.path.dirname(path))


def test_kill_9_loses_at_most_one_checkpoint_interval(tmp_path):
    corpus = planted_corpus(tmp_path / "c.txt")
    out = tmp_path / "v.bin"
    out.write_bytes(PREVIOUS)
    ck = tmp_path / "ck"
    proc = _start(str(corpus), "-o", str(out), *TRAIN, "--checkpoint-dir", str(ck), "--checkpoint-every", "0.001")
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not any(s >= 3 for s, _ in checkpoint_files(str(ck))):
        time.sleep(0.005)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert out.read_bytes() == PREVIOUS
    meta, _, path = load_checkpoint(str(ck))  # the newest complete checkpoint verifies
    assert meta["sequence"] >= 3 and 0 < meta["progress"] < 1
    result = CliRunner().invoke(cli, ["train", str(corpus), "-o", str(out), "--resume", str(ck), "-q", "--json"])
    assert result.exit_code == 0, result.output
    assert not [f for f in _files(tmp_path) if f.endswith(".tmp")]
    kv = load_vectors(str(out))
    assert len(kv) == 40 and np.isfinite(kv.vectors).all()


def _interrupt_after_a_checkpoint(args, ck):
    """Start train with args, send SIGINT once a checkpoint is in ck; (exit code, stderr)."""
    proc = _start(*args)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not checkpoint_files(str(ck)):
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_ray_engine_stops_cleanly_on_sigint_and_resumes(tmp_path):
    pytest.importorskip("ray")
    corpus = planted_corpus(tmp_path / "c.txt", n_sentences=3000)
    out, ck = tmp_path / "v.bin", tmp_path / "ck"
    args = [str(corpus), "-o", str(out), "--engine", "ray", "--min-count", "1", "--epochs", "30",
            "--batch-words", "5000", "--dim", "16", "--checkpoint-dir", str(ck), "-q"]
    returncode, err = _interrupt_after_a_checkpoint(args, ck)
    assert returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("Error: stopped by SIGINT in epoch ")
    assert not out.exists() and np.isfinite(load_vectors(str(tmp_path / "v.partial.bin")).vectors).all()
    meta, _, _ = load_checkpoint(str(ck))
    assert 0 < meta["progress"] < 1
    result = CliRunner().invoke(cli, ["train", *args[:1], "-o", str(out), "--resume", str(ck), "-q", "--json"])
    assert result.exit_code == 0, result.output
    assert len(load_vectors(str(out))) == 40


def test_sandblaster_stops_cleanly_on_sigint_and_resumes(tmp_path):
    """Ctrl-C during a batch pass: the checkpoint holds the last finished iteration (L-BFGS's
    history with it), the message counts iterations, and the printed command finishes the run."""
    pytest.importorskip("ray")
    corpus = planted_corpus(tmp_path / "c.txt", n_sentences=3000, mix=0.1)
    out, ck = tmp_path / "v.txt", tmp_path / "ck"
    args = [str(corpus), "-o", str(out), "--model", "glove", "--engine", "sandblaster", "--min-count", "1",
            "--max-iter", "300", "--batch-words", "200", "--dim", "16", "--x-max", "10", "--checkpoint-dir", str(ck),
            "--checkpoint-every", "0", "-q"]
    returncode, err = _interrupt_after_a_checkpoint(args, ck)
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
