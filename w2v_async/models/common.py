"""What every kernel shares: numba options and types, the run flags, and cache-line-aware memory.

Nothing in models/ imports the rest of w2v_async: the kernels take arrays and numbers only.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

PROGRESS_EVERY = 10_000  # words between learning-rate updates and stop checks (word2vec.c)

# counters[0], read by every kernel at each progress tick: anything but RUN makes it return early
RUN, STOP, PAUSE, DIVERGED = 0, 1, 2, 3

F4_2D = types.float32[:, ::1]
F4_1D = types.float32[::1]
I4_1D = types.int32[::1]
CORPUS = types.Tuple((types.int32[::1], types.int64[::1], types.int64[::1]))  # ids, sent_starts, sentences
TABLES = types.Tuple((types.float32[::1], types.float32[::1], types.int32[::1]))  # keep, noise prob, alias

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


@intrinsic
def prefetch_item(typingctx, array, index):
    """Ask the CPU to bring the cache line of array[index] (1-D) into cache. A hint only."""
    sig = types.void(array, index)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        idx = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary, [idx])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0"
        )
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


def private_zeros(shape, dtype) -> np.ndarray:
    """Zeros on cache lines of their own (64-byte aligned, padded), for per-thread scratch.

    Small arrays of different threads can otherwise share a cache line, and every write in the
    hot loop would then bounce that line between cores (false sharing). shape: int or tuple.
    """
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    n = int(np.prod(shape))
    itemsize = np.dtype(dtype).itemsize
    pad = 128 // itemsize
    raw = np.zeros(n + 3 * pad, dtype)
    start = (-raw.ctypes.data % 64) // itemsize + pad
    return raw[start : start + n].reshape(shape)
