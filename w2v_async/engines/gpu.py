"""The GPU engine (`--engine gpu`, issue 28): skip-gram by HogBatch windows, CBOW
(models/gpu_word2vec.py) and GloVe (models/gpu_glove.py) on an NVIDIA GPU through numba.cuda.

The matrices (GloVe's AdaGrad sums too), the sampling tables and one xorshift64* state per block
live on the device from start to end. The corpus (or the shuffled co-occurrence entries) goes over
in pieces, one launch each, double-buffered (_Feeder): while a piece trains on one stream, the next
is copied into pinned memory and on to the device on another, so the device never waits for the
host's reads and a corpus of any size streams through a fixed amount of device memory. A word2vec
block trains sentences b, b + blocks, ... of its piece, drawing subsampling, windows and negatives
on the device; the learning rate follows the words all blocks have done. Between pieces the host
updates the progress bar, obeys Ctrl-C and, when one is due, copies the matrices back for a
checkpoint. A run is one stream of items in corpus (or shuffled) order, so its state is a
one-thread RunState (a word2vec run's rng holds every block's state): it resumes from any engine's
checkpoint, and any engine resumes from its.
"""

import time
from typing import Optional

import numpy as np

from ..config import GloveConfig, Word2VecConfig
from ..data.encoded import EncodedCorpus
from ..data.vocab import Vocab
from ..errors import ConfigError, DivergedError
from .base import (GLOVE_ARRAY_NAMES, Checkpointing, GloveResult, Progress, RunState, TrainResult, glove_setup,
                   init_matrices, merged_state, resumed_arrays, resumed_state, stop_asked, thread_rng_states,
                   word2vec_arrays)

PIECE_SENTENCES = 1 << 16  # sentences per launch: a piece of the corpus on the device at a time
PIECE_ENTRIES = 1 << 22  # GloVe's co-occurrence entries per launch (48 MB, twice: double-buffered)
BLOCKS_PER_SM = 8
GLOVE_WARPS = 8  # entries in flight per GloVe block (as many blocks an SM as its registers allow)
SHARED_BYTES = 48 * 1024  # a block's static shared memory, CUDA's limit without opting in to more
MAX_THREADS = 1024  # threads a block


def cuda_or_error():
    """numba.cuda with a usable GPU, or the one-line error that says why not."""
    try:
        from numba import cuda  # the [gpu] extra's numba-cuda, or numba's own CUDA target
    except ImportError as e:
        raise ConfigError(f"--engine gpu needs numba's CUDA target ({e}); install it with pip install "
                          "'w2v-async[gpu]'.") from e
    if not cuda.is_available():
        raise ConfigError("--engine gpu needs an NVIDIA GPU with CUDA; none was found (numba.cuda.is_available() is "
                          "false: check the driver, the CUDA toolkit and CUDA_VISIBLE_DEVICES), or use --engine "
                          "threads.")
    return cuda


def check_block(cfg: Word2VecConfig) -> None:
    """A word2vec block's threads and shared memory within CUDA's limits, or one line that says
    which settings to lower: a window's rows live in the block's static shared memory."""
    from ..models.gpu_word2vec import shared_bytes, threads_per_block  # numba.cuda

    threads = threads_per_block(cfg.dim, 2 * cfg.window, cfg.negative + 1)
    shared = shared_bytes(cfg.dim, 2 * cfg.window, cfg.negative + 1)
    if threads > MAX_THREADS or shared > SHARED_BYTES:
        raise ConfigError(f"--engine gpu holds a window's rows in a block's {SHARED_BYTES // 1024} KB of shared memory "
                          f"and runs at most {MAX_THREADS} threads a block: --dim {cfg.dim} --window {cfg.window} "
                          f"--negative {cfg.negative} needs {-(-shared // 1024)} KB and {threads} threads; lower "
                          "them, or use --engine threads.")


def _blocks(cuda) -> int:
    """Blocks per launch: enough to fill every SM several times over (1 in the simulator)."""
    try:
        return int(cuda.get_current_device().MULTIPROCESSOR_COUNT) * BLOCKS_PER_SM
    except (AttributeError, TypeError, ValueError):
        return 1


