"""The GPU kernels in numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1, no GPU needed), each in a
process of its own: the simulator must be chosen before numba is imported. With W2V_GPU_DEVICE=1
they run on the real GPU instead (scripts/device_gpu.sh): the launches are sized so that no two
blocks share a row, or are one block, so the same checks hold there."""

import os
import subprocess
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))

WINDOWS = """
import sys
import numpy as np
sys.path.insert(0, {tests!r})
from naive import sgns_window_step
from w2v_async.models.gpu_word2vec import threads_per_block, window_kernel

rng = np.random.default_rng(0)
w_in = (rng.random((40, 12), dtype=np.float32) - 0.5)
w_out = (rng.random((40, 12), dtype=np.float32) - 0.5)
# three windows on disjoint rows, so the result does not depend on the order the blocks run in; a
# repeated context (2) and a repeated negative (12) take both changes, the center as a negative (0)
# is dropped
centers = np.array([0, 10, 20], np.int32)
contexts = [[1, 2, 3, 2], [11], [21, 22]]
negatives = np.array([[4, 0, 5], [12, 13, 12], [23, 24, 25]], np.int32)
bounds = np.cumsum([0] + [len(c) for c in contexts]).astype(np.int64)
ids = np.array(sum(contexts, []), np.int32)
lr = np.float32(0.5)
ref_in, ref_out, ref_loss = w_in.astype(np.float64), w_out.astype(np.float64), []
for center, ctx, negs in zip(centers, contexts, negatives):
    ref_in, ref_out, loss = sgns_window_step(ref_in, ref_out, center, ctx, negs, lr)
    ref_loss.append(loss)
loss = np.zeros(3, np.float32)
kernel = window_kernel(12, 4, 4)
start = w_in.copy()
kernel[3, threads_per_block(12, 4, 4)](w_in, w_out, centers, bounds, ids, negatives, lr, loss)
assert np.allclose(w_in, ref_in, atol=2e-3) and np.allclose(w_out, ref_out, atol=2e-3), (w_in - ref_in)
assert np.allclose(loss, ref_loss, rtol=2e-2), (loss, ref_loss)
assert np.abs(w_in - start).max() > 1e-2 and np.array_equal(w_in[30:], start[30:])
print("OK")
"""


SENTENCES = """
import sys
import numpy as np
sys.path.insert(0, {tests!r})
from conftest import planted_corpus
from w2v_async.config import VocabConfig, Word2VecConfig
from w2v_async.data.corpus import CorpusReader
from w2v_async.data.vocab import scan_corpus
from w2v_async.engines.base import init_matrices, thread_rng_states
from w2v_async.engines.threads import train_word2vec
from w2v_async.models.gpu_word2vec import sentence_kernel, threads_per_block
from w2v_async.models.sampling import build_alias_table

path = str(planted_corpus({tmp!r} + "/c.txt", n_sentences={n_sentences}, length={length}))
vocab, enc = scan_corpus(CorpusReader(path), VocabConfig(min_count=1))
cfg = Word2VecConfig(model={model!r}, dim=8, window=2, negative=3, sample=0.02, epochs=1, threads=1, seed=5, alpha=0.2)
cpu = train_word2vec(enc, vocab, cfg, progress=False)
w_in, w_out = init_matrices(len(vocab), cfg.dim, cfg.seed, cfg.init_scale)
start = w_in.copy()
prob, alias = build_alias_table(vocab.noise_distribution(cfg.ns_exponent))
out = np.zeros((1, 2))
kernel = sentence_kernel(cfg.dim, cfg.window, cfg.negative, cbow=cfg.model == "cbow")
kernel[1, threads_per_block(cfg.dim, 2 * cfg.window, cfg.negative + 1)](
    w_in, w_out, np.asarray(enc.ids), np.asarray(enc.sent_starts), np.arange(enc.n_sentences, dtype=np.int64),
    vocab.keep_probs(cfg.sample), prob, alias, np.array(cfg.windows, np.int64), thread_rng_states(cfg.seed, 1)[0],
    np.array([cfg.start_alpha, cfg.min_alpha, enc.n_words * cfg.epochs]), np.zeros(1, np.int64),
    np.zeros((1, enc.longest_sentence()), np.int32), out)
assert out[0, 1] == cpu.epoch_examples[0], (out, cpu.epoch_examples)  # the same draws: the same windows
moved = np.abs(cpu.w_in - start).max()
diff = max(np.abs(w_in - cpu.w_in).max(), np.abs(w_out - cpu.w_out).max())
assert moved > 0.05 and diff < 1e-4 * moved, (moved, diff)  # float rounding: the sums run in another order
assert abs(out[0, 0] - cpu.epoch_loss_sum[0]) < 1e-4 * cpu.epoch_loss_sum[0], (out, cpu.epoch_loss_sum)
print("OK", moved, diff)
"""


