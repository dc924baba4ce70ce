"""Skip-gram on an NVIDIA GPU (issue 28, in progress): HogBatch windows trained by CUDA blocks.

A block trains one window (Ji et al. 2016, as BlazingText and FULL-W2V map it): its context rows
and its output rows (the center, then its negatives) are loaded once into shared memory, one
thread per dimension; the window's scores, one per (context, output) pair, are computed by one
thread per pair from shared memory (no warp shuffles, so numba's CUDA simulator runs it); then
every output row takes sum_c G[c, o] v_c and every context row sum_o G[c, o] u_o, all at the rows as
loaded (the CPU's ns_window_deltas step, with word2vec.c's sigmoid tables), added with float32
atomics. Two windows of a launch that
share a row both land (atomics, not plain stores), at rows each loaded before the other's change:
Hogwild's staleness, as on the CPU.

sentence_kernel draws the subsampling, windows and negatives on the device, a block a sentence at a
time as a CPU thread does; window_kernel trains windows drawn elsewhere. Nothing here is wired to
`--engine gpu` yet: streaming the corpus, checkpoints and the engine are the next steps.

numba.cuda is imported when this module is, so only a GPU run (or a test in the simulator,
NUMBA_ENABLE_CUDASIM=1 set before numba is imported) imports it.
"""

import numpy as np
from numba import cuda, float32

from .sampling import _TABLE_SCALE, EXP_TABLE_SIZE, LOG_SIGMOID_TABLE, MAX_EXP, SIGMOID_TABLE

PROGRESS_EVERY = 10_000  # words a block trains between publishing its count and reading the rate (as a CPU thread)
_U8, _U12, _U25, _U27, _U32 = (np.uint64(n) for n in (8, 12, 25, 27, 32))
_U24_MASK = np.uint64(0xFFFFFF)
_MULT = np.uint64(0x2545F4914F6CDD1D)


@cuda.jit(device=True)
def _next(x):
    """xorshift64*, as models/sampling.xorshift_next: the next state (the caller multiplies)."""
    x ^= x >> _U12
    x ^= x << _U25
    x ^= x >> _U27
    return x


@cuda.jit(device=True)
def _bounded(r, n):
    """The high 32 bits of r onto [0, n), as sampling.bounded."""
    return np.int64(((r >> _U32) * np.uint64(n)) >> _U32)


@cuda.jit(device=True)
def _unit(r):
    """24 bits of r as a float32 in [0, 1), as sampling.unit_float."""
    return float32((r >> _U8) & _U24_MASK) * float32(1.0 / (1 << 24))


@cuda.jit(device=True)
def _grad_loss(f, label, lr):
    """sampling._sigmoid_grad_loss on the device: word2vec.c's tables, as the CPU kernels."""
    if f > MAX_EXP:
        return (label - float32(1.0)) * lr, (float32(1.0) - label) * f
    if f < -MAX_EXP:
        return label * lr, -label * f
    idx = 0 if f != f else min(max(int((f + MAX_EXP) * _TABLE_SCALE), 0), EXP_TABLE_SIZE - 1)  # NaN: its loss stays NaN
    return (label - SIGMOID_TABLE[idx]) * lr, (float32(1.0) - label) * f - LOG_SIGMOID_TABLE[idx]


@cuda.jit(device=True)
def _outputs(outputs, center, negatives, n_neg, t):
    """Thread 0 writes a window's output rows into outputs (shared): the center, then the negatives
    that differ from it, then -1; every thread returns how many there are."""
    if t == 0:
        outputs[0] = center
        n = 1
        for q in range(n_neg):
            if negatives[q] != center:
                outputs[n] = negatives[q]
                n += 1
        for q in range(n, outputs.shape[0]):
            outputs[q] = -1
    cuda.syncthreads()
    n_out = 0
    for q in range(outputs.shape[0]):
        if outputs[q] >= 0:
            n_out += 1
    return n_out