class _Feeder:
    """Pieces of host arrays on the device, double-buffered: put(key, arrays) starts copying the
    next piece (into pinned memory, then to the device on a stream of its own) while the last one
    trains; take(key, arrays) returns that piece's device arrays once its copy is done, or copies
    them now when the piece put was another (the first, or after a resume). Each of the two buffer
    sets grows to the largest piece it has held."""

    def __init__(self, cuda):
        self.cuda, self.stream = cuda, cuda.stream()
        self.sets = [[], []]  # per set: (pinned host, device) buffers, one pair per array
        self.turn, self.pending = 0, None

    def _copy(self, arrays, stream):
        buffers = self.sets[self.turn]
        self.turn ^= 1
        views = []
        for k, a in enumerate(arrays):
            if k == len(buffers) or buffers[k][0].shape[0] < a.shape[0] or buffers[k][0].dtype != a.dtype:
                pair = (self.cuda.pinned_array(max(a.shape[0], 1), a.dtype), self.cuda.device_array(max(a.shape[0], 1),
                                                                                                     a.dtype))
                buffers[k:k + 1] = [pair]
            host, dev = buffers[k]
            host[:a.shape[0]] = a
            view = dev[:a.shape[0]]
            view.copy_to_device(host[:a.shape[0]], stream=stream)
            views.append(view)
        return views

    def put(self, key, arrays):
        self.pending = (key, self._copy(arrays, self.stream))

    def take(self, key, arrays):
        if self.pending is not None and self.pending[0] == key:
            self.stream.synchronize()
            return self.pending[1]
        views = self._copy(arrays, self.stream)
        self.stream.synchronize()
        return views


