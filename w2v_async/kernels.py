"""Every numba kernel of w2v-async: the SGNS / CBOW updates, their epoch loops, RNG and noise tables.

All kernels are nogil, float32, and take their scratch buffers from the caller.
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

# word2vec.c: sigmoid tabulated on [-MAX_EXP, MAX_EXP]; outside it the gradient saturates.
EXP_TABLE_SIZE = 1000
MAX_EXP = 6.0
_TABLE_SCALE = EXP_TABLE_SIZE / MAX_EXP / 2.0
_x = (np.arange(EXP_TABLE_SIZE, dtype=np.float64) / EXP_TABLE_SIZE * 2.0 - 1.0) * MAX_EXP
SIGMOID_TABLE = (1.0 / (1.0 + np.exp(-_x))).astype(np.float32)
LOG_SIGMOID_TABLE = (-np.log1p(np.exp(-_x))).astype(np.float32)
del _x

PROGRESS_EVERY = 10_000  # words between learning-rate updates and stop checks (word2vec.c)
GLOVE_PROGRESS_EVERY = 1 << 16  # entries between GloVe's stop and divergence checks
# uses of a hot row by all threads together that a private copy may lag behind (merge_hot_row), at
# the model's default --alpha. Measured on 16 cores, registry corpus, 16 threads, epoch-1 loss: 32
# (K = 2) costs 1.3-1.6% against no copies in every mode; 64 (K = 4) costs 3% in pair and CBOW and
# 27% in HogBatch skip-gram, whose output rows take every context's gradient at once.
HOT_ROW_STALENESS = 32

# counters[0], read by every kernel at each progress tick: anything but RUN makes it return early
RUN, STOP, PAUSE, DIVERGED = 0, 1, 2, 3

_U8 = np.uint64(8)
_U12 = np.uint64(12)
_U25 = np.uint64(25)
_U27 = np.uint64(27)
_U32 = np.uint64(32)
_U24_MASK = np.uint64(0xFFFFFF)
_XORSHIFT_MULT = np.uint64(0x2545F4914F6CDD1D)
_INV_2_24 = np.float32(1.0 / (1 << 24))

F4_2D = types.float32[:, ::1]
F4_1D = types.float32[::1]
I4_1D = types.int32[::1]
CORPUS = types.Tuple((types.int32[::1], types.int64[::1], types.int64[::1]))  # ids, sent_starts, sentences
TABLES = types.Tuple((types.float32[::1], types.float32[::1], types.int32[::1]))  # keep, noise prob, alias
# A thread's private hot rows (see merge_hot_row): (H, offset, uses between merges K), uses of each
# row since its last merge (w_in's H, then w_out's H), and w_in's and w_out's hot rows as of that merge
HOT = types.Tuple((types.int64[::1], I4_1D, F4_2D, F4_2D))
# Per-thread scratch: sentence, negatives, hot rows, then the model's own; its type selects the model
# inside the shared epoch loop.
SGNS_SCRATCH = types.Tuple((I4_1D, I4_1D, HOT, F4_1D))  # ..., grad
CBOW_SCRATCH = types.Tuple((I4_1D, I4_1D, HOT, F4_1D, I4_1D, F4_1D))  # ..., grad, contexts, neu1
# skip-gram with one negative set per window (HogBatch): ..., contexts, deltas, grads
SGNS_WINDOW_SCRATCH = types.Tuple((I4_1D, I4_1D, HOT, I4_1D, F4_2D, F4_2D))


def _epoch_sig(scratch):
    return types.Tuple((types.float64, types.int64, types.int64, types.int64))(
        F4_2D, F4_2D, CORPUS, TABLES, types.float64[::1], types.uint64[::1], types.int64[::1], types.int64,
        types.int64, scratch,
    )


# every fast-math flag except nnan / ninf: those would let LLVM fold away the divergence checks
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
KERNEL_OPTS = dict(nogil=True, fastmath=FASTMATH, cache=True, error_model="numpy", boundscheck=False)


@intrinsic
def prefetch_row(typingctx, matrix, row):
    """Ask the CPU to bring every cache line of matrix[row] (2-D, C order) into cache.

    A hint only: no effect on results. The rows of the next word's negatives are fetched while
    the current word trains, hiding the memory latency that dominates SGNS on large vocabularies.
    """
    sig = types.void(matrix, row)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        row_idx = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary, [row_idx, zero])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0"
        )
        base = builder.bitcast(ptr, i8p)
        row_bytes = cgutils.unpack_tuple(builder, ary.strides, 2)[0]
        line = context.get_constant(types.intp, 64)
        with cgutils.for_range_slice(builder, zero, row_bytes, line) as (offset, _):
            builder.call(fn, [builder.gep(base, [offset]), i32(0), i32(3), i32(1)])
        last = builder.sub(row_bytes, context.get_constant(types.intp, 1))
        builder.call(fn, [builder.gep(base, [last]), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(types.uint64(types.uint64), **KERNEL_OPTS)
def xorshift_next(x):
    """xorshift64* (Vigna 2016): the next state; the caller multiplies for output."""
    x ^= x >> _U12
    x ^= x << _U25
    x ^= x >> _U27
    return x


@njit(types.int64(types.uint64, types.uint64), **KERNEL_OPTS)
def bounded(r, n):
    """Map the high 32 bits of r onto [0, n) by multiply-shift (no modulo)."""
    return types.int64(((r >> _U32) * n) >> _U32)


@njit(types.float32(types.uint64), **KERNEL_OPTS)
def unit_float(r):
    """24 middle bits of r as a float32 in [0, 1)."""
    return types.float32((r >> _U8) & _U24_MASK) * _INV_2_24


@njit(types.Tuple((types.float32[::1], types.int32[::1]))(types.float64[::1]), cache=True)
def build_alias_table(p):
    """Vose's alias method for drawing from p (float64[V], sums to 1) in O(1).

    Returns prob : float32[V], alias : int32[V]; draw j uniform, keep j with prob[j] else alias[j].
    """
    n = p.shape[0]
    scaled = p * n
    prob = np.ones(n, np.float32)
    alias = np.arange(n).astype(np.int32)
    small = np.empty(n, np.int64)  # stacks of indices with scaled < 1 and >= 1
    large = np.empty(n, np.int64)
    is_small = scaled < 1.0
    n_small = np.count_nonzero(is_small)
    n_large = n - n_small
    small[:n_small] = np.nonzero(is_small)[0]
    large[:n_large] = np.nonzero(~is_small)[0]
    while n_small > 0 and n_large > 0:
        n_small -= 1
        s = small[n_small]
        n_large -= 1
        g = large[n_large]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        if scaled[g] < 1.0:
            small[n_small] = g
            n_small += 1
        else:
            large[n_large] = g
            n_large += 1
    return prob, alias


@njit(**KERNEL_OPTS)
def _sigmoid_grad_loss(f, label, lr):
    """g = (label - sigmoid(f)) * lr (word2vec.c), and the loss -log sigmoid(+-f) of the pair.

    The loss of a positive pair is -log s(f); of a negative, -log s(-f) = f - log s(f).
    """
    if f > MAX_EXP:
        return (label - np.float32(1.0)) * lr, (np.float32(1.0) - label) * f
    if f < -MAX_EXP:
        return label * lr, -label * f
    idx = min(max(int((f + MAX_EXP) * _TABLE_SCALE), 0), EXP_TABLE_SIZE - 1)  # f = nan lands in range
    log_sig = LOG_SIGMOID_TABLE[idx]
    return (label - SIGMOID_TABLE[idx]) * lr, (np.float32(1.0) - label) * f - log_sig


@njit(types.float32(F4_2D, F4_1D, types.int64, I4_1D, types.float32, F4_1D), **KERNEL_OPTS)
def _negative_sampling(w_out, h, center, negatives, lr, grad_buf):
    """Shared output step of SGNS and CBOW for hidden vector h (float32[d]).

    Updates w_out rows of center (label 1) and negatives (label 0, skipped when equal to center)
    in place, accumulates dLoss/dh * -lr into grad_buf, and returns the loss.
    """
    dim = h.shape[0]
    loss = np.float32(0.0)
    for k in range(dim):
        grad_buf[k] = np.float32(0.0)
    for n in range(negatives.shape[0] + 1):
        if n == 0:
            target = center
            label = np.float32(1.0)
        else:
            target = negatives[n - 1]
            if target == center:
                continue
            label = np.float32(0.0)
        u = w_out[target]
        f = np.float32(0.0)
        for k in range(dim):
            f += h[k] * u[k]
        g, pair_loss = _sigmoid_grad_loss(f, label, lr)
        loss += pair_loss
        for k in range(dim):  # word2vec.c: neu1e += g * syn1neg; syn1neg += g * syn0 (old syn1neg)
            u_k = u[k]
            grad_buf[k] += g * u_k
            u[k] = u_k + g * h[k]
    return loss


@njit(types.float32(F4_2D, F4_2D, types.int64, types.int64, I4_1D, types.float32, F4_1D), **KERNEL_OPTS)
def sgns_update(w_in, w_out, center, context, negatives, lr, grad_buf):
    """One skip-gram negative-sampling step: w_in[context] predicts center against negatives.

    w_in, w_out : float32[V, d], updated in place; negatives : int32[k]; grad_buf : float32[d] scratch.
    Returns the loss -log s(v.u_c) - sum_n log s(-v.u_n) before the update.
    """
    v = w_in[context]
    loss = _negative_sampling(w_out, v, center, negatives, lr, grad_buf)
    for k in range(v.shape[0]):
        v[k] += grad_buf[k]
    return loss


@njit(types.float32(F4_2D, F4_2D, types.int64, I4_1D, I4_1D, types.float32, F4_1D, F4_1D), **KERNEL_OPTS)
def cbow_update(w_in, w_out, center, contexts, negatives, lr, grad_buf, neu1):
    """One CBOW step: the mean of w_in[contexts] predicts center against negatives.

    contexts : int32[c], c >= 1; neu1, grad_buf : float32[d] scratch. As word2vec.c, every context
    row receives the full (undivided) gradient. Returns the loss before the update.
    """
    dim = neu1.shape[0]
    for k in range(dim):
        neu1[k] = np.float32(0.0)
    for j in range(contexts.shape[0]):
        row = w_in[contexts[j]]
        for k in range(dim):
            neu1[k] += row[k]
    inv = np.float32(1.0) / np.float32(contexts.shape[0])
    for k in range(dim):
        neu1[k] *= inv
    loss = _negative_sampling(w_out, neu1, center, negatives, lr, grad_buf)
    for j in range(contexts.shape[0]):
        row = w_in[contexts[j]]
        for k in range(dim):
            row[k] += grad_buf[k]
    return loss


@njit(inline="always", **KERNEL_OPTS)
def _dots3(v, u0, u1, u2):
    """v . u0, v . u1, v . u2 in one pass over the columns (v is read once, not three times)."""
    f0 = np.float32(0.0)
    f1 = np.float32(0.0)
    f2 = np.float32(0.0)
    for k in range(v.shape[0]):
        x = v[k]
        f0 += x * u0[k]
        f1 += x * u1[k]
        f2 += x * u2[k]
    return f0, f1, f2


@njit(inline="always", **KERNEL_OPTS)
def _dot(v, u):
    f = np.float32(0.0)
    for k in range(v.shape[0]):
        f += v[k] * u[k]
    return f


@njit(inline="always", **KERNEL_OPTS)
def _add3(y, g0, x0, g1, x1, g2, x2):
    """y += g0 x0 + g1 x1 + g2 x2 in one pass (y is loaded and stored once, not three times)."""
    for k in range(y.shape[0]):
        y[k] += g0 * x0[k] + g1 * x1[k] + g2 * x2[k]


@njit(inline="always", **KERNEL_OPTS)
def _add1(y, g, x):
    for k in range(y.shape[0]):
        y[k] += g * x[k]


@njit(types.float32(F4_2D, F4_2D, types.int64, I4_1D, I4_1D, types.float32, F4_2D, F4_2D), **KERNEL_OPTS)
def sgns_window_update(w_in, w_out, center, contexts, negatives, lr, deltas, grads):
    """One HogBatch skip-gram step (Ji et al. 2016): a whole window against one set of negatives.

    Every context row v_c = w_in[contexts[c]] predicts center (label 1) and each negative
    (label 0; negatives equal to center are dropped), all at the parameters as they were before
    the step: a minibatch gradient step on
        sum_c [-log s(v_c . u_center) - sum_n log s(-v_c . u_n)].
    With G[c, o] = (label_o - s(v_c . u_o)) lr: v_c += sum_o G[c, o] u_o and
    u_o += sum_c G[c, o] v_c. Each output row is read and written once per window instead of once
    per (context, center) pair, and the products run three rows per pass.
    negatives is compacted in place; deltas : float32[>= c, d] and grads : float32[>= c, k + 1]
    are scratch. Returns the summed loss of the pairs before the update.
    """
    n_in = contexts.shape[0]
    n_out = 1  # targets: center, then the negatives that differ from it
    for q in range(negatives.shape[0]):
        if negatives[q] != center:
            negatives[n_out - 1] = negatives[q]
            n_out += 1
    loss = np.float32(0.0)
    for c in range(n_in):  # scores, then G
        v = w_in[contexts[c]]
        o = 0
        while o + 3 <= n_out:
            f0, f1, f2 = _dots3(v, w_out[center if o == 0 else negatives[o - 1]],
                                w_out[negatives[o]], w_out[negatives[o + 1]])
            grads[c, o] = f0
            grads[c, o + 1] = f1
            grads[c, o + 2] = f2
            o += 3
        while o < n_out:
            grads[c, o] = _dot(v, w_out[center if o == 0 else negatives[o - 1]])
            o += 1
        for o in range(n_out):
            g, pair_loss = _sigmoid_grad_loss(grads[c, o], np.float32(1.0) if o == 0 else np.float32(0.0), lr)
            grads[c, o] = g
            loss += pair_loss
    for c in range(n_in):  # input deltas from the old output rows
        delta = deltas[c]
        delta[:] = np.float32(0.0)
        o = 0
        while o + 3 <= n_out:
            _add3(delta, grads[c, o], w_out[center if o == 0 else negatives[o - 1]],
                  grads[c, o + 1], w_out[negatives[o]],
                  grads[c, o + 2], w_out[negatives[o + 1]])
            o += 3
        while o < n_out:
            _add1(delta, grads[c, o], w_out[center if o == 0 else negatives[o - 1]])
            o += 1
    for o in range(n_out):  # output rows from the old input rows
        u = w_out[center if o == 0 else negatives[o - 1]]
        c = 0
        while c + 3 <= n_in:
            _add3(u, grads[c, o], w_in[contexts[c]], grads[c + 1, o], w_in[contexts[c + 1]],
                  grads[c + 2, o], w_in[contexts[c + 2]])
            c += 3
        while c < n_in:
            _add1(u, grads[c, o], w_in[contexts[c]])
            c += 1
    for c in range(n_in):
        _add1(w_in[contexts[c]], np.float32(1.0), deltas[c])
    return loss


@njit(types.void(F4_2D, types.int64, types.int64, F4_2D), **KERNEL_OPTS)
def merge_hot_row(matrix, w, offset, base):
    """Add a thread's change to its private copy of hot row w into the shared row, and restart from it.

    matrix[offset + w] is the thread's copy of row w < H = base.shape[0]; base[w] is what the copy
    held after its last merge, so each change is added once (no lock: a Hogwild write):
    matrix[w] += matrix[offset + w] - base[w]; base[w] = matrix[offset + w] = matrix[w].

    Why the sum stays stable at any thread count T: a change is computed against the shared row as
    of the last merge, so it misses the other threads' changes made since (its staleness). Merging
    a row after every K of this thread's uses of it (K = HOT_ROW_STALENESS // T, less with a larger
    --alpha: trainer.hot_row_merge_every; see _touch_hot_rows) bounds that staleness to about T K <= HOT_ROW_STALENESS uses of the row,
    whatever T is: a bounded delay, as in lock-free Hogwild. Merging on a timer instead (every
    10,000 words) let the hottest rows take hundreds of uses in each of T threads against one
    stale value; each copy moved most of the way to its optimum, so the T changes added together
    overshot it about T-fold, and training diverged from 6 threads on.
    """
    shared = matrix[w]
    mine = matrix[offset + w]
    b = base[w]
    for k in range(shared.shape[0]):
        shared[k] += mine[k] - b[k]
        b[k] = shared[k]
        mine[k] = b[k]


@njit(types.void(F4_2D, types.int64, F4_2D), **KERNEL_OPTS)
def merge_hot_rows(matrix, offset, base):
    """merge_hot_row for every hot row w < base.shape[0] (at ticks, pauses and the end of a chunk)."""
    for w in range(base.shape[0]):
        merge_hot_row(matrix, w, offset, base)


@njit(types.void(F4_2D, I4_1D, types.int64[::1], I4_1D, F4_2D), **KERNEL_OPTS)
def _touch_hot_rows(matrix, ids, info, uses, base):
    """Count one use of each private hot row among ids (rows offset + w); merge a row every K uses.

    info = (H, offset, K); uses : int32[H], this matrix's uses of each hot row since its merge.
    """
    n_hot, offset, every = info[0], info[1], info[2]
    for q in range(ids.shape[0]):
        w = ids[q] - offset
        if 0 <= w < n_hot:
            uses[w] += 1
            if uses[w] >= every:
                merge_hot_row(matrix, w, offset, base)
                uses[w] = 0


@njit(**KERNEL_OPTS)
def _draw_negatives(r, noise_prob, noise_alias, negatives, n_hot, offset):
    """Fill negatives from the alias table (ids w < n_hot become w + offset); returns the RNG state."""
    n_noise = np.uint64(noise_prob.shape[0])
    for i in range(negatives.shape[0]):
        r = xorshift_next(r)
        out = r * _XORSHIFT_MULT
        j = bounded(out, n_noise)
        w = j if unit_float(out) < noise_prob[j] else noise_alias[j]
        negatives[i] = w + offset if w < n_hot else w
    return r


@njit(**KERNEL_OPTS)
def _draw_window(r, i, n, window, tables, negatives, per_context, per_word, remap):
    """Draw word i's reduced window (of a sentence of n words) and its negatives into negatives.

    remap = (H, offset): negatives w < H are written as w + offset. Returns (rng state, reach,
    number of negatives drawn).
    """
    _, noise_prob, noise_alias = tables
    r = xorshift_next(r)
    reach = window - bounded(r * _XORSHIFT_MULT, np.uint64(window))  # reduced window in [1, window]
    n_ctx = min(n, i + reach + 1) - max(0, i - reach) - 1
    m = n_ctx * per_context + (per_word if n_ctx > 0 else 0)
    r = _draw_negatives(r, noise_prob, noise_alias, negatives[:m], remap[0], remap[1])
    return r, reach, m


@njit(**KERNEL_OPTS)
def _prepare_word(r, i, n, window, tables, w_in, w_out, sent_buf, negatives, per_context, per_word, hot):
    """Draw word i's reduced window and its negatives, and prefetch the rows they will touch.

    negatives receives per_context ids for each context word plus per_word ids (skip-gram draws
    per pair, CBOW per word); hot negatives are the thread's private rows (HOT tuple hot), and
    count as uses of them. Returns (rng state, reach).
    """
    info, uses = hot[0], hot[1]
    n_hot = info[0]
    r, reach, m = _draw_window(r, i, n, window, tables, negatives, per_context, per_word, (n_hot, info[1]))
    _touch_hot_rows(w_out, negatives[:m], info, uses[n_hot:], hot[3])
    prefetch_row(w_out, sent_buf[i])
    for q in range(m):
        prefetch_row(w_out, negatives[q])
    if i + reach < n:
        prefetch_row(w_in, sent_buf[i + reach])
    return r, reach


@njit(**KERNEL_OPTS)
def _subsample(r, ids, start, end, keep_prob, sent_buf, n_hot, offset):
    """Copy ids[start:end] into sent_buf, keeping word w with probability keep_prob[w].

    Ids w < n_hot are written as w + offset: the thread's private copies of the hot rows.
    """
    n = 0
    for p in range(start, end):
        w = ids[p]
        r = xorshift_next(r)
        if unit_float(r * _XORSHIFT_MULT) < keep_prob[w]:
            sent_buf[n] = w + offset if w < n_hot else w
            n += 1
    return r, n


@njit(**KERNEL_OPTS)
def learning_rate(sched, counters):
    """Linear decay from sched[0] to sched[1] by the words done by all threads / sched[2]."""
    done = 0
    for t in range(1, counters.shape[0]):
        done += counters[t]
    lr = sched[0] - (sched[0] - sched[1]) * (done / sched[2])
    return np.float32(max(lr, sched[1]))


@njit(**KERNEL_OPTS)
def _sgns_word(w_in, w_out, sent_buf, i, reach, n, negatives, k, lr, scratch):
    """Skip-gram for center word i: every context word in reach predicts it (word2vec.c order)."""
    grad_buf = scratch[3]
    center = sent_buf[i]
    loss = np.float32(0.0)
    q = 0
    for j in range(max(0, i - reach), min(n, i + reach + 1)):
        if j == i:
            continue
        loss += sgns_update(w_in, w_out, center, sent_buf[j], negatives[q : q + k], lr, grad_buf)
        q += k
    return loss, q // k


@njit(**KERNEL_OPTS)
def _window_contexts(sent_buf, i, reach, n, contexts):
    """Copy the words within reach of position i (not i itself) into contexts; returns how many."""
    n_ctx = 0
    for j in range(max(0, i - reach), min(n, i + reach + 1)):
        if j != i:
            contexts[n_ctx] = sent_buf[j]
            n_ctx += 1
    return n_ctx


@njit(**KERNEL_OPTS)
def _cbow_word(w_in, w_out, sent_buf, i, reach, n, negatives, k, lr, scratch):
    """CBOW for center word i: the mean of the context words in reach predicts it."""
    grad_buf, contexts, neu1 = scratch[3], scratch[4], scratch[5]
    n_ctx = _window_contexts(sent_buf, i, reach, n, contexts)
    if n_ctx == 0:
        return np.float32(0.0), 0
    return cbow_update(w_in, w_out, sent_buf[i], contexts[:n_ctx], negatives[:k], lr, grad_buf, neu1), 1


@njit(**KERNEL_OPTS)
def _sgns_window_word(w_in, w_out, sent_buf, i, reach, n, negatives, k, lr, scratch):
    """Skip-gram for center word i as one HogBatch step: its whole window shares k negatives."""
    contexts, deltas, grads = scratch[3], scratch[4], scratch[5]
    n_ctx = _window_contexts(sent_buf, i, reach, n, contexts)
    if n_ctx == 0:
        return np.float32(0.0), 0
    return sgns_window_update(w_in, w_out, sent_buf[i], contexts[:n_ctx], negatives[:k], lr, deltas, grads), n_ctx


def _train_word(w_in, w_out, sent_buf, i, reach, n, negatives, k, lr, scratch):
    """Train center word i with the model that the scratch tuple belongs to (resolved at compile time)."""


@overload(_train_word, jit_options=KERNEL_OPTS)
def _train_word_for_scratch(w_in, w_out, sent_buf, i, reach, n, negatives, k, lr, scratch):
    if scratch == SGNS_SCRATCH:
        return _sgns_word.py_func
    return (_sgns_window_word if scratch == SGNS_WINDOW_SCRATCH else _cbow_word).py_func


def _negatives_per_context(scratch):
    """word2vec.c skip-gram draws negatives for every (center, context) pair; CBOW and HogBatch
    skip-gram once per center word."""


@overload(_negatives_per_context, jit_options=KERNEL_OPTS)
def _negatives_per_context_for_scratch(scratch):
    per_pair = scratch == SGNS_SCRATCH
    return lambda scratch: per_pair


@njit(**KERNEL_OPTS)
def _sync_hot_rows(w_in, w_out, hot):
    """Merge every private hot row of this thread (HOT tuple hot) into the shared matrices."""
    offset = hot[0][1]
    merge_hot_rows(w_in, offset, hot[2])
    merge_hot_rows(w_out, offset, hot[3])


@njit(**KERNEL_OPTS)
def _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, window, scratch):
    """The epoch loop shared by skip-gram and CBOW (see train_sgns_epoch)."""
    ids, sent_starts, sentences = corpus
    keep_prob = tables[0]
    sent_buf, negatives = scratch[0], scratch[1]
    half = negatives.shape[0] // 2
    neg_cur, neg_next = negatives[:half], negatives[half:]
    k = half // (2 * window)
    per_context, per_word = (k, 0) if _negatives_per_context(scratch) else (0, k)
    r = rng_state[0]
    slot = 1 + thread_idx
    words_done = counters[slot]
    first_word = words_done
    last_report = words_done
    lr = learning_rate(sched, counters)
    loss = 0.0
    n_examples = 0
    hot = scratch[2]
    info, uses = hot[0], hot[1]
    n_hot, offset = info[0], info[1]
    _sync_hot_rows(w_in, w_out, hot)
    n_sentences = 0
    for s in sentences:
        if words_done - last_report >= PROGRESS_EVERY:
            counters[slot] = words_done
            last_report = words_done
            _sync_hot_rows(w_in, w_out, hot)
            if not np.isfinite(loss):
                counters[0] = DIVERGED
            if counters[0] != RUN:
                break
            lr = learning_rate(sched, counters)
        n_sentences += 1
        start = sent_starts[s]
        end = sent_starts[s + 1]
        r, n = _subsample(r, ids, start, end, keep_prob, sent_buf, n_hot, offset)
        words_done += end - start
        if n == 0:
            continue
        _touch_hot_rows(w_in, sent_buf[:n], info, uses[:n_hot], hot[2])  # contexts
        _touch_hot_rows(w_out, sent_buf[:n], info, uses[n_hot:], hot[3])  # centers
        # two-stage pipeline: word i + 1's window and negatives are drawn, and its rows
        # prefetched, before word i trains
        r, reach = _prepare_word(r, 0, n, window, tables, w_in, w_out, sent_buf, neg_cur, per_context, per_word, hot)
        for i in range(n):
            next_reach = 0
            if i + 1 < n:
                r, next_reach = _prepare_word(
                    r, i + 1, n, window, tables, w_in, w_out, sent_buf, neg_next, per_context, per_word, hot
                )
            word_loss, n_word = _train_word(w_in, w_out, sent_buf, i, reach, n, neg_cur, k, lr, scratch)
            loss += word_loss
            n_examples += n_word
            neg_cur, neg_next = neg_next, neg_cur
            reach = next_reach
    _sync_hot_rows(w_in, w_out, hot)
    if not np.isfinite(loss):
        counters[0] = DIVERGED
    counters[slot] = words_done
    rng_state[0] = r
    return loss, n_examples, words_done - first_word, n_sentences


@njit(_epoch_sig(SGNS_SCRATCH), **KERNEL_OPTS)
def train_sgns_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, window, scratch):
    """One pass of one thread over its sentences with word2vec.c skip-gram semantics.

    w_in, w_out : float32[V + T H, d], shared, updated in place without locks; rows from V on
    hold each thread's private copies of the H most frequent words' rows.
    corpus : (ids int32[N], sent_starts int64[S+1], sentences int64[m]): trains the sentences
    ids[sent_starts[s]:sent_starts[s + 1]] for s in sentences, in that order.
    tables : (keep_prob float32[V], noise_prob float32[V], noise_alias int32[V]).
    sched : float64[3] = (alpha, min_alpha, words of the whole run, all epochs).
    rng_state : uint64[1], advanced. counters : int64[1 + n_threads] shared by all threads:
    (stop flag, words done by each thread). scratch : (sentence int32[L], negatives
    int32[4 window negative] (two words' worth), hot rows, grad float32[d]), where hot rows =
    (int64[3] (H, offset, K), uses int32[2 H], base_in, base_out float32[H, d]): the thread
    trains ids w < H in its rows offset + w and merges each into row w after every K uses, at
    the start, every PROGRESS_EVERY words and at the end (merge_hot_row); H = 0 for none.
    Every PROGRESS_EVERY words it publishes its word count, and returns early when counters[0]
    is not RUN (a pause, a stop, or a thread that saw its loss turn non-finite and set DIVERGED).
    Returns (loss sum, n pairs, n words read, n sentences trained): a caller resumes an early
    return by passing sentences[n sentences trained:].
    """
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, window, scratch)


@njit(_epoch_sig(CBOW_SCRATCH), **KERNEL_OPTS)
def train_cbow_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, window, scratch):
    """One pass of one thread over its sentences with word2vec.c CBOW semantics (mean of contexts).

    As train_sgns_epoch, with scratch (sentence, negatives, hot rows, grad float32[d],
    contexts int32[2 window], neu1 float32[d]). Returns (loss sum, n center
    words trained, n words read, n sentences trained).
    """
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, window, scratch)


@njit(_epoch_sig(SGNS_WINDOW_SCRATCH), **KERNEL_OPTS)
def train_sgns_window_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, window, scratch):
    """One pass of one thread over its sentences with HogBatch skip-gram (sgns_window_update).

    As train_sgns_epoch, with scratch (sentence, negatives, hot rows, contexts int32[2 window],
    deltas float32[2 window, d], grads float32[2 window, negative + 1]). Returns as
    train_sgns_epoch.
    """
    return _train_epoch(w_in, w_out, corpus, tables, sched, rng_state, counters, thread_idx, window, scratch)


# ---- Downpour batches (the Ray engine): windows and negatives drawn first, then trained on any matrices ----

# words (subsampled sentences, concatenated), sent_bounds, reach per word, neg_bounds per word, negatives
BATCH = types.Tuple((I4_1D, types.int64[::1], I4_1D, types.int64[::1], I4_1D))


@njit(types.UniTuple(types.int64, 4)(CORPUS, TABLES, types.uint64[::1], types.int64, types.int64, types.int64, BATCH),
      **KERNEL_OPTS)
def sample_batch(corpus, tables, rng_state, window, per_context, per_word, batch):
    """Draw everything a batch of sentences needs before any row is read: what _train_epoch draws.

    For each sentence of corpus (ids, sent_starts, sentences) the kept words, and for each kept
    word its reduced window and negatives, in _train_epoch's RNG order: with the same rng_state,
    train_*_batch on the result makes the same updates as train_*_epoch on those sentences (within
    one PROGRESS_EVERY stretch, where the learning rate is constant). batch receives them; its
    arrays must hold every word read (and per word 2 window per_context + per_word negatives).
    rng_state : uint64[1], advanced. Returns (sentences, words, negatives kept, words read).
    """
    ids, sent_starts, sentences = corpus
    words, sent_bounds, reach, neg_bounds, negatives = batch
    no_hot = (np.int64(0), np.int64(0))
    r = rng_state[0]
    n_sent = 0
    n_words = 0
    n_negs = 0
    words_read = 0
    sent_bounds[0] = 0
    neg_bounds[0] = 0
    for s in sentences:
        start = sent_starts[s]
        end = sent_starts[s + 1]
        words_read += end - start
        r, n = _subsample(r, ids, start, end, tables[0], words[n_words:], 0, 0)
        if n == 0:
            continue
        for i in range(n):
            r, reach_i, m = _draw_window(r, i, n, window, tables, negatives[n_negs:], per_context, per_word, no_hot)
            reach[n_words + i] = reach_i
            n_negs += m
            neg_bounds[n_words + i + 1] = n_negs
        n_words += n
        n_sent += 1
        sent_bounds[n_sent] = n_words
    rng_state[0] = r
    return n_sent, n_words, n_negs, words_read


@njit(**KERNEL_OPTS)
def _train_batch(w_in, w_out, batch, n_sent, k, lr, scratch):
    words, sent_bounds, reach, neg_bounds, negatives = batch
    loss = 0.0
    n_examples = 0
    for s in range(n_sent):
        a = sent_bounds[s]
        n = sent_bounds[s + 1] - a
        sent = words[a : a + n]
        for i in range(n):
            negs = negatives[neg_bounds[a + i] : neg_bounds[a + i + 1]]
            word_loss, n_word = _train_word(w_in, w_out, sent, i, reach[a + i], n, negs, k, lr, scratch)
            loss += word_loss
            n_examples += n_word
    return loss, n_examples


def _batch_sig(scratch):
    return types.Tuple((types.float64, types.int64))(F4_2D, F4_2D, BATCH, types.int64, types.int64, types.float32,
                                                     scratch)


@njit(_batch_sig(SGNS_SCRATCH), **KERNEL_OPTS)
def train_sgns_batch(w_in, w_out, batch, n_sent, k, lr, scratch):
    """Train the first n_sent sentences of a sample_batch batch with word2vec.c skip-gram updates.

    Word ids index w_in and w_out directly: the full matrices, or a compact copy of the rows the
    batch touches with its ids remapped. k negatives per pair; lr constant. Returns (loss sum,
    examples).
    """
    return _train_batch(w_in, w_out, batch, n_sent, k, lr, scratch)


@njit(_batch_sig(CBOW_SCRATCH), **KERNEL_OPTS)
def train_cbow_batch(w_in, w_out, batch, n_sent, k, lr, scratch):
    """As train_sgns_batch, with CBOW updates (k negatives per center word)."""
    return _train_batch(w_in, w_out, batch, n_sent, k, lr, scratch)


@njit(_batch_sig(SGNS_WINDOW_SCRATCH), **KERNEL_OPTS)
def train_sgns_window_batch(w_in, w_out, batch, n_sent, k, lr, scratch):
    """As train_sgns_batch, with HogBatch window updates (k negatives per center word; no hot rows)."""
    return _train_batch(w_in, w_out, batch, n_sent, k, lr, scratch)


# ---- GloVe co-occurrence counting (Stanford cooccur semantics) ----

COOC_SIG = types.Tuple((types.int64, types.int64))(CORPUS, types.int64, types.int64, types.int64,
                                                     types.int64[::1], types.float32[::1])


@njit(COOC_SIG, **KERNEL_OPTS)
def fill_cooccurrences(corpus, first, window, n_words, keys, values):
    """Emit left-context pairs of sentences[first:] into keys/values until the next one would overflow.

    For every word w at position p and each earlier word c at distance d <= window in the same
    sentence: key = w * n_words + c, value = 1 / d (Stanford's cooccur weighting). Returns
    (index into sentences of the first sentence not emitted, entries filled). The caller makes
    keys hold at least window * longest sentence entries.
    """
    ids, sent_starts, sentences = corpus
    capacity = keys.shape[0]
    n = 0
    for q in range(first, sentences.shape[0]):
        s = sentences[q]
        start = sent_starts[s]
        end = sent_starts[s + 1]
        if n + (end - start) * window > capacity:
            return q, n
        for p in range(start, end):
            row = np.int64(ids[p]) * n_words
            for d in range(1, min(window, p - start) + 1):
                keys[n] = row + ids[p - d]
                values[n] = np.float32(1.0) / np.float32(d)
                n += 1
    return sentences.shape[0], n


@njit(types.void(types.int64[::1], types.float32[::1], types.int64, types.int64), **KERNEL_OPTS)
def add_transpose(keys, values, n, n_words):
    """Append the transpose of entries [0, n) at [n, 2n): X_ij += X_ji makes counts symmetric."""
    for i in range(n):
        k = keys[i]
        keys[n + i] = (k % n_words) * n_words + k // n_words
        values[n + i] = values[i]


RADIX_BITS = 16


@njit(types.Tuple((types.int64, types.boolean))(types.int64[::1], types.float32[::1], types.int64[::1],
                                                types.float32[::1], types.int64), **KERNEL_OPTS)
def sort_reduce(keys, values, tmp_keys, tmp_values, max_key):
    """Sort (keys, values) by key and sum the values of equal keys; keys are in [0, max_key].

    LSD radix sort on 16-bit digits, ping-ponging between the arrays and tmp_*, then an in-place
    reduction (summed in float64). Returns (m, in_tmp): the first m entries of tmp_* (in_tmp) or of keys/values hold
    the sorted unique keys and their sums.
    """
    n = keys.shape[0]
    src_k, src_v, dst_k, dst_v = keys, values, tmp_keys, tmp_values
    in_tmp = False
    counts = np.empty((1 << RADIX_BITS) + 1, np.int64)
    mask = (1 << RADIX_BITS) - 1
    shift = 0
    while shift == 0 or (max_key >> shift) > 0:
        counts[:] = 0
        for i in range(n):
            counts[((src_k[i] >> shift) & mask) + 1] += 1
        for d in range(1, counts.shape[0]):
            counts[d] += counts[d - 1]
        for i in range(n):
            d = (src_k[i] >> shift) & mask
            pos = counts[d]
            dst_k[pos] = src_k[i]
            dst_v[pos] = src_v[i]
            counts[d] = pos + 1
        src_k, src_v, dst_k, dst_v = dst_k, dst_v, src_k, src_v
        in_tmp = not in_tmp
        shift += RADIX_BITS
    m = 0
    acc = 0.0  # float64: a float32 running sum would depend on how the entries were split into runs
    for i in range(n):
        if m > 0 and src_k[i] == src_k[m - 1]:
            acc += src_v[i]
        else:
            if m > 0:
                src_v[m - 1] = acc
            src_k[m] = src_k[i]
            acc = np.float64(src_v[i])
            m += 1
    if m > 0:
        src_v[m - 1] = acc
    return m, in_tmp


@njit(**KERNEL_OPTS)
def _sift_down(heap, size, i, head_keys):
    while True:
        smallest = i
        left = 2 * i + 1
        right = left + 1
        if left < size and head_keys[heap[left]] < head_keys[heap[smallest]]:
            smallest = left
        if right < size and head_keys[heap[right]] < head_keys[heap[smallest]]:
            smallest = right
        if smallest == i:
            return
        heap[i], heap[smallest] = heap[smallest], heap[i]
        i = smallest


@njit(nogil=True, cache=True)
def merge_runs(keys, values, offsets, n_words, rows, cols, out_values):
    """k-way merge of sorted runs keys[offsets[r]:offsets[r + 1]], summing equal keys.

    Writes row = key // n_words, col = key % n_words and the float64-summed value (as float32)
    in key order; returns the number of entries written.
    """
    n_runs = offsets.shape[0] - 1
    pos = offsets[:-1].copy()
    head_keys = np.empty(n_runs, np.int64)
    heap = np.empty(n_runs, np.int64)
    size = 0
    for r in range(n_runs):
        if pos[r] < offsets[r + 1]:
            head_keys[r] = keys[pos[r]]
            heap[size] = r
            size += 1
    for i in range(size // 2 - 1, -1, -1):
        _sift_down(heap, size, i, head_keys)
    n_out = -1
    last = -1
    acc = 0.0
    while size > 0:
        r = heap[0]
        k = head_keys[r]
        if k != last:
            if n_out >= 0:
                out_values[n_out] = acc
            n_out += 1
            rows[n_out] = k // n_words
            cols[n_out] = k % n_words
            acc = 0.0
            last = k
        acc += values[pos[r]]
        pos[r] += 1
        if pos[r] < offsets[r + 1]:
            head_keys[r] = keys[pos[r]]
        else:
            size -= 1
            heap[0] = heap[size]
        _sift_down(heap, size, 0, head_keys)
    if n_out >= 0:
        out_values[n_out] = acc
    return n_out + 1


# ---- GloVe: Hogwild AdaGrad on the co-occurrence entries (Pennington et al. 2014, Stanford glove.c) ----

GLOVE_PARAMS = types.Tuple((F4_2D, F4_2D, F4_1D, F4_1D))  # w_word, w_ctx, b_word, b_ctx
GLOVE_COO = types.Tuple((types.int32[::1], types.int32[::1], types.float32[::1]))  # rows, cols, values


@njit(types.float64(GLOVE_PARAMS, GLOVE_PARAMS, types.int64, types.int64, types.float32, types.float64[::1]),
      **KERNEL_OPTS)
def glove_update(params, gradsq, i, j, x, hyper):
    """One AdaGrad step on J_ij = f(x) (w_i . w~_j + b_i + b~_j - log x)^2 / 2.

    params = (w_word, w_ctx, b_word, b_ctx) and gradsq (their squared-gradient sums, same shapes)
    are updated in place; hyper = (x_max, alpha, eta). f(x) = min(1, (x / x_max)^alpha).
    Returns J_ij before the update; when it is not finite nothing is updated.
    """
    w_word, w_ctx, b_word, b_ctx = params
    g_word, g_ctx, g_b_word, g_b_ctx = gradsq
    wi = w_word[i]
    wj = w_ctx[j]
    gi = g_word[i]
    gj = g_ctx[j]
    diff = b_word[i] + b_ctx[j] - np.float32(np.log(x))
    for k in range(wi.shape[0]):
        diff += wi[k] * wj[k]
    weight = np.float32(1.0) if x > hyper[0] else np.float32((x / hyper[0]) ** hyper[1])
    fdiff = weight * diff
    cost = 0.5 * fdiff * diff
    if not np.isfinite(cost):  # diverged (glove.c skips the entry): leave the parameters finite
        return cost
    fdiff *= np.float32(hyper[2])  # dJ/d(w_i . w~_j) times the learning rate
    for k in range(wi.shape[0]):
        t_i = fdiff * wj[k]  # eta * dJ/dw_i
        t_j = fdiff * wi[k]  # eta * dJ/dw~_j
        wi[k] -= t_i / np.sqrt(gi[k])
        wj[k] -= t_j / np.sqrt(gj[k])
        gi[k] += t_i * t_i
        gj[k] += t_j * t_j
    b_word[i] -= fdiff / np.sqrt(g_b_word[i])
    b_ctx[j] -= fdiff / np.sqrt(g_b_ctx[j])
    g_b_word[i] += fdiff * fdiff
    g_b_ctx[j] += fdiff * fdiff
    return cost


@njit(types.Tuple((types.float64, types.int64))(GLOVE_PARAMS, GLOVE_PARAMS, GLOVE_COO, types.float64[::1],
                                                types.int64[::1], types.int64),
      **KERNEL_OPTS)
def train_glove_epoch(params, gradsq, coo, hyper, counters, thread_idx):
    """One pass of one thread over its (shuffled) slice of the co-occurrence entries.

    coo = (rows, cols, values); counters as train_sgns_epoch (stop flag, entries done per thread).
    Every GLOVE_PROGRESS_EVERY entries it publishes its count and returns early when counters[0]
    is not RUN; a non-finite cost sets DIVERGED. Returns (cost sum, entries trained): a caller
    resumes an early return by passing the entries from there on.
    """
    rows, cols, values = coo
    slot = 1 + thread_idx
    done = counters[slot]
    first = done
    cost = 0.0
    for e in range(rows.shape[0]):
        if e > 0 and e % GLOVE_PROGRESS_EVERY == 0:
            counters[slot] = done
            if not np.isfinite(cost):
                counters[0] = DIVERGED
            if counters[0] != RUN:
                break
        cost += glove_update(params, gradsq, rows[e], cols[e], values[e], hyper)
        done += 1
    if not np.isfinite(cost):
        counters[0] = DIVERGED
    counters[slot] = done
    return cost, done - first
