"""GloVe on an NVIDIA GPU (issue 28): glove.c's AdaGrad step, one co-occurrence entry per warp.

A warp of 32 threads trains one entry (i, j, x) at a time, lane l holding the dimensions l, l + 32,
...: the lanes' partial dot products go through shared memory (no warp shuffles, so numba's CUDA
simulator runs it), every lane adds the 32 partials in the same order and so gets the same diff,
then each lane takes glove.c's step on its dimensions (models/glove.glove_update: the gradient
clipped, scaled by eta, over the square root of the AdaGrad sum) and lane 0 the two biases. The
rows are written with plain stores, as glove.c's threads write: two warps on the same row at once
is Hogwild's collision, here among thousands of entries in flight rather than 16.

The warps of a block step together (one syncthreads before and after the partials are read), and
the blocks stride over the launch's entries: warp w of block b takes entries (b W + w) + k W B.
One warp alone trains the entries in order, as one CPU thread does (to the dot product's
summation order).

numba.cuda is imported when this module is, so only a GPU run (or a test in the simulator,
NUMBA_ENABLE_CUDASIM=1 set before numba is imported) imports it.
"""

import math

from numba import cuda, float32, float64

LANES = 32  # threads per entry: one warp


def glove_kernel(warps: int, max_registers=None):
    """The kernel for blocks of `warps` warps (max_registers: numba-cuda's cap per thread, None: the
    compiler's choice, 96 at sm_90; 64 would fit twice the blocks an SM, spilling about 128 bytes a
    thread: scripts/bench_gpu.py times both). Launch as kernel[blocks, 32 warps] with
        w_word, w_ctx : float32[V, d]; b_word, b_ctx : float32[V]; and their AdaGrad sums g_word,
        g_ctx, gb_word, gb_ctx (same shapes), all updated in place; rows, cols : int32[n];
        values : float32[n]; hyper : float64[4] (x_max, alpha, eta, grad_clip);
        out : float64[blocks * warps, 2], each warp's cost and entries trained (added to).
    An entry whose cost is not finite updates nothing (glove.c skips it); its cost is added, so the
    caller sees the divergence, and it is counted, as models/glove.train_glove_epoch counts it.
    """

    @cuda.jit(**({} if max_registers is None else {"max_registers": max_registers}))
    def train_entries(w_word, w_ctx, b_word, b_ctx, g_word, g_ctx, gb_word, gb_ctx, rows, cols, values, hyper, out):
        partial = cuda.shared.array((warps, LANES), float32)
        t = cuda.threadIdx.x
        w = t // LANES
        lane = t - w * LANES
        slot = cuda.blockIdx.x * warps + w
        stride = cuda.gridDim.x * warps
        dim = w_word.shape[1]
        n = rows.shape[0]
        x_max, power = hyper[0], hyper[1]
        eta, clip = float32(hyper[2]), float32(hyper[3])
        cost_sum = float64(0.0)
        trained = 0
        for first in range(0, n, stride):  # every warp of every block takes the same number of steps
            e = first + slot
            i = rows[e] if e < n else 0
            j = cols[e] if e < n else 0
            dot = float32(0.0)
            base = float32(0.0)
            if e < n:
                for k in range(lane, dim, LANES):
                    dot += w_word[i, k] * w_ctx[j, k]
                base = b_word[i] + b_ctx[j]  # read before the barrier: lane 0 changes them after it
            partial[w, lane] = dot
            cuda.syncthreads()
            if e < n:
                x = values[e]
                diff = base - float32(math.log(x))
                for q in range(LANES):
                    diff += partial[w, q]
                weight = float32(1.0) if x > x_max else float32((float64(x) / x_max) ** power)
                fdiff = weight * diff
                cost = 0.5 * float64(fdiff) * float64(diff)  # float64, as the CPU's
                if lane == 0:
                    cost_sum += cost
                if math.isfinite(cost):
                    for k in range(lane, dim, LANES):
                        wi = w_word[i, k]
                        wj = w_ctx[j, k]
                        t_i = min(max(fdiff * wj, -clip), clip) * eta  # eta dJ/dw_i, clipped
                        t_j = min(max(fdiff * wi, -clip), clip) * eta  # eta dJ/dw~_j, clipped
                        w_word[i, k] = wi - t_i / math.sqrt(g_word[i, k])
                        w_ctx[j, k] = wj - t_j / math.sqrt(g_ctx[j, k])
                        g_word[i, k] += t_i * t_i
                        g_ctx[j, k] += t_j * t_j
                    if lane == 0:
                        b_word[i] -= fdiff / math.sqrt(gb_word[i])
                        b_ctx[j] -= fdiff / math.sqrt(gb_ctx[j])
                        gb_word[i] += fdiff * fdiff
                        gb_ctx[j] += fdiff * fdiff
                if lane == 0:
                    trained += 1
            cuda.syncthreads()  # the partials are free again
        if lane == 0:
            out[slot, 0] += cost_sum
            out[slot, 1] += trained

    return train_entries


def threads_per_block(warps: int) -> int:
    """Threads a GloVe block runs: one warp per entry in flight."""
    return warps * LANES
