"""--engine gpu end to end in numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1: no GPU needed, one
block at a time and slow, so the corpora are tiny), and its one-line error where no GPU is."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from gensim.models import KeyedVectors

from conftest import group_margin, planted_corpus

TINY = ["--dim", "8", "--window", "2", "--negative", "2", "--min-count", "1", "-q"]


def _w2v(*args, simulate=True, **env):
    environ = dict(os.environ, **env)
    if simulate:
        environ["NUMBA_ENABLE_CUDASIM"] = "1"
    return subprocess.run([sys.executable, "-m", "w2v_async.cli", "train", *map(str, args)], env=environ,
                          capture_output=True, text=True, timeout=900)


def test_without_a_gpu_the_engine_is_one_line_and_exit_2(tmp_path):
    corpus = planted_corpus(tmp_path / "c.txt", n_sentences=20)
    done = _w2v(corpus, "-o", tmp_path / "v.txt", "--engine", "gpu", *TINY, simulate=False, CUDA_VISIBLE_DEVICES="")
    assert done.returncode == 2 and done.stderr.startswith("Error: --engine gpu needs an NVIDIA GPU with CUDA; none "
                                                           "was found (") and len(done.stderr.splitlines()) == 1
    assert not os.path.exists(tmp_path / "v.txt")


@pytest.mark.parametrize("model", ["sgns"])  # CBOW's kernel: a CPU thread's training (test_gpu_kernels.py)
def test_planted_groups_are_learned_on_the_simulated_gpu(tmp_path, model):
    corpus = planted_corpus(tmp_path / "c.txt", n_groups=2, group_size=4, n_sentences=20, length=6)
    done = _w2v(corpus, "-o", tmp_path / "v.txt", "--engine", "gpu", "--model", model, *TINY, "--epochs", "2",
                "--alpha", "0.3", "--sample", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    kv = KeyedVectors.load_word2vec_format(str(tmp_path / "v.txt"))
    assert group_margin(kv.index_to_key, kv.vectors) > 0.5  # a CPU thread, the same training: 0.86-1.27 at seeds 1-4


def test_a_gpu_run_resumes_bit_identical_and_the_threads_engine_continues_it(tmp_path):
    """Its checkpoints hold every block's RNG state: a run cut after epoch 1 and resumed gives the
    uninterrupted run's vectors; the threads engine resumes the same checkpoint (one stream of
    sentences, as a one-thread run)."""
    corpus = planted_corpus(tmp_path / "c.txt", n_groups=2, group_size=4, n_sentences=25, length=6)
    full = _w2v(corpus, "-o", tmp_path / "full.txt", "--engine", "gpu", *TINY, "--epochs", "2", "--checkpoint-dir",
                tmp_path / "ck")
    assert full.returncode == 0, full.stderr[-3000:]
    names = sorted(os.listdir(tmp_path / "ck"))
    os.unlink(tmp_path / "ck" / names[-1])  # back to the end of epoch 1
    resumed = _w2v(corpus, "-o", tmp_path / "resumed.txt", "--engine", "gpu", *TINY, "--resume", tmp_path / "ck")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = (KeyedVectors.load_word2vec_format(str(tmp_path / n)) for n in ("full.txt", "resumed.txt"))
    assert a.index_to_key == b.index_to_key and np.array_equal(a.vectors, b.vectors)
    os.unlink(tmp_path / "ck" / sorted(os.listdir(tmp_path / "ck"))[-1])
    threads = _w2v(corpus, "-o", tmp_path / "threads.txt", *TINY, "--threads", "1", "--resume", tmp_path / "ck",
                   simulate=False)
    assert threads.returncode == 0, threads.stderr[-3000:]
    c = KeyedVectors.load_word2vec_format(str(tmp_path / "threads.txt"))
    assert np.allclose(c.vectors, a.vectors, atol=1e-4)  # the same draws and tables: equal to rounding


GLOVE = ["--model", "glove", "--dim", "8", "--window", "3", "--min-count", "1", "--x-max", "10", "-q"]


def test_gpu_glove_trains_as_one_cpu_thread_resumes_and_hands_over_to_the_threads_engine(tmp_path):
    """The simulator has one block of one warp: the shuffled entries in order, as one CPU thread
    trains them (to the dot products' rounding). A run cut after epoch 2 resumes bit-identical, on
    the GPU or, from the same checkpoint, on the threads engine."""
    corpus = planted_corpus(tmp_path / "c.txt", n_groups=2, group_size=4, n_sentences=40, length=6, mix=0.1)
    cpu = _w2v(corpus, "-o", tmp_path / "cpu.txt", *GLOVE, "--epochs", "3", "--threads", "1", simulate=False)
    gpu = _w2v(corpus, "-o", tmp_path / "gpu.txt", "--engine", "gpu", *GLOVE, "--epochs", "3", "--checkpoint-dir",
               tmp_path / "ck")
    assert cpu.returncode == 0 and gpu.returncode == 0, cpu.stderr[-2000:] + gpu.stderr[-3000:]
    a, b = (KeyedVectors.load_word2vec_format(str(tmp_path / n)) for n in ("cpu.txt", "gpu.txt"))
    assert a.index_to_key == b.index_to_key and np.abs(a.vectors).max() > 0.05
    assert np.allclose(a.vectors, b.vectors, rtol=1e-4, atol=1e-5), np.abs(a.vectors - b.vectors).max()
    os.unlink(tmp_path / "ck" / sorted(os.listdir(tmp_path / "ck"))[-1])  # back to the end of epoch 2
    resumed = _w2v(corpus, "-o", tmp_path / "resumed.txt", "--engine", "gpu", *GLOVE, "--resume", tmp_path / "ck")
    threads = _w2v(corpus, "-o", tmp_path / "threads.txt", *GLOVE, "--threads", "1", "--resume", tmp_path / "ck",
                   simulate=False)
    assert resumed.returncode == 0 and threads.returncode == 0, resumed.stderr[-3000:] + threads.stderr[-2000:]
    c, d = (KeyedVectors.load_word2vec_format(str(tmp_path / n)) for n in ("resumed.txt", "threads.txt"))
    assert np.array_equal(c.vectors, b.vectors)
    assert np.allclose(d.vectors, b.vectors, rtol=1e-4, atol=1e-5)


def test_a_window_too_big_for_a_blocks_shared_memory_is_one_line_before_reading(tmp_path):
    """A window's rows live in a block's 48 KB of static shared memory: --dim 1000 with the default
    window and negatives needs 76 KB (models/gpu_word2vec.shared_bytes, which ptxas matched to the
    byte at sm_90), which no GPU compiles; one Error line names what to lower."""
    corpus = planted_corpus(tmp_path / "c.txt", n_sentences=20)
    done = _w2v(corpus, "-o", tmp_path / "v.txt", "--engine", "gpu", "--dim", "1000", "--min-count", "1", "-q")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr[-2000:]
    assert done.stderr.startswith("Error: --engine gpu holds a window's rows in a block's 48 KB") and \
        "--dim 1000 --window 5 --negative 5 needs 76 KB" in done.stderr
    assert not os.path.exists(tmp_path / "v.txt")


def test_resuming_a_locked_fine_tuning_run_on_the_gpu_is_refused(tmp_path):
    """The GPU kernels have no update factor: a --lock-factor run's checkpoint does not resume there
    as if its source rows were free (one line naming the engines that keep the lock)."""
    corpus = planted_corpus(tmp_path / "c.txt", n_groups=2, group_size=4, n_sentences=20, length=6)
    source = _w2v(corpus, "-o", tmp_path / "a.txt", *TINY, "--epochs", "1", simulate=False)
    locked = _w2v(corpus, "-o", tmp_path / "b.txt", *TINY, "--epochs", "2", "--init", tmp_path / "a.txt",
                  "--lock-factor", "0.5", "--checkpoint-dir", tmp_path / "ck", simulate=False)
    assert source.returncode == 0 and locked.returncode == 0, source.stderr[-2000:] + locked.stderr[-2000:]
    os.unlink(tmp_path / "ck" / sorted(os.listdir(tmp_path / "ck"))[-1])  # back to the end of epoch 1
    done = _w2v(corpus, "-o", tmp_path / "c.txt.out", *TINY, "--engine", "gpu", "--resume", tmp_path / "ck")
    assert done.returncode != 0 and done.stderr.startswith("Error: this run's --lock-init / --lock-factor rows need "
                                                           "--engine threads or ray"), done.stderr[-2000:]
    assert len(done.stderr.splitlines()) == 1 and not os.path.exists(tmp_path / "c.txt.out")


# word2vec.c's clamped gradients diverge slowly: the threads engine takes 3 epochs at --alpha 1e30
@pytest.mark.parametrize("args", [["--alpha", "1e30"],
                                  ["--model", "glove", "--x-max", "10", "--eta", "10000", "--grad-clip", "1e30"]])
def test_a_diverging_gpu_run_stops_and_leaves_the_output_alone(tmp_path, args):
    corpus = planted_corpus(tmp_path / "c.txt", n_groups=2, group_size=4, n_sentences=20, length=6, mix=0.1)
    out = tmp_path / "v.txt"
    out.write_bytes(b"previous good vectors")
    done = _w2v(corpus, "-o", out, "--engine", "gpu", "--dim", "8", "--min-count", "1", "-q", *args)
    assert done.returncode == 1, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1].startswith("Error: training diverged in epoch ")
    assert out.read_bytes() == b"previous good vectors"


def test_ctrl_c_on_the_gpu_saves_partial_vectors_and_the_resumed_run_is_the_uninterrupted_one(tmp_path, hooks):
    """SIGINT once the first checkpoint is saved (a test hook holds the run there until it comes):
    the run stops at the next piece, writes its partial vectors and a checkpoint, exits 130; resumed
    on the GPU it ends bit-identical to a run never stopped."""
    corpus = planted_corpus(tmp_path / "c.txt", n_groups=2, group_size=4, n_sentences=25, length=6)
    ck, out = tmp_path / "ck", tmp_path / "v.txt"
    args = [corpus, "-o", out, "--engine", "gpu", *TINY, "--epochs", "3", "--checkpoint-dir", ck]
    with open(tmp_path / "stderr", "w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "w2v_async.cli", "train", *map(str, args)],
                                stdout=subprocess.DEVNULL, stderr=err,
                                env=hooks.env("checkpoint-1-saved", NUMBA_ENABLE_CUDASIM="1"))
        hooks.wait("checkpoint-1-saved", proc)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=600)
        err.seek(0)
        stderr = err.read()
    assert proc.returncode == 130, stderr[-3000:]
    assert stderr.strip().splitlines()[-1].startswith("Error: stopped by SIGINT in epoch ")
    assert not out.exists()
    partial = KeyedVectors.load_word2vec_format(str(tmp_path / "v.partial.txt"))
    assert np.isfinite(partial.vectors).all()
    resumed = _w2v(corpus, "-o", out, "--engine", "gpu", *TINY, "--resume", ck)
    full = _w2v(corpus, "-o", tmp_path / "full.txt", "--engine", "gpu", *TINY, "--epochs", "3")
    assert resumed.returncode == 0 and full.returncode == 0, resumed.stderr[-3000:] + full.stderr[-3000:]
    a, b = (KeyedVectors.load_word2vec_format(str(p)) for p in (out, tmp_path / "full.txt"))
    assert np.array_equal(a.vectors, b.vectors)