@cuda.jit(device=True)
def _window_step(w_in, w_out, v, u, g, pair_loss, outputs, contexts, n_ctx, negatives, n_neg, center, lr, t):
    """One HogBatch window in a block (thread t; every thread calls it): contexts[:n_ctx] (shared)
    predict center against negatives[:n_neg] (shared; those equal to center dropped), every score
    at the rows as loaded, each change added atomically. Returns the window's loss (thread 0's)."""
    dim = v.shape[1]
    n_out = _outputs(outputs, center, negatives, n_neg, t)
    if t < dim:  # one thread per dimension loads every row once
        for c in range(n_ctx):
            v[c, t] = w_in[contexts[c], t]
        for o in range(n_out):
            u[o, t] = w_out[outputs[o], t]
    cuda.syncthreads()
    if t < n_ctx * n_out:  # one thread per (context, output) pair: its score and gradient
        c = t // n_out
        o = t - c * n_out
        f = float32(0.0)
        for k in range(dim):
            f += v[c, k] * u[o, k]
        label = float32(1.0) if o == 0 else float32(0.0)
        g[t], pair_loss[t] = _grad_loss(f, label, lr)
    cuda.syncthreads()
    if t < dim:  # every change from the rows as loaded, added atomically
        for o in range(n_out):
            delta = float32(0.0)
            for c in range(n_ctx):
                delta += g[c * n_out + o] * v[c, t]
            cuda.atomic.add(w_out, (outputs[o], t), delta)
        for c in range(n_ctx):
            delta = float32(0.0)
            for o in range(n_out):
                delta += g[c * n_out + o] * u[o, t]
            cuda.atomic.add(w_in, (contexts[c], t), delta)
    total = float32(0.0)
    if t == 0:
        for p in range(n_ctx * n_out):
            total += pair_loss[p]
    cuda.syncthreads()  # the shared rows are free again
    return total


@cuda.jit(device=True)
def _cbow_step(w_in, w_out, v, u, g, pair_loss, outputs, contexts, n_ctx, negatives, n_neg, center, lr, t):
    """One CBOW window in a block (word2vec.c's, as word2vec.cbow_update): h, the mean of
    contexts[:n_ctx] (v[0], shared), predicts center against negatives[:n_neg] (those equal to
    center dropped); each output row takes g h, each context row the whole sum_o g_o u_o, added
    atomically. The CPU takes the outputs one after another, so a row drawn twice is scored the
    second time after its first change: the scores are computed in parallel from the rows as
    loaded, then corrected in order (u' = u + g h moves a later score by g |h|^2 and the gradient by
    g' g h), which gives the CPU's step. Returns the window's loss (thread 0's)."""
    dim = v.shape[1]
    n_out = _outputs(outputs, center, negatives, n_neg, t)
    if t < dim:
        h = float32(0.0)
        for c in range(n_ctx):
            h += w_in[contexts[c], t]
        v[0, t] = h / float32(n_ctx)
        for o in range(n_out):
            u[o, t] = w_out[outputs[o], t]
    cuda.syncthreads()
    if t < n_out:  # one thread per output row: its score from the rows as loaded
        f = float32(0.0)
        for k in range(dim):
            f += v[0, k] * u[t, k]
        pair_loss[t] = f
    cuda.syncthreads()
    extra = pair_loss.shape[0] - 1  # a slot past the outputs' (2 window x outputs > outputs)
    if t == 0:  # the gradients in the CPU's order: a repeated row's later scores see its earlier changes
        hh = float32(0.0)
        for k in range(dim):
            hh += v[0, k] * v[0, k]
        cross = float32(0.0)
        for o in range(n_out):
            earlier = float32(0.0)
            for q in range(o):
                if outputs[q] == outputs[o]:
                    earlier += g[q]
            f = pair_loss[o] + earlier * hh
            label = float32(1.0) if o == 0 else float32(0.0)
            g[o], pair_loss[o] = _grad_loss(f, label, lr)
            cross += g[o] * earlier
        pair_loss[extra] = cross
    cuda.syncthreads()
    if t < dim:
        grad = pair_loss[extra] * v[0, t]
        for o in range(n_out):
            grad += g[o] * u[o, t]
            cuda.atomic.add(w_out, (outputs[o], t), g[o] * v[0, t])
        for c in range(n_ctx):
            cuda.atomic.add(w_in, (contexts[c], t), grad)
    total = float32(0.0)
    if t == 0:
        for o in range(n_out):
            total += pair_loss[o]
    cuda.syncthreads()
    return total


