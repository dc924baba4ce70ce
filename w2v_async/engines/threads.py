"""The Hogwild engine: lock-free threads on shared float32 matrices, each calling a nogil numba kernel
on its shard (Recht et al. 2011; word2vec.c's TrainModelThread, glove.c's glove_thread)."""

import threading
import time
from typing import Callable, List, Optional, Tuple

import numpy as np

from ..config import GloveConfig, Word2VecConfig
from ..data.encoded import EncodedCorpus
from ..data.vocab import Vocab
from ..errors import ConfigError, DivergedError
from ..models.common import DIVERGED, PAUSE, RUN, STOP
from ..testhooks import HOLD, hold
from .base import (GLOVE_ARRAY_NAMES, PROGRESS_REFRESH_S, Checkpointing, GloveResult, Progress, RunState,
                   StopSignal, TrainResult, composed_vectors, glove_setup, init_matrices, resumed_arrays, resumed_state, stop_asked,
                   subword_scratch, thread_rng_states, thread_scratch, word2vec_arrays)

# How run_hogwild's flag (counters[0]) may move, always under its lock: RUN and PAUSE alternate (a
# checkpoint), a stop or a failure is final (never undone by a PAUSE or a RUN), and divergence is
# reported over a stop. The kernels write DIVERGED themselves, lock-free, and then return a
# non-finite loss, which their worker sets again under the lock (a PAUSE may have overwritten it).
FLAG_MOVES = {RUN: (PAUSE, STOP, DIVERGED), PAUSE: (RUN, STOP, DIVERGED), STOP: (DIVERGED,), DIVERGED: ()}

# Sentences handed to a word2vec kernel per call (512 KiB of sentence numbers): a thread's shard is
# made a piece at a time (data/encoded.Shard), never as one array of its sentences.
PIECE_SENTENCES = 1 << 16


def _join_all(threads: List[threading.Thread]) -> None:
    """Wait for every worker, whatever Ctrl-C comes meanwhile: the nogil kernels write into arrays
    that are freed once the run is left, and each stops at its next progress tick (at most 10,000
    words, or 65,536 GloVe entries, away) once the flag is no longer RUN."""
    for th in threads:
        while th.is_alive():
            try:
                th.join()
            except KeyboardInterrupt:  # the run is already being left: wait all the same
                pass