def train_word2vec_gpu(corpus: EncodedCorpus, vocab: Vocab, cfg: Word2VecConfig, progress: bool = True,
                       checkpointing: Optional[Checkpointing] = None) -> TrainResult:
    """Train skip-gram (HogBatch windows) on the GPU; the same inputs and result as
    engines/threads.train_word2vec."""
    cfg.validate()
    if (cfg.model == "sgns" and cfg.update != "window") or cfg.hs or cfg.subwords:
        raise ConfigError("--engine gpu trains skip-gram by HogBatch windows and CBOW for now (--hs, --subwords and "
                          "--batching pair come later); use --engine threads for them.")
    cuda = cuda_or_error()
    check_block(cfg)
    from ..models.gpu_word2vec import sentence_kernel, threads_per_block  # numba.cuda: only a GPU run compiles it
    from ..models.sampling import build_alias_table

    ckpt = checkpointing or Checkpointing()
    if ckpt.lockf is not None and (ckpt.lockf != 1.0).any():
        raise ConfigError("this run's --lock-init / --lock-factor rows need --engine threads or ray (the GPU kernels "
                          "have no update factor yet); resume it there.")
    n_words, n_sent = len(vocab), corpus.n_sentences
    names, shapes = word2vec_arrays(cfg, n_words)
    resumed = resumed_arrays(ckpt.resume, names, shapes)
    n_blocks = max(1, min(_blocks(cuda), n_sent))
    if resumed is not None:
        w_in, w_out = resumed
        state = RunState.from_arrays(ckpt.resume)
        if state.epoch.shape[0] > 1:  # a threads run's: from the start of its earliest unfinished items
            state = merged_state(state, [len(sh) for sh in corpus.deal(state.epoch.shape[0])])
        if state.rng.shape[0] != n_blocks:  # another engine's, or another GPU's: new streams
            state.rng = np.concatenate(thread_rng_states(cfg.seed + 1, n_blocks))
    else:
        w_in, w_out = init_matrices(n_words, cfg.dim, cfg.seed, cfg.init_scale)
        if ckpt.init is not None:
            ckpt.init.fill({"w_in": w_in, "w_out": w_out})
        state = RunState.new(1, cfg.epochs, np.concatenate(thread_rng_states(cfg.seed, n_blocks)))
    noise_prob, noise_alias = build_alias_table(vocab.noise_distribution(cfg.ns_exponent))
    device = {name: cuda.to_device(a) for name, a in (
        ("w_in", w_in), ("w_out", w_out), ("keep", vocab.keep_probs(cfg.sample)), ("prob", noise_prob),
        ("alias", noise_alias), ("windows", np.array(cfg.windows, np.int64)), ("rng", state.rng),
        ("counters", np.array([state.counters[1]], np.int64)),
        ("sched", np.array([cfg.start_alpha, cfg.min_alpha, max(corpus.n_words * cfg.epochs, 1)], np.float64)))}
    buffers = cuda.device_array((n_blocks, max(1, corpus.longest_sentence())), np.int32)
    kernel = sentence_kernel(cfg.dim, cfg.window, cfg.negative, cbow=cfg.model == "cbow")
    threads = threads_per_block(cfg.dim, 2 * cfg.window, cfg.negative + 1)
    starts = corpus.sent_starts
    params = {"w_in": w_in, "w_out": w_out}

    def copy_back():
        device["w_in"].copy_to_host(w_in)
        device["w_out"].copy_to_host(w_out)
        state.rng[:] = device["rng"].copy_to_host()

    sentences = cuda.to_device(np.arange(PIECE_SENTENCES, dtype=np.int64))  # a piece's sentences, in order
    out = cuda.device_array((n_blocks, 2), np.float64)
    zeros = np.zeros((n_blocks, 2), np.float64)

    def piece(first, end):  # its words and sentence starts
        a, b = int(starts[first]), int(starts[end])
        return np.asarray(corpus.ids[a:b]), np.asarray(starts[first:end + 1]) - a

    def launch(arrays, stream):
        ids, piece_starts = arrays
        n = piece_starts.shape[0] - 1
        out.copy_to_device(zeros, stream=stream)
        kernel[max(1, min(n_blocks, n)), threads, stream](
            device["w_in"], device["w_out"], ids, piece_starts, sentences[:n], device["keep"], device["prob"],
            device["alias"], device["windows"], device["rng"], device["sched"], device["counters"], buffers, out)
        return lambda: out.copy_to_host(stream=stream)

    def units(first, end):
        return int(starts[end]) - int(starts[first])

    _run_pieces(cuda, state, n_sent, PIECE_SENTENCES, cfg.epochs, piece, launch, units, ckpt, copy_back, params,
                Progress(corpus.n_words * cfg.epochs, progress, f"{cfg.model} gpu x{n_blocks}", "w"))
    return TrainResult(
        w_in=w_in, w_out=w_out,
        epoch_loss=[float(s / max(e, 1)) for s, e in zip(state.loss[0], state.examples[0])],
        epoch_loss_sum=[float(s) for s in state.loss[0]], epoch_examples=[int(e) for e in state.examples[0]],
        words_trained=int(state.counters[1]), seconds=state.seconds, state=state, params=params,
        downpour={"blocks": n_blocks, "threads_per_block": threads},  # the summary's "gpu"
    )