def window_kernel(dim: int, max_contexts: int, max_outputs: int):
    """The kernel for vectors of dim floats, windows of up to max_contexts context words and
    max_outputs output rows (the center and its negatives), compiled for those sizes (shared arrays
    have sizes fixed at compile time). Launch it as kernel[n_windows, threads](...), threads >=
    max(dim, max_contexts * max_outputs), with
        w_in, w_out : float32[V, d] on the device (updated in place);
        centers : int32[n]; ctx_bounds : int64[n + 1], window b's contexts ctx_ids[ctx_bounds[b]:
        ctx_bounds[b + 1]]; negatives : int32[n, k]; lr : float32; loss : float32[n], each window's
        summed pair loss (written).
    """
    pairs = max_contexts * max_outputs

    @cuda.jit
    def train_windows(w_in, w_out, centers, ctx_bounds, ctx_ids, negatives, lr, loss):
        v = cuda.shared.array((max_contexts, dim), float32)
        u = cuda.shared.array((max_outputs, dim), float32)
        g = cuda.shared.array(pairs, float32)
        pair_loss = cuda.shared.array(pairs, float32)
        outputs = cuda.shared.array(max_outputs, np.int32)
        contexts = cuda.shared.array(max_contexts, np.int32)
        negs = cuda.shared.array(max_outputs, np.int32)
        b = cuda.blockIdx.x
        t = cuda.threadIdx.x
        first = ctx_bounds[b]
        n_ctx = ctx_bounds[b + 1] - first
        if t == 0:
            for c in range(n_ctx):
                contexts[c] = ctx_ids[first + c]
            for q in range(negatives.shape[1]):
                negs[q] = negatives[b, q]
        cuda.syncthreads()
        total = _window_step(w_in, w_out, v, u, g, pair_loss, outputs, contexts, n_ctx, negs, negatives.shape[1],
                             centers[b], lr, t)
        if t == 0:
            loss[b] = total

    return train_windows


