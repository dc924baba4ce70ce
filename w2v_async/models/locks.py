"""Real locks for the kernels, for the experiment's locking schemes (issue 15): atomic
compare-and-swap spin locks built from LLVM's atomic instructions, as prefetch_row is built from
its prefetch intrinsic, plus the atomic add that counts writes and holders.

A lock is the first int32 of its row of a locks array int32[n, LOCK_STRIDE] (one cache line per
lock, so taking one lock does not move its neighbours' lines): 0 free, 1 held.
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .common import KERNEL_OPTS

LOCK_STRIDE = 16  # int32s per lock: a 64-byte cache line each
SPINS_BEFORE_YIELD = 64  # a waiter whose holder was descheduled (threads > cores) gives up its core


def new_locks(n: int) -> np.ndarray:
    """n free locks, one cache line each."""
    return np.zeros((n, LOCK_STRIDE), np.int32)


def _pointer(context, builder, signature, args, column=None):
    """Pointer to array[i] (column None) or array[i, column] for an intrinsic's (array, i, ...)."""
    ary = context.make_array(signature.args[0])(context, builder, args[0])
    idx = [context.cast(builder, args[1], signature.args[1], types.intp)]
    if column is not None:
        idx.append(context.get_constant(types.intp, column))
    return cgutils.get_item_pointer(context, builder, signature.args[0], ary, idx)


@intrinsic
def try_lock(typingctx, locks, i):
    """Take lock i of locks (int32[n, LOCK_STRIDE]) if it is free: cmpxchg 0 -> 1 with acquire
    ordering (nothing inside the critical section moves above it). Returns whether it was taken."""
    sig = types.boolean(locks, i)

    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature, args, column=0)
        i32 = ir.IntType(32)
        pair = builder.cmpxchg(ptr, i32(0), i32(1), "acquire", "monotonic")
        return builder.extract_value(pair, 1)

    return sig, codegen


@intrinsic
def unlock(typingctx, locks, i):
    """Free lock i: an atomic store of 0 with release ordering (every write made while holding it
    is visible to the next holder)."""
    sig = types.void(locks, i)

    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature, args, column=0)
        builder.store_atomic(ir.IntType(32)(0), ptr, "release", 4)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def atomic_add(typingctx, array, i, value):
    """array[i] += value as one atomic read-modify-write (int64[:] array); returns the old value."""
    sig = types.int64(array, i, value)

    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature, args)
        val = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", ptr, val, "seq_cst")

    return sig, codegen


@intrinsic
def yield_cpu(typingctx):
    """sched_yield(2): let another runnable thread have this core."""
    sig = types.int32()

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
        return builder.call(fn, [])

    return sig, codegen


@njit(**KERNEL_OPTS)
def acquire(locks, i):
    """Spin until lock i is taken, yielding the core every SPINS_BEFORE_YIELD failed tries."""
    spins = 0
    while not try_lock(locks, i):
        spins += 1
        if spins == SPINS_BEFORE_YIELD:
            yield_cpu()
            spins = 0


@njit(**KERNEL_OPTS)
def acquire_rows(locks, ids, n):
    """Take the locks of ids[:n] (int32, any order, repeats allowed) in increasing id order, so
    two threads never wait for each other in a cycle (no deadlock). ids[:n] is sorted and
    deduplicated in place; returns how many distinct locks are held (release_rows' n)."""
    for a in range(1, n):  # insertion sort: n is a pair's 2 + negative rows
        x = ids[a]
        b = a - 1
        while b >= 0 and ids[b] > x:
            ids[b + 1] = ids[b]
            b -= 1
        ids[b + 1] = x
    m = 0
    for a in range(n):
        if m == 0 or ids[a] != ids[m - 1]:
            ids[m] = ids[a]
            m += 1
    for a in range(m):
        acquire(locks, ids[a])
    return m


@njit(**KERNEL_OPTS)
def release_rows(locks, ids, m):
    """Free the m locks acquire_rows took."""
    for a in range(m):
        unlock(locks, ids[a])


@njit(**KERNEL_OPTS)
def hold_for_a_collision(test_hold, versions, row, seen):
    """Test hook (tests/test_locks.py) of the counted kernels' test variants, never compiled into
    the experiment's: test_hold int64[2] is (a row, 0). The first update to reach that row claims
    the hold and waits, between its read of the row's version (seen) and its write, until another
    thread has written the row: one collision, forced rather than hoped for."""
    if row != test_hold[0] or atomic_add(test_hold, 1, 1) != 0:
        return
    spins = 0
    while atomic_add(versions, row, 0) == seen:  # an atomic read: never hoisted out of the loop
        spins += 1
        if spins == SPINS_BEFORE_YIELD:
            yield_cpu()
            spins = 0