def _run_pieces(cuda, state: RunState, n_items: int, piece_items: int, epochs: int, piece, launch, units,
                ckpt: Checkpointing, copy_back, params, bar: Progress) -> None:
    """The loop every model shares: piece after piece of the n_items items of an epoch, from where
    state stands, until the last epoch or a stop. piece(first, end) gives a piece's host arrays,
    launch(device arrays, stream) starts its kernel and returns what waits for its (loss, examples)
    rows; units(first, end) counts its items for the progress (words, entries). The next piece
    is copied while this one trains. Checkpoints at epoch ends and every ckpt.every_s."""
    feeder, stream = _Feeder(cuda), cuda.stream()
    t0 = last_checkpoint = time.perf_counter()
    try:
        while state.epoch[0] < epochs and not state.stopped:
            epoch, first = int(state.epoch[0]), int(state.position[0])
            end = min(first + piece_items, n_items)
            wait = launch(feeder.take((epoch, first), piece(first, end)), stream)
            following = (epoch, end) if end < n_items else (epoch + 1, 0)
            if following[0] < epochs:  # copied while this piece trains
                feeder.put(following, piece(following[1], min(following[1] + piece_items, n_items)))
            done = wait()
            stream.synchronize()
            state.loss[0, epoch] += done[:, 0].sum()
            state.examples[0, epoch] += int(done[:, 1].sum())
            state.counters[1] += units(first, end)
            state.epoch[0], state.position[0] = following
            if not np.isfinite(state.loss[0, epoch]):
                raise DivergedError(epoch + 1, epochs)
            bar.update(int(state.counters[1]), epoch=f"{min(int(state.epoch[0]) + 1, epochs)}/{epochs}")
            state.stopped = stop_asked(ckpt.interrupts, int(state.counters[1]))
            now = time.perf_counter()
            if ckpt.save is not None and not state.stopped and state.epoch[0] < epochs and (
                    end == n_items or (ckpt.every_s and now - last_checkpoint >= ckpt.every_s)):
                copy_back()
                state.seconds += now - t0
                ckpt.save(params, state)
                last_checkpoint = t0 = time.perf_counter()
    finally:
        feeder.stream.synchronize()  # no copy into the pinned buffers outlives the loop
        bar.close()
    state.seconds += time.perf_counter() - t0
    copy_back()
    if ckpt.save is not None and not state.stopped:
        ckpt.save(params, state)


def train_glove_gpu(cooc, cfg: GloveConfig, progress: bool = True, checkpointing: Optional[Checkpointing] = None,
                    spill_dir: Optional[str] = None) -> GloveResult:
    """Train GloVe on the GPU: the same inputs and result as engines/threads.train_glove. The
    entries are shuffled once (the same order as every engine) and go over in pieces of
    PIECE_ENTRIES, each trained by warps of GLOVE_WARPS-warp blocks with glove.c's AdaGrad step."""
    cfg.validate()
    cuda = cuda_or_error()
    from ..models.gpu_glove import glove_kernel, threads_per_block  # numba.cuda: only a GPU run compiles it

    ckpt = checkpointing or Checkpointing()
    coo, arrays = glove_setup(cooc, cfg, ckpt, spill_dir)
    nnz = cooc.nnz
    if ckpt.resume is not None:
        state = resumed_state(ckpt.resume, 1, lambda done: [done], [np.zeros(1, np.uint64)],
                              lambda saved: np.diff(np.linspace(0, nnz, saved + 1).astype(np.int64)).tolist())
    else:
        state = RunState.new(1, cfg.epochs)
    n_blocks = _blocks(cuda)
    warps = GLOVE_WARPS if n_blocks > 1 else 1  # the simulator runs a block's threads one Python thread each
    n_blocks = max(1, min(n_blocks, -(-nnz // warps)))
    device = [cuda.to_device(a) for a in arrays]
    hyper = cuda.to_device(np.array([cfg.x_max, cfg.alpha, cfg.eta, cfg.grad_clip], np.float64))
    kernel, threads = glove_kernel(warps), threads_per_block(warps)
    out = cuda.device_array((n_blocks * warps, 2), np.float64)
    zeros = np.zeros((n_blocks * warps, 2), np.float64)
    named = dict(zip(GLOVE_ARRAY_NAMES, arrays))

    def copy_back():
        for d, a in zip(device, arrays):
            d.copy_to_host(a)

    def launch(entries, stream):
        out.copy_to_device(zeros, stream=stream)
        kernel[n_blocks, threads, stream](*device, *entries, hyper, out)
        return lambda: out.copy_to_host(stream=stream)

    _run_pieces(cuda, state, nnz, PIECE_ENTRIES, cfg.epochs, lambda first, end: [a[first:end] for a in coo], launch,
                lambda first, end: end - first, ckpt, copy_back, named,
                Progress(nnz * cfg.epochs, progress, f"glove gpu x{n_blocks}", " entries"))
    return GloveResult(
        *arrays[:4],
        epoch_cost=[float(c / max(n, 1)) for c, n in zip(state.loss[0], state.examples[0])],
        entries_trained=int(state.counters[1]), seconds=state.seconds, state=state, params=named,
        downpour={"blocks": n_blocks, "threads_per_block": threads},  # the summary's "gpu"
    )