def run_hogwild(
    n_threads: int,
    epochs: int,
    run_chunk: Callable[[int, int, int, np.ndarray], Tuple[float, int, int]],
    shard_sizes: List[int],
    state: RunState,
    total: int,
    progress: bool,
    desc: str,
    postfix: Callable[[np.ndarray], dict],
    unit: str = "w",
    checkpoint: Optional[Callable[[RunState], None]] = None,
    checkpoint_every_s: Optional[float] = None,
    interrupts: Optional[StopSignal] = None,
    epoch_barrier: bool = False,
) -> RunState:
    """Run every remaining epoch on n_threads lock-free threads, from state (updated in place).

    ``run_chunk(t, epoch, start, counters) -> (loss, examples, items)`` trains thread t's shard
    from item start on, and returns early (items < the rest) when counters[0] is not RUN. The
    kernels share counters: counters[0] is the flag (RUN, STOP, PAUSE, DIVERGED), counters[1 + t]
    the units thread t has done; only this thread reads them for the progress bar. The flag moves
    only under the lock, as FLAG_MOVES allows: a worker's exception or divergence stops the others
    at their next tick, and no checkpoint pause or resume undoes it. Threads do not
    wait for each other between epochs (word2vec.c), unless epoch_barrier (glove.c: each epoch
    starts when every thread has finished the last one).

    With ``checkpoint``, the threads pause together (each at its next progress tick) every
    checkpoint_every_s seconds and when the last of them finishes an epoch, and checkpoint(state)
    runs while they wait; it also runs once at the end. A signal (interrupts.signal set, see
    job.Interrupts) stops the threads at their next tick and returns the state with ``stopped``
    set. Any exception in this thread (KeyboardInterrupt: Ctrl-C, or Interrupts' second signal)
    stops the workers and waits for them before it propagates. A worker's exception is re-raised
    once the others have stopped; a non-finite loss raises DivergedError.
    """
    counters = state.counters
    counters[0] = RUN
    errors: List[BaseException] = []
    cond = threading.Condition()
    parked = [0, 0]  # threads waiting for a checkpoint, threads finished

    def move(flag: int) -> bool:
        """Set the flag to flag if FLAG_MOVES allows it from the present one; wakes the waiting threads."""
        with cond:
            if flag not in FLAG_MOVES[int(counters[0])]:
                return False
            counters[0] = flag
            cond.notify_all()
            return True

    def park() -> None:
        with cond:
            parked[0] += 1
            cond.notify_all()
            cond.wait_for(lambda: counters[0] != PAUSE)
            parked[0] -= 1

    def wait_for_epoch(epoch: int) -> None:
        """Wait until every thread has finished epoch (counted as parked meanwhile, so checkpoints go on)."""
        with cond:
            parked[0] += 1
            cond.notify_all()
            cond.wait_for(lambda: (state.epoch.min() > epoch and counters[0] != PAUSE)
                          or counters[0] not in (RUN, PAUSE))
            parked[0] -= 1

    def work(t: int) -> None:
        try:
            while state.epoch[t] < epochs:
                if counters[0] == PAUSE:
                    park()
                    continue
                if counters[0] != RUN:
                    return
                epoch = int(state.epoch[t])
                if HOLD is not None:  # test hook: a signal lands while this epoch runs (tests/test_signals.py)
                    hold(f"hogwild-epoch-{epoch}", lambda: counters[0] not in (RUN, PAUSE))
                loss, examples, items = run_chunk(t, epoch, int(state.position[t]), counters)
                state.loss[t, epoch] += loss
                state.examples[t, epoch] += examples
                state.position[t] += items
                if not np.isfinite(loss):  # the kernel flags it too, but a pause may have overwritten that
                    move(DIVERGED)
                    return
                if state.position[t] == shard_sizes[t]:
                    state.epoch[t] += 1
                    state.position[t] = 0
                    last_to_finish = state.epoch.min() > epoch
                    if checkpoint is not None and last_to_finish and epoch + 1 < epochs:
                        move(PAUSE)  # from RUN only
                    if epoch_barrier and epoch + 1 < epochs:
                        wait_for_epoch(epoch)
        except BaseException as e:  # surfaced by the main thread
            errors.append(e)
            move(STOP)
        finally:
            with cond:
                parked[1] += 1
                cond.notify_all()

    bar = Progress(total, progress, desc, unit)
    threads = [threading.Thread(target=work, args=(t,), name=f"w2v-{t}", daemon=True) for t in range(n_threads)]
    start = time.perf_counter()
    last_checkpoint = start
    try:
        for th in threads:
            th.start()
        while True:
            with cond:
                if parked[1] == n_threads:
                    break
                cond.wait(PROGRESS_REFRESH_S)
            bar.update(int(counters[1:].sum()), **postfix(counters))
            if stop_asked(interrupts, int(counters[1:].sum())) and move(STOP):
                state.stopped = True
            now = time.perf_counter()
            due = bool(checkpoint is not None and checkpoint_every_s and now - last_checkpoint >= checkpoint_every_s)
            with cond:  # decided under the lock: once all are parked, nothing else moves the flag
                if due:
                    move(PAUSE)  # from RUN only: never over a worker's STOP or DIVERGED
                checkpoint_now = counters[0] == PAUSE and parked[0] + parked[1] == n_threads
            if checkpoint_now:
                state.seconds += now - start
                start = now
                checkpoint(state)
                last_checkpoint = start = time.perf_counter()
                move(RUN)  # from PAUSE only
    except BaseException:
        move(STOP)
        _join_all(threads)  # the kernels stop within a tick; only then may the arrays be freed
        raise
    finally:
        bar.close()
    state.seconds += time.perf_counter() - start
    if errors:
        raise errors[0]
    if counters[0] == DIVERGED:
        raise DivergedError(state.diverged_epoch(), epochs)
    if checkpoint is not None and not state.stopped:
        checkpoint(state)
    return state


