"""The GPU engine (`--engine gpu`, issue 28, in progress): skip-gram by HogBatch windows and CBOW
on an NVIDIA GPU through numba.cuda (models/gpu_word2vec.py).

The matrices, the sampling tables and one xorshift64* state per block live on the device from
start to end. The corpus goes over in pieces of PIECE_SENTENCES sentences: each piece is one launch
whose blocks train its sentences (block b: sentences b, b + blocks, ...), drawing subsampling,
windows and negatives on the device; the learning rate follows the words all blocks have done.
Between pieces the host updates the progress bar, obeys Ctrl-C and, when one is due, copies the
matrices back for a checkpoint. A run is one stream of sentences in corpus order, so its state is
a one-thread RunState (its rng holds every block's state): it resumes from any engine's
checkpoint, and any engine resumes from its.

Not yet: GloVe, pieces copied while the last one trains (double buffering).
"""

import time
from typing import Optional

import numpy as np

from ..config import Word2VecConfig
from ..data.encoded import EncodedCorpus
from ..data.vocab import Vocab
from ..errors import ConfigError, DivergedError
from .base import (Checkpointing, Progress, RunState, TrainResult, init_matrices, merged_state, resumed_arrays,
                   stop_asked, thread_rng_states, word2vec_arrays)

PIECE_SENTENCES = 1 << 16  # sentences per launch: a piece of the corpus on the device at a time
BLOCKS_PER_SM = 8


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


def _blocks(cuda) -> int:
    """Blocks per launch: enough to fill every SM several times over (1 in the simulator)."""
    try:
        return int(cuda.get_current_device().MULTIPROCESSOR_COUNT) * BLOCKS_PER_SM
    except (AttributeError, TypeError, ValueError):
        return 1


def train_word2vec_gpu(corpus: EncodedCorpus, vocab: Vocab, cfg: Word2VecConfig, progress: bool = True,
                       checkpointing: Optional[Checkpointing] = None) -> TrainResult:
    """Train skip-gram (HogBatch windows) on the GPU; the same inputs and result as
    engines/threads.train_word2vec."""
    cfg.validate()
    if (cfg.model == "sgns" and cfg.update != "window") or cfg.hs or cfg.subwords:
        raise ConfigError("--engine gpu trains skip-gram by HogBatch windows and CBOW for now (--hs, --subwords and "
                          "--batching pair come later); use --engine threads for them.")
    cuda = cuda_or_error()
    from ..models.gpu_word2vec import sentence_kernel, threads_per_block  # numba.cuda: only a GPU run compiles it
    from ..models.sampling import build_alias_table

    ckpt = checkpointing or Checkpointing()
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

    total = corpus.n_words * cfg.epochs
    bar = Progress(total, progress, f"{cfg.model} gpu x{n_blocks}", "w")
    t0 = last_checkpoint = time.perf_counter()
    try:
        while state.epoch[0] < cfg.epochs and not state.stopped:
            epoch, first = int(state.epoch[0]), int(state.position[0])
            end = min(first + PIECE_SENTENCES, n_sent)
            a, b = int(starts[first]), int(starts[end])
            out = cuda.to_device(np.zeros((n_blocks, 2), np.float64))
            kernel[max(1, min(n_blocks, end - first)), threads](
                device["w_in"], device["w_out"], cuda.to_device(np.asarray(corpus.ids[a:b])),
                cuda.to_device(np.asarray(starts[first:end + 1]) - a), cuda.to_device(np.arange(end - first)),
                device["keep"], device["prob"], device["alias"], device["windows"], device["rng"], device["sched"],
                device["counters"], buffers, out)
            done = out.copy_to_host()
            state.loss[0, epoch] += done[:, 0].sum()
            state.examples[0, epoch] += int(done[:, 1].sum())
            state.counters[1] += b - a
            state.position[0] = end
            if end == n_sent:
                state.epoch[0], state.position[0] = epoch + 1, 0
            if not np.isfinite(state.loss[0, epoch]):
                raise DivergedError(epoch + 1, cfg.epochs)
            bar.update(int(state.counters[1]), epoch=f"{min(int(state.epoch[0]) + 1, cfg.epochs)}/{cfg.epochs}")
            state.stopped = stop_asked(ckpt.interrupts, int(state.counters[1]))
            now = time.perf_counter()
            if ckpt.save is not None and not state.stopped and state.epoch[0] < cfg.epochs and (
                    end == n_sent or (ckpt.every_s and now - last_checkpoint >= ckpt.every_s)):
                copy_back()
                state.seconds += now - t0
                ckpt.save(params, state)
                last_checkpoint = t0 = time.perf_counter()
    finally:
        bar.close()
    state.seconds += time.perf_counter() - t0
    copy_back()
    if ckpt.save is not None and not state.stopped:
        ckpt.save(params, state)
    return TrainResult(
        w_in=w_in, w_out=w_out,
        epoch_loss=[float(s / max(e, 1)) for s, e in zip(state.loss[0], state.examples[0])],
        epoch_loss_sum=[float(s) for s in state.loss[0]], epoch_examples=[int(e) for e in state.examples[0]],
        words_trained=int(state.counters[1]), seconds=state.seconds, state=state, params=params,
        downpour={"blocks": n_blocks, "threads_per_block": threads},  # the summary's "gpu"
    )
