"""Hogwild orchestration: shared matrices, one thread per shard, learning-rate schedule, progress."""

import dataclasses
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import numpy as np

from .config import GloveConfig, VocabConfig, Word2VecConfig, to_json
from .corpus import EncodedCorpus, check_output_path
from .errors import ConfigError, InputError
from .io import atomic_write, resolve_format, save_vectors
from .vocab import Vocab, read_corpus

PROGRESS_REFRESH_S = 0.25


@dataclass
class TrainResult:
    """What a training run produced and measured.

    w_in : float32[V, d] (the word vectors); w_out : float32[V, d] (output / context vectors).
    epoch_loss : mean loss per example for each epoch; epoch_examples : examples per epoch.
    """

    w_in: np.ndarray
    w_out: np.ndarray
    epoch_loss: List[float] = field(default_factory=list)
    epoch_loss_sum: List[float] = field(default_factory=list)
    epoch_examples: List[int] = field(default_factory=list)
    words_trained: int = 0
    seconds: float = 0.0

    @property
    def words_per_sec(self) -> float:
        return self.words_trained / self.seconds if self.seconds > 0 else 0.0


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


HOT_ROWS_BYTES = 512 * 1024  # per thread, for the 4 hot-row copies: a part of a core's L2


def hot_rows(n_words: int, dim: int, n_threads: int) -> int:
    """How many of the most frequent words each HogBatch thread trains in private copies.

    One thread shares nothing, so it keeps none (and stays update for update the plain kernel).
    Otherwise as many as fit HOT_ROWS_BYTES (two copies of w_in's and w_out's rows): the top
    words' rows are the ones every thread writes all the time, and merging them every 10,000
    words costs well under 1% of the time. At most a 16th of the vocabulary: only the head of a
    Zipf distribution is contended, and the other threads see a hot row's changes only at merges.
    """
    if n_threads == 1:
        return 0
    return int(min(n_words // 16, HOT_ROWS_BYTES // (4 * 4 * dim)))


def init_matrices(n_words: int, dim: int, seed: int):
    """word2vec.c initialisation: w_in ~ uniform(-0.5, 0.5) / dim, w_out = 0 (float32, C order)."""
    rng = np.random.default_rng(seed)
    w_in = ((rng.random((n_words, dim), dtype=np.float32) - np.float32(0.5)) / np.float32(dim))
    return np.ascontiguousarray(w_in), np.zeros((n_words, dim), np.float32)


def thread_rng_states(seed: int, n_threads: int) -> List[np.ndarray]:
    """One non-zero uint64 xorshift state per thread, derived from the seed."""
    seqs = np.random.SeedSequence(seed).spawn(n_threads)
    states = []
    for s in seqs:
        x = s.generate_state(1, np.uint64)
        x[0] |= np.uint64(1)
        states.append(x)
    return states


class _Progress:
    """tqdm on stderr, owned by the main thread; workers only bump counters."""

    def __init__(self, total: int, enabled: bool, desc: str, unit: str):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=unit, unit_scale=True, desc=desc, dynamic_ncols=True, leave=True)

    def update(self, done: int, **postfix) -> None:
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_hogwild(
    n_threads: int,
    epochs: int,
    run_epoch: Callable[[int, int, np.ndarray], Tuple[float, int]],
    total: int,
    progress: bool,
    desc: str,
    postfix: Callable[[np.ndarray], dict],
    unit: str = "w",
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Run ``run_epoch(t, epoch, counters)`` for every epoch on n_threads lock-free threads.

    counters (int64[1 + n_threads]) is shared with the kernels: counters[0] is the stop flag,
    counters[1 + t] the units (words, entries) thread t has done; only this thread reads them for
    the progress bar. Threads do not wait for each other between epochs. Ctrl-C sets the stop
    flag, waits for the workers and re-raises KeyboardInterrupt; a worker's exception is re-raised.
    Returns (loss[t, epoch], examples[t, epoch], counters, seconds).
    """
    counters = np.zeros(1 + n_threads, np.int64)
    loss = np.zeros((n_threads, epochs), np.float64)
    examples = np.zeros((n_threads, epochs), np.int64)
    errors: List[BaseException] = []

    def work(t: int) -> None:
        try:
            for epoch in range(epochs):
                loss[t, epoch], examples[t, epoch] = run_epoch(t, epoch, counters)
                if counters[0]:
                    return
        except BaseException as e:  # surfaced by the main thread
            errors.append(e)
            counters[0] = 1

    bar = _Progress(total, progress, desc, unit)
    threads = [threading.Thread(target=work, args=(t,), name=f"w2v-{t}", daemon=True) for t in range(n_threads)]
    start = time.perf_counter()
    try:
        for th in threads:
            th.start()
        while any(th.is_alive() for th in threads):
            for th in threads:
                th.join(PROGRESS_REFRESH_S / n_threads)
            bar.update(int(counters[1:].sum()), **postfix(counters))
    except KeyboardInterrupt:
        counters[0] = 1
        for th in threads:
            th.join()
        raise
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    return loss, examples, counters, seconds


def train_word2vec(
    corpus: EncodedCorpus,
    vocab: Vocab,
    cfg: Word2VecConfig,
    progress: bool = True,
    w_in: Optional[np.ndarray] = None,
    w_out: Optional[np.ndarray] = None,
) -> TrainResult:
    """Train SGNS or CBOW with cfg.threads lock-free threads on shared float32 matrices.

    Each thread owns a shard of sentences (blocks of 10,000 words dealt in turn), its RNG state
    and scratch buffers, and calls a nogil numba kernel once per epoch; the kernel reads the other
    threads' word counters to decay the learning rate by global progress.
    """
    from . import kernels

    cfg.validate()
    if cfg.model == "cbow":
        kernel = kernels.train_cbow_epoch
    else:
        kernel = kernels.train_sgns_window_epoch if cfg.update == "window" else kernels.train_sgns_epoch
    if w_in is None or w_out is None:
        w_in, w_out = init_matrices(len(vocab), cfg.dim, cfg.seed)
    n_threads = min(cfg.threads, max(1, corpus.n_sentences))
    n_hot = hot_rows(len(vocab), cfg.dim, n_threads) if cfg.model == "sgns" and cfg.update == "window" else 0
    if n_hot:  # one private copy of the hot rows per thread, below the shared rows
        n_words = len(vocab)
        w_in = np.concatenate([w_in, np.zeros((n_threads * n_hot, cfg.dim), np.float32)])
        w_out = np.concatenate([w_out, np.zeros((n_threads * n_hot, cfg.dim), np.float32)])
    noise_prob, noise_alias = kernels.build_alias_table(vocab.noise_distribution())
    tables = (vocab.keep_probs(cfg.sample), noise_prob, noise_alias)
    total_words = corpus.n_words * cfg.epochs
    sched = np.array([cfg.start_alpha, cfg.min_alpha, max(total_words, 1)], np.float64)
    shards = corpus.shards(n_threads)
    rng_states = thread_rng_states(cfg.seed, n_threads)
    max_sentence = int(np.diff(corpus.sent_starts).max(initial=1))
    scratch = []
    for _ in range(n_threads):
        buffers = (
            private_zeros(max_sentence, np.int32),
            private_zeros(4 * cfg.window * cfg.negative, np.int32),  # two words' negatives (pipeline)
        )
        if cfg.model == "cbow":
            buffers += (private_zeros(cfg.dim, np.float32), private_zeros(2 * cfg.window, np.int32),
                        private_zeros(cfg.dim, np.float32))
        elif cfg.update == "window":
            buffers += (private_zeros(2 * cfg.window, np.int32), private_zeros((2 * cfg.window, cfg.dim), np.float32),
                        private_zeros((2 * cfg.window, cfg.negative + 1), np.float32),
                        np.array([n_hot, len(vocab) + len(scratch) * n_hot], np.int64),
                        private_zeros((n_hot, cfg.dim), np.float32), private_zeros((n_hot, cfg.dim), np.float32))
        else:
            buffers += (private_zeros(cfg.dim, np.float32),)
        scratch.append(buffers)

    def run_epoch(t, epoch, counters):
        shard = (corpus.ids, corpus.sent_starts, shards[t])
        loss_sum, n_examples, _ = kernel(
            w_in, w_out, shard, tables, sched, rng_states[t], counters, t, cfg.window, scratch[t]
        )
        return loss_sum, n_examples

    def postfix(counters):
        epoch = min(int(counters[1:].sum()) // max(corpus.n_words, 1), cfg.epochs - 1) + 1
        return {"epoch": f"{epoch}/{cfg.epochs}", "lr": f"{kernels.learning_rate(sched, counters):.6f}"}

    loss, examples, counters, seconds = run_hogwild(
        n_threads, cfg.epochs, run_epoch, total_words, progress, f"{cfg.model} x{n_threads}", postfix
    )
    loss_sum = loss.sum(axis=0)
    n_examples = examples.sum(axis=0)
    return TrainResult(
        w_in=w_in[: len(vocab)],
        w_out=w_out[: len(vocab)],
        epoch_loss=[float(s / max(n, 1)) for s, n in zip(loss_sum, n_examples)],
        epoch_loss_sum=[float(s) for s in loss_sum],
        epoch_examples=[int(n) for n in n_examples],
        words_trained=int(counters[1:].sum()),
        seconds=seconds,
    )


def train_from_corpus(
    source: str,
    output: str,
    vocab_cfg: VocabConfig,
    cfg: Word2VecConfig,
    vocab_path: Optional[str] = None,
    fmt: str = "auto",
    progress: bool = True,
    log: Callable[[str], None] = lambda msg: None,
) -> dict:
    """The whole ``w2v-async train`` job: read, encode, train, write vectors and config atomically.

    Returns a JSON-ready summary (config, vocabulary size, words trained, words/s, loss per epoch,
    timings, output paths). Nothing is written unless training finishes.
    """
    vocab_cfg.validate()
    cfg.validate()
    check_output_path(output)
    fmt = resolve_format(output, fmt)
    t0 = time.perf_counter()
    reader, vocab, encoded = read_corpus(source, vocab_cfg, vocab_path, log)
    scan_s = time.perf_counter() - t0
    result = train_word2vec(encoded, vocab, cfg, progress=progress)
    t1 = time.perf_counter()
    save_vectors(output, vocab.words, result.w_in, fmt)
    config_path = output + ".json"
    with atomic_write(config_path) as f:
        f.write(to_json(vocab=vocab_cfg, train=cfg) + "\n")
    write_s = time.perf_counter() - t1
    return {
        "model": cfg.model,
        "config": {"vocab": dataclasses.asdict(vocab_cfg), "train": dataclasses.asdict(cfg)},
        "corpus": {
            "source": source,
            "tokens": reader.stats.n_tokens,
            "words_in_vocab": encoded.n_words,
            "sentences": encoded.n_sentences,
            "long_lines_split": reader.stats.n_split_lines,
            "bad_utf8_lines": reader.stats.n_bad_utf8_lines,
        },
        "vocab_size": len(vocab),
        "words_trained": result.words_trained,
        "words_per_sec": result.words_per_sec,
        "epoch_loss": result.epoch_loss,
        "epoch_examples": result.epoch_examples,
        "seconds": {"scan": scan_s, "train": result.seconds, "write": write_s},
        "outputs": {"vectors": output, "format": fmt, "config": config_path},
    }


@dataclass
class GloveResult:
    """w_word, w_ctx : float32[V, d]; b_word, b_ctx : float32[V]; epoch_cost: mean J per entry."""

    w_word: np.ndarray
    w_ctx: np.ndarray
    b_word: np.ndarray
    b_ctx: np.ndarray
    epoch_cost: List[float] = field(default_factory=list)
    entries_trained: int = 0
    seconds: float = 0.0

    def vectors(self, which: str = "word+context") -> np.ndarray:
        """The output vectors: W + W~ (GloVe's default) or W alone."""
        return self.w_word + self.w_ctx if which == "word+context" else self.w_word


def train_glove(cooc, cfg: GloveConfig, progress: bool = True) -> GloveResult:
    """Train GloVe on a Cooccurrence with cfg.threads lock-free AdaGrad threads.

    The entries are shuffled once (as Stanford's ``shuffle``); each thread trains a contiguous
    slice of them every epoch, as glove.c does. Parameters start uniform(-0.5, 0.5) / dim, the
    squared-gradient sums at 1.
    """
    from . import kernels

    cfg.validate()
    if cooc.nnz == 0:
        raise InputError("the co-occurrence matrix is empty; count it from a larger corpus or lower --min-count.")
    if np.any(cooc.values <= 0):
        raise InputError("the co-occurrence file has non-positive counts; count it again with `w2v-async cooccur`.")
    n_words = len(cooc.vocab)
    if cooc.rows.max() >= n_words or cooc.cols.max() >= n_words:
        raise InputError("the co-occurrence file indexes words outside its vocabulary; count it again.")
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(cooc.nnz)
    coo = (cooc.rows[order], cooc.cols[order], cooc.values[order])
    del order
    scale = np.float32(1.0 / cfg.dim)
    params = tuple(
        np.ascontiguousarray((rng.random(shape, dtype=np.float32) - np.float32(0.5)) * scale)
        for shape in ((n_words, cfg.dim), (n_words, cfg.dim), (n_words,), (n_words,))
    )
    gradsq = tuple(np.ones_like(p) for p in params)
    hyper = np.array([cfg.x_max, cfg.alpha, cfg.eta], np.float64)
    n_threads = min(cfg.threads, cooc.nnz)
    cuts = np.linspace(0, cooc.nnz, n_threads + 1).astype(np.int64)
    slices = [tuple(a[cuts[t] : cuts[t + 1]] for a in coo) for t in range(n_threads)]

    def run_epoch(t, epoch, counters):
        return kernels.train_glove_epoch(params, gradsq, slices[t], hyper, counters, t)

    def postfix(counters):
        epoch = min(int(counters[1:].sum()) // cooc.nnz, cfg.epochs - 1) + 1
        return {"epoch": f"{epoch}/{cfg.epochs}"}

    cost, entries, counters, seconds = run_hogwild(
        n_threads, cfg.epochs, run_epoch, cooc.nnz * cfg.epochs, progress, f"glove x{n_threads}", postfix,
        unit=" entries",
    )
    per_epoch = entries.sum(axis=0)
    return GloveResult(
        *params,
        epoch_cost=[float(c / max(n, 1)) for c, n in zip(cost.sum(axis=0), per_epoch)],
        entries_trained=int(counters[1:].sum()),
        seconds=seconds,
    )


def train_glove_from_corpus(
    source: Optional[str],
    output: str,
    vocab_cfg: VocabConfig,
    cfg: GloveConfig,
    cooccur_path: Optional[str] = None,
    vocab_path: Optional[str] = None,
    fmt: str = "auto",
    progress: bool = True,
    log: Callable[[str], None] = lambda msg: None,
) -> dict:
    """The ``w2v-async train --model glove`` job: count co-occurrences (or load them), train, write.

    Exactly one of source and cooccur_path is given. Nothing is written unless training finishes.
    """
    from .cooccur import Cooccurrence, count_cooccurrences

    vocab_cfg.validate()
    cfg.validate()
    if (source is None) == (cooccur_path is None):
        raise ConfigError("give a CORPUS or --cooccur FILE (not both) to train GloVe.")
    check_output_path(output)
    fmt = resolve_format(output, fmt)
    t0 = time.perf_counter()
    if cooccur_path is not None:
        cooc = Cooccurrence.load(cooccur_path)
        if vocab_path is not None:
            expected = Vocab.load(vocab_path, vocab_cfg.min_count, vocab_cfg.max_final_vocab)
            if expected.words != cooc.vocab.words:
                raise InputError(
                    f"{cooccur_path} was counted with another vocabulary ({len(cooc.vocab)} words) than "
                    f"{vocab_path} ({len(expected)} words); count it again with --vocab {vocab_path}."
                )
        log(f"co-occurrences: {cooc.nnz} entries over {len(cooc.vocab)} words from {cooccur_path}")
    else:
        _, vocab, encoded = read_corpus(source, vocab_cfg, vocab_path, log)
        directory = os.path.dirname(os.path.abspath(output))
        cooc = count_cooccurrences(encoded, vocab, cfg.window, cfg.symmetric, cfg.memory_gb, cfg.threads, directory)
        del encoded
        log(f"co-occurrences: {cooc.nnz} entries from {cooc.n_runs} sorted run(s)")
    prepare_s = time.perf_counter() - t0
    result = train_glove(cooc, cfg, progress=progress)
    t1 = time.perf_counter()
    save_vectors(output, cooc.vocab.words, result.vectors(cfg.vectors), fmt)
    config_path = output + ".json"
    with atomic_write(config_path) as f:
        f.write(to_json(vocab=vocab_cfg, train=cfg) + "\n")
    return {
        "model": "glove",
        "config": {"vocab": dataclasses.asdict(vocab_cfg), "train": dataclasses.asdict(cfg)},
        "vocab_size": len(cooc.vocab),
        "nnz": cooc.nnz,
        "entries_trained": result.entries_trained,
        "entries_per_sec": result.entries_trained / result.seconds if result.seconds > 0 else 0.0,
        "epoch_cost": result.epoch_cost,
        "seconds": {"cooccur": prepare_s, "train": result.seconds, "write": time.perf_counter() - t1},
        "outputs": {"vectors": output, "format": fmt, "config": config_path},
    }