def train_word2vec(
    corpus: EncodedCorpus,
    vocab: Vocab,
    cfg: Word2VecConfig,
    progress: bool = True,
    w_in: Optional[np.ndarray] = None,
    w_out: Optional[np.ndarray] = None,
    checkpointing: Optional[Checkpointing] = None,
    guard: Optional[Tuple[str, tuple]] = None,
) -> TrainResult:
    """Train SGNS or CBOW with cfg.threads lock-free threads on shared float32 matrices.

    guard (the experiment's schemes, word2vec skip-gram with --batching pair only): (kind, shared)
    runs every pair update under one global lock ("global"), under its rows' locks ("rows"), or
    lock-free counting row writes and collisions ("count"), with the arrays all threads share
    (word2vec_guarded.guarded_scratch), and without private hot rows.

    Each thread owns a shard of sentences (blocks of 10,000 words dealt in turn), its RNG state
    and scratch buffers, and calls a nogil numba kernel per epoch (or per stretch between
    checkpoints); the kernel reads the other threads' word counters to decay the learning rate by
    global progress. With checkpointing.resume, training continues where that checkpoint stopped.
    """
    cfg.validate()
    # numba kernels: each model's module is imported (and compiled, or loaded from the cache) only by its run
    from ..models.hot_rows import hot_row_merge_every, hot_rows, hot_scratch
    from ..models.sampling import build_alias_table, learning_rate
    from ..models.word2vec_loops import epoch_kernel

    ckpt = checkpointing or Checkpointing()
    if guard is not None and cfg.kernel != "pair":
        raise ConfigError("locked and counted updates are word2vec.c's skip-gram pairs: use --model sgns "
                          "--batching pair.")
    kernel = epoch_kernel(cfg.kernel if guard is None else f"pair-{guard[0]}")  # compiles this model's only
    n_words = len(vocab)
    n_threads = min(cfg.threads, max(1, corpus.n_sentences))
    sub = None
    if cfg.subwords:  # fastText's model: the vocabulary's n-gram rows
        from ..data.subwords import subword_rows

        sub = subword_rows(vocab.words, vocab.counts, cfg.minn, cfg.maxn, cfg.bucket)
    names, shapes = word2vec_arrays(cfg, n_words, 0 if sub is None else len(sub.buckets))
    resumed = resumed_arrays(ckpt.resume, names, shapes)
    shards = corpus.deal(n_threads)  # each thread's sentences, made PIECE_SENTENCES at a time
    syn1 = None
    if resumed is not None:
        loaded = dict(zip(names, resumed))
        w_in, syn1, w_sub = loaded["w_in"], loaded.get("syn1"), loaded.get("w_sub")
        w_out = loaded.get("w_out", np.zeros((n_words, cfg.dim), np.float32))
        state = resumed_state(ckpt.resume, n_threads, lambda done: [int(np.searchsorted(sh, done)) for sh in shards],
                               thread_rng_states(cfg.seed + 1, n_threads),
                               lambda saved: [len(sh) for sh in corpus.deal(saved)])
    else:
        if w_in is None or w_out is None:
            w_in, w_out = init_matrices(n_words, cfg.dim, cfg.seed, cfg.init_scale)
        if ckpt.init is not None:
            ckpt.init.fill({"w_in": w_in, "w_out": w_out})
            syn1 = ckpt.init.syn1()
        w_sub = None if sub is None else init_matrices(len(sub.buckets), cfg.dim, cfg.seed + 1, cfg.init_scale)[0]
        if ckpt.init is not None and w_sub is not None:
            ckpt.init.fill_ngrams(w_sub, sub.buckets)
        state = RunState.new(n_threads, cfg.epochs, np.concatenate(thread_rng_states(cfg.seed, n_threads)))
    merge_every = hot_row_merge_every(n_threads, cfg.start_alpha / cfg.default_alpha)
    n_hot = hot_rows(n_words, cfg.dim, n_threads, merge_every) if guard is None else 0
    if n_hot:  # one private copy of the hot rows per thread, below the shared rows
        w_in = np.concatenate([w_in, np.zeros((n_threads * n_hot, cfg.dim), np.float32)])
    if cfg.negative == 0:  # hierarchical softmax alone: w_out is never read (np.zeros maps no pages)
        w_out = np.zeros((n_words + n_threads * n_hot, cfg.dim), np.float32)
    elif n_hot:
        w_out = np.concatenate([w_out, np.zeros((n_threads * n_hot, cfg.dim), np.float32)])
    if cfg.hs:  # the V - 1 inner nodes' rows and one unused, so that hot copies sit at w_in's offsets
        syn1 = np.concatenate([np.zeros((n_words - 1, cfg.dim), np.float32) if syn1 is None else syn1,
                               np.zeros((1 + n_threads * n_hot, cfg.dim), np.float32)])
    noise_prob, noise_alias = build_alias_table(vocab.noise_distribution(cfg.ns_exponent))
    tables = (vocab.keep_probs(cfg.sample), noise_prob, noise_alias)  # (unused noise with --negative 0)
    total_words = corpus.n_words * cfg.epochs
    sched = np.array([cfg.start_alpha, cfg.min_alpha, max(total_words, 1)], np.float64)
    max_sentence = corpus.longest_sentence()  # read in pieces: no O(sentences) temporary
    lockf = ckpt.lockf  # the input rows' update factors, the hot copies' too
    if lockf is not None:
        lockf = np.concatenate([np.asarray(lockf, np.float32)] + [lockf[:n_hot].astype(np.float32)] * n_threads)
    scratch = [thread_scratch(cfg, max_sentence, hot_scratch(n_hot, n_words + t * n_hot, merge_every, cfg.dim, lockf))
               for t in range(n_threads)]
    if guard is not None:
        from ..models.word2vec_guarded import guarded_scratch  # the experiment's kernels only

        scratch = [guarded_scratch(sc, guard[0], guard[1], cfg.negative) for sc in scratch]
    if cfg.hs:
        from ..models.huffman import huffman_paths  # hierarchical softmax's kernels: only its runs
        from ..models.word2vec_hs import hs_scratch

        paths = huffman_paths(vocab.counts)
        scratch = [hs_scratch(sc, cfg.update if cfg.model == "sgns" else "cbow", syn1, paths, n_hot)
                   for sc in scratch]
    if sub is not None:
        w_sub, scratch = subword_scratch(scratch, sub, w_sub, n_threads, merge_every, guard is None, cfg)
    params = {"w_in": w_in[:n_words], "w_out": w_out[:n_words], "syn1": None if syn1 is None else syn1[: n_words - 1],
              "w_sub": None if sub is None else w_sub[: len(sub.buckets)]}
    params = {name: params[name] for name in names}

    def run_chunk(t, epoch, start, counters):  # to the end of start's piece (pieces at fixed positions)
        shard = (corpus.ids, corpus.sent_starts,
                 shards[t].sentences(start, (start // PIECE_SENTENCES + 1) * PIECE_SENTENCES))
        loss_sum, n_examples, _, n_sentences = kernel(
            w_in, w_out, shard, tables, sched, state.rng[t : t + 1], counters, t, cfg.windows, scratch[t]
        )
        return loss_sum, n_examples, n_sentences

    def postfix(counters):
        epoch = min(int(counters[1:].sum()) // max(corpus.n_words, 1), cfg.epochs - 1) + 1
        return {"epoch": f"{epoch}/{cfg.epochs}", "lr": f"{learning_rate(sched, counters):.6f}"}

    save = (lambda st: ckpt.save(params, st)) if ckpt.save is not None else None
    run_hogwild(
        n_threads, cfg.epochs, run_chunk, [len(sh) for sh in shards], state, total_words, progress,
        f"{cfg.model} x{n_threads}", postfix, checkpoint=save, checkpoint_every_s=ckpt.every_s,
        interrupts=ckpt.interrupts,
    )
    loss_sum = state.loss.sum(axis=0)
    n_examples = state.examples.sum(axis=0)
    return TrainResult(
        w_in=params["w_in"] if sub is None else composed_vectors(params["w_in"], params["w_sub"], sub),
        w_out=w_out[:n_words],
        epoch_loss=[float(s / max(n, 1)) for s, n in zip(loss_sum, n_examples)],
        epoch_loss_sum=[float(s) for s in loss_sum],
        epoch_examples=[int(n) for n in n_examples],
        words_trained=int(state.counters[1:].sum()),
        seconds=state.seconds,
        state=state,
        params=params,
        ngram_buckets=None if sub is None else sub.buckets,
    )


def train_glove(cooc, cfg: GloveConfig, progress: bool = True, checkpointing: Optional[Checkpointing] = None,
                spill_dir: Optional[str] = None, locks: Optional[np.ndarray] = None,
                counts: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> GloveResult:
    """Train GloVe on a Cooccurrence with cfg.threads lock-free AdaGrad threads.

    The entries are shuffled once (as Stanford's ``shuffle``, within cfg.memory_gb: beyond it, in
    files in spill_dir, data/shuffle.py); each thread trains a contiguous
    slice of them every epoch, and an epoch starts when all threads have finished the last, as glove.c does. Parameters start uniform(-0.5, 0.5) / dim, the
    squared-gradient sums at 1. With checkpointing.resume, training continues where that
    checkpoint stopped, AdaGrad sums included. locks (the experiment's schemes, locks.new_locks):
    every update holds one shared lock (1 lock) or its two rows' (2 V locks); counts (int64[2 V]
    twice, zeros): lock-free, each row's writes and collided writes counted.
    """
    cfg.validate()
    from ..models.glove import train_glove_epoch  # GloVe's kernels: compiled only by a GloVe run

    ckpt = checkpointing or Checkpointing()
    coo, arrays = glove_setup(cooc, cfg, ckpt, spill_dir)
    n_threads = min(cfg.threads, cooc.nnz)
    cuts = np.linspace(0, cooc.nnz, n_threads + 1).astype(np.int64)
    if ckpt.resume is not None:
        state = resumed_state(ckpt.resume, n_threads,
                               lambda done: [int(np.clip(done - cuts[t], 0, cuts[t + 1] - cuts[t]))
                                             for t in range(n_threads)],
                               [np.zeros(1, np.uint64)] * n_threads,
                               lambda saved: np.diff(np.linspace(0, cooc.nnz, saved + 1).astype(np.int64)).tolist())
    else:
        state = RunState.new(n_threads, cfg.epochs)
    params, gradsq = tuple(arrays[:4]), tuple(arrays[4:])
    hyper = np.array([cfg.x_max, cfg.alpha, cfg.eta, cfg.grad_clip], np.float64)
    slices = [tuple(a[cuts[t] : cuts[t + 1]] for a in coo) for t in range(n_threads)]

    if locks is not None or counts is not None:
        from ..models.glove_guarded import train_glove_counted_epoch, train_glove_locked_epoch  # experiment only

    def run_chunk(t, epoch, start, counters):
        part = tuple(a[start:] for a in slices[t])
        if locks is not None:
            cost, entries = train_glove_locked_epoch(params, gradsq, part, hyper, counters, t, locks)
        elif counts is not None:
            cost, entries = train_glove_counted_epoch(params, gradsq, part, hyper, counters, t, *counts)
        else:
            cost, entries = train_glove_epoch(params, gradsq, part, hyper, counters, t)
        return cost, entries, entries

    def postfix(counters):
        epoch = min(int(counters[1:].sum()) // cooc.nnz, cfg.epochs - 1) + 1
        return {"epoch": f"{epoch}/{cfg.epochs}"}

    named = dict(zip(GLOVE_ARRAY_NAMES, arrays))
    save = (lambda st: ckpt.save(named, st)) if ckpt.save is not None else None
    run_hogwild(
        n_threads, cfg.epochs, run_chunk, [len(sl[0]) for sl in slices], state, cooc.nnz * cfg.epochs, progress,
        f"glove x{n_threads}", postfix, unit=" entries", checkpoint=save, checkpoint_every_s=ckpt.every_s,
        interrupts=ckpt.interrupts, epoch_barrier=True,
    )
    return GloveResult(
        *params,
        epoch_cost=[float(c / max(n, 1)) for c, n in zip(state.loss.sum(axis=0), state.examples.sum(axis=0))],
        entries_trained=int(state.counters[1:].sum()),
        seconds=state.seconds,
        state=state,
        params=named,
    )