def _simulate(script: str) -> subprocess.CompletedProcess:
    """script in numba's CUDA simulator; on the real GPU when W2V_GPU_DEVICE=1 (scripts/device_gpu.sh)."""
    env = dict(os.environ) if os.environ.get("W2V_GPU_DEVICE") == "1" else dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)


def test_one_launch_of_hogbatch_windows_is_the_numpy_minibatch_step():
    """Each block is ns_window_deltas's step: every score at the rows as loaded, then each output
    row takes sum_c G[c, o] v_c and each context row sum_o G[c, o] u_o (word2vec.c's sigmoid table
    against the reference's exact one: within its error)."""
    done = _simulate(WINDOWS.format(tests=TESTS))
    assert done.returncode == 0 and done.stdout.strip().endswith("OK"), done.stderr[-3000:]


# 8-word sentences: one subsampling chunk each; 75-word ones: three chunks of the block's 32 threads
@pytest.mark.parametrize("model, n_sentences, length", [("sgns", 30, 8), ("cbow", 30, 8), ("sgns", 4, 75)])
def test_a_block_trains_sentences_as_a_cpu_thread_does(tmp_path, model, n_sentences, length):
    """Subsampling, reduced windows and negatives drawn on the device by a block's xorshift64* state
    in the CPU kernel's order: one block trains what one CPU thread trains (the same windows and
    negatives, word2vec.c's sigmoid tables, the same updates to float rounding)."""
    done = _simulate(SENTENCES.format(tests=TESTS, tmp=str(tmp_path), model=model, n_sentences=n_sentences,
                                      length=length))
    assert done.returncode == 0 and done.stdout.strip().startswith("OK"), done.stderr[-3000:]


GLOVE = """
import numpy as np
from w2v_async.models.glove import train_glove_epoch
from w2v_async.models.gpu_glove import glove_kernel, threads_per_block

rng = np.random.default_rng(3)
V, d = 24, 40  # d over 32: lanes 0-7 hold two dimensions each
hyper = np.array([10.0, 0.75, 0.05, 100.0])


def fresh():
    params = [(rng.random((V, d), dtype=np.float32) - 0.5) / 2 for _ in range(2)]  # steps the AdaGrad sums show
    params += [(rng.random(V, dtype=np.float32) - 0.5) / d for _ in range(2)]
    return params, [np.ones_like(p) + rng.random(p.shape, dtype=np.float32) for p in params]


def check(n_blocks, warps, rows, cols):
    values = rng.random(rows.shape[0], dtype=np.float32) * 20 + 0.5  # some past x_max
    params, gradsq = fresh()
    start = [a.copy() for a in params + gradsq]
    cpu = [a.copy() for a in params], [a.copy() for a in gradsq]
    counters = np.zeros(2, np.int64)
    cost, done = train_glove_epoch(tuple(cpu[0]), tuple(cpu[1]), (rows, cols, values), hyper, counters, 0)
    out = np.zeros((n_blocks * warps, 2))
    glove_kernel(warps)[n_blocks, threads_per_block(warps)](*params, *gradsq, rows, cols, values, hyper, out)
    for got, want in zip(params + gradsq, cpu[0] + cpu[1]):  # the lanes' partial dots add in another order
        assert np.allclose(got, want, rtol=1e-5, atol=1e-6), np.abs(got - want).max()
        assert np.abs(got - want).max() < 1e-3 * np.abs(want - start.pop(0)).max()  # to rounding, of a step
    assert out[:, 1].sum() == done == rows.shape[0] and np.isclose(out[:, 0].sum(), cost, rtol=1e-5), (out, cost)


# one warp: the entries in order, as one CPU thread (rows repeat, so each step sees the last one's change)
check(1, 1, rng.integers(0, 6, 60).astype(np.int32), rng.integers(0, 6, 60).astype(np.int32))
# 2 blocks of 2 warps: entry e goes to warp slot e % 4, each slot on rows of its own, so any
# interleaving of the slots is the CPU's order
slot = np.arange(80) % 4
check(2, 2, (slot * 6 + rng.integers(0, 6, 80)).astype(np.int32), (slot * 6 + rng.integers(0, 6, 80)).astype(np.int32))
print("OK")
"""


def test_gpu_glove_warps_take_glove_cs_adagrad_steps_in_order():
    """One warp trains its entries in order with glove.c's step (models/glove.train_glove_epoch's,
    on one CPU thread, to the dot product's rounding): parameters, AdaGrad sums, cost and count;
    several blocks and warps stride over the entries, each slot in order."""
    done = _simulate(GLOVE)
    assert done.returncode == 0 and done.stdout.strip().endswith("OK"), done.stderr[-3000:]
