"""The GPU kernels on tiny inputs, for NVIDIA's compute-sanitizer on the lent GPU machine
(scripts/device_gpu.sh runs it under --tool racecheck and --tool memcheck): a shared-memory hazard
between a block's threads, or an out-of-bounds access, is reported there with the kernel's line.
Every launch uses the shapes the engines use (threads_per_block, several blocks and warps), on a
corpus of sentences longer than a block's width (several subsampling chunks), with a sentence that
keeps no word. Here, in numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1), it only checks that it runs.

    compute-sanitizer --tool racecheck --error-exitcode 9 python3 scripts/gpu_sanitize.py
"""

import numpy as np
from numba import cuda

from w2v_async.models.gpu_glove import glove_kernel
from w2v_async.models.gpu_glove import threads_per_block as glove_threads
from w2v_async.models.gpu_word2vec import sentence_kernel, threads_per_block


def word2vec(cbow: bool, dim: int = 40, window: int = 3, negative: int = 4, blocks: int = 3) -> float:
    rng = np.random.default_rng(1)
    n_words = 50
    lengths = np.array([90, 0, 7, 70, 1, 40], np.int64)  # longer than the 32-64 threads: several chunks
    ids = rng.integers(0, n_words, lengths.sum()).astype(np.int32)
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    keep = np.where(np.arange(n_words) < 5, np.float32(0.0), np.float32(0.9)).astype(np.float32)  # some dropped
    prob = np.ones(n_words, np.float32)
    alias = np.arange(n_words, dtype=np.int32)
    w_in = ((rng.random((n_words, dim), dtype=np.float32) - 0.5) / dim).astype(np.float32)
    w_out = np.zeros((n_words, dim), np.float32)
    out = np.zeros((blocks, 2))
    kernel = sentence_kernel(dim, window, negative, cbow)
    kernel[blocks, threads_per_block(dim, 2 * window, negative + 1)](
        w_in, w_out, ids, starts, np.arange(len(lengths), dtype=np.int64), keep, prob, alias,
        np.array([window, window], np.int64), np.arange(1, blocks + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15),
        np.array([0.025, 0.0001, float(lengths.sum())]), np.zeros(1, np.int64),
        np.zeros((blocks, int(lengths.max())), np.int32), out)
    return float(out[:, 1].sum())


def glove(dim: int = 40, warps: int = 2, blocks: int = 3) -> float:
    rng = np.random.default_rng(2)
    n_words, n = 30, 500
    params = [((rng.random((n_words, dim), dtype=np.float32) - 0.5) / dim) for _ in range(2)]
    params += [np.zeros(n_words, np.float32) for _ in range(2)]
    gradsq = [np.ones_like(p) for p in params]
    rows, cols = (rng.integers(0, n_words, n).astype(np.int32) for _ in range(2))
    values = (rng.random(n, dtype=np.float32) * 20 + 0.5).astype(np.float32)
    out = np.zeros((blocks * warps, 2))
    glove_kernel(warps)[blocks, glove_threads(warps)](*params, *gradsq, rows, cols, values,
                                                      np.array([10.0, 0.75, 0.05, 100.0]), out)
    return float(out[:, 1].sum())


def main():
    print("sgns examples", word2vec(False), "cbow examples", word2vec(True), "glove entries", glove(), flush=True)
    cuda.synchronize()


if __name__ == "__main__":
    main()