def sentence_kernel(dim: int, window: int, negative: int, cbow: bool = False):
    """Skip-gram by HogBatch windows (or, with cbow, CBOW's) with the sampling on the device: block b trains sentences
    b, b + blocks, ... of a piece of the corpus, each as a CPU thread does (models/word2vec_loops):
    subsampled, then every kept word's reduced window and its negative shared by the window, drawn
    by the block's xorshift64* state in the CPU kernel's order, so one block trains what one CPU
    thread trains from the same state (to float rounding: the sums run in another order).

    Only the draws are sequential (thread 0 steps the generator: a few ALU operations a draw); what
    they index is looked up by many threads at once, so no thread waits on a chain of global loads:
    a sentence is subsampled a block's width at a time (its ids and keep probabilities read in
    parallel, then kept in order), a window's contexts are gathered one thread each, and its
    negatives' alias-table lookups run one thread a negative.

    Launch as kernel[blocks, threads_per_block(dim, 2 window, negative + 1)] (exactly: a chunk is that many words) with
        w_in, w_out : float32[V, d]; ids : int32[]; sent_starts : int64[S + 1]; sentences : int64[n],
        the sentences to train, in order; keep_prob : float32[V]; noise_prob, noise_alias : the alias
        table; windows : int64[2] (window, shrink); rng : uint64[blocks]; sched : float64[3] (start
        rate, end rate, words of the whole run); counters : int64[1], the words done by all blocks
        (published every PROGRESS_EVERY words, when each block also reads the rate again);
        buffers : int32[blocks, longest sentence]; out : float64[blocks, 2], each block's loss and
        examples (added to).
    """
    max_ctx, max_out = 2 * window, negative + 1
    pairs = max_ctx * max_out
    width = threads_per_block(dim, max_ctx, max_out)  # the launch's threads, exactly: a subsampling chunk's words
    if width < max(max_ctx + 1, negative):  # a thread per window position and per negative
        raise ValueError(f"a block of {width} threads cannot gather a window of {max_ctx + 1} or {negative} negatives")
    step = _cbow_step if cbow else _window_step  # one counts an example per window, the other per pair
    per_pair = not cbow

    @cuda.jit
    def train_sentences(w_in, w_out, ids, sent_starts, sentences, keep_prob, noise_prob, noise_alias, windows, rng,
                        sched, counters, buffers, out):
        v = cuda.shared.array((max_ctx, dim), float32)
        u = cuda.shared.array((max_out, dim), float32)
        g = cuda.shared.array(pairs, float32)
        pair_loss = cuda.shared.array(pairs, float32)
        outputs = cuda.shared.array(max_out, np.int32)
        contexts = cuda.shared.array(max_ctx, np.int32)
        negs = cuda.shared.array(max_out, np.int32)
        draws = cuda.shared.array(width, np.uint64)  # a chunk's subsampling draws, or a window's negatives'
        kept = cuda.shared.array(width, np.int32)  # a chunk's words, -1 where subsampling drops them
        info = cuda.shared.array(3, np.int64)  # kept words of the sentence, the window's reach
        rate = cuda.shared.array(1, float32)
        b = cuda.blockIdx.x
        t = cuda.threadIdx.x
        sent = buffers[b]
        n_noise = noise_prob.shape[0]
        unpublished = 0
        if t == 0:
            rate[0] = max(sched[0] - (sched[0] - sched[1]) * (counters[0] / sched[2]), sched[1])
        for q in range(b, sentences.shape[0], cuda.gridDim.x):
            if t == 0:  # every thread read the last sentence's count before the barrier that ended it
                info[0] = 0
            cuda.syncthreads()
            s = sentences[q]
            first, last = sent_starts[s], sent_starts[s + 1]
            for chunk in range(first, last, width):  # subsampling, as sampling._subsample
                m = min(width, last - chunk)
                if t == 0:
                    r = rng[b]
                    for p in range(m):
                        r = _next(r)
                        draws[p] = r * _MULT
                    rng[b] = r
                cuda.syncthreads()
                if t < m:
                    word = ids[chunk + t]
                    kept[t] = word if _unit(draws[t]) < keep_prob[word] else -1
                cuda.syncthreads()
                if t == 0:
                    n = info[0]
                    for p in range(m):
                        if kept[p] >= 0:
                            sent[n] = kept[p]
                            n += 1
                    info[0] = n
                cuda.syncthreads()
            n = info[0]
            for i in range(n):
                if t == 0:  # the reduced window; the negatives' draws (sampling._draw_window)
                    r = _next(rng[b])
                    reach = windows[0] - _bounded(r * _MULT, windows[1])
                    lo, hi = max(0, i - reach), min(n, i + reach + 1)
                    info[1], info[2] = lo, hi
                    if hi - lo > 1:
                        for k in range(negative):
                            r = _next(r)
                            draws[k] = r * _MULT
                    rng[b] = r
                cuda.syncthreads()
                lo, hi = info[1], info[2]
                n_ctx = hi - lo - 1
                if t < hi - lo and lo + t != i:  # one thread a context, in the window's order
                    contexts[t if lo + t < i else t - 1] = sent[lo + t]
                if n_ctx > 0 and t < negative:  # one thread a negative: its alias-table lookup
                    x = draws[t]
                    j = _bounded(x, n_noise)
                    negs[t] = j if _unit(x) < noise_prob[j] else noise_alias[j]
                cuda.syncthreads()
                if n_ctx > 0:
                    loss = step(w_in, w_out, v, u, g, pair_loss, outputs, contexts, n_ctx, negs, negative, sent[i],
                                rate[0], t)
                    if t == 0:
                        out[b, 0] += loss
                        out[b, 1] += n_ctx if per_pair else 1
                cuda.syncthreads()
            if t == 0:  # the rate follows every block's progress, read at each of this block's ticks
                unpublished += last - first
                if unpublished >= PROGRESS_EVERY:  # the atomic's own value: a plain load may be a stale L1 line
                    done = cuda.atomic.add(counters, 0, unpublished) + unpublished
                    unpublished = 0
                    rate[0] = max(sched[0] - (sched[0] - sched[1]) * (done / sched[2]), sched[1])
            cuda.syncthreads()
        if t == 0 and unpublished > 0:
            cuda.atomic.add(counters, 0, unpublished)

    return train_sentences


def threads_per_block(dim: int, max_contexts: int, max_outputs: int) -> int:
    """Threads a block needs: one per dimension and one per (context, output) pair, in whole warps."""
    need = max(dim, max_contexts * max_outputs)
    return (need + 31) // 32 * 32


def shared_bytes(dim: int, max_contexts: int, max_outputs: int) -> int:
    """The static shared memory of a sentence_kernel block: the rows (v, u), the pairs' gradients
    and losses, the output, context and negative ids, a subsampling chunk's draws and words, the
    sentence's counts and the rate (ptxas's figure, to the byte, at sm_90)."""
    pairs = max_contexts * max_outputs
    width = threads_per_block(dim, max_contexts, max_outputs)
    floats = 4 * dim * (max_contexts + max_outputs) + 8 * pairs + 4 * (2 * max_outputs + max_contexts)
    return -(-floats // 8) * 8 + 12 * width + 24 + 4  # the uint64 draws aligned to 8
