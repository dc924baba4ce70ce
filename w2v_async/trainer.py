"""Hogwild orchestration: shared matrices, one thread per shard, learning-rate schedule, progress."""

import dataclasses
import hashlib
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .config import GloveConfig, RayConfig, VocabConfig, Word2VecConfig, to_json
from .data.corpus import EncodedCorpus, check_output_path
from .errors import ConfigError, InputError, W2VError
from .io import atomic_write, load_checkpoint, resolve_format, save_checkpoint, save_vectors
from .models.common import DIVERGED, PAUSE, RUN, STOP
from .models.glove import train_glove_epoch
from .models.hot_rows import hot_row_merge_every, hot_rows, hot_scratch
from .models.sampling import build_alias_table, learning_rate
from .models.word2vec import word2vec_scratch
from .models.word2vec_loops import train_cbow_epoch, train_sgns_epoch, train_sgns_window_epoch
from .data.vocab import Vocab, read_corpus

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
    state: Optional["RunState"] = None
    params: Dict[str, np.ndarray] = field(default_factory=dict)  # what a checkpoint saves
    downpour: Dict[str, float] = field(default_factory=dict)  # --engine ray: staleness, pushes, timings

    @property
    def words_per_sec(self) -> float:
        return self.words_trained / self.seconds if self.seconds > 0 else 0.0


def thread_scratch(cfg: Word2VecConfig, max_sentence: int, hot: Optional[tuple] = None) -> tuple:
    """One thread's (or replica's) kernel scratch for cfg's model; hot: its hot_scratch tuple (none
    by default)."""
    update = "cbow" if cfg.model == "cbow" else cfg.update
    hot = hot if hot is not None else hot_scratch(0, 0, 1, cfg.dim)
    return word2vec_scratch(update, cfg.dim, cfg.window, cfg.negative, max_sentence, hot)


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


@dataclass
class RunState:
    """Where every thread of a run is: all a checkpoint needs besides the parameters.

    epoch, position : int64[T], thread t's epoch and the shard items (sentences, entries) it has
    done in it; counters : int64[1 + T] as the kernels use them (flag, units done per thread over
    all epochs); loss : float64[T, E] and examples : int64[T, E] summed so far; rng : uint64[T];
    seconds : training time so far, over all resumed runs.
    """

    epoch: np.ndarray
    position: np.ndarray
    counters: np.ndarray
    loss: np.ndarray
    examples: np.ndarray
    rng: np.ndarray
    seconds: float = 0.0
    stopped: bool = False  # the run stopped early on a signal or Ctrl-C

    @classmethod
    def new(cls, n_threads: int, epochs: int, rng: Optional[np.ndarray] = None) -> "RunState":
        return cls(
            np.zeros(n_threads, np.int64), np.zeros(n_threads, np.int64), np.zeros(1 + n_threads, np.int64),
            np.zeros((n_threads, epochs), np.float64), np.zeros((n_threads, epochs), np.int64),
            np.zeros(n_threads, np.uint64) if rng is None else rng,
        )

    def to_arrays(self) -> Dict[str, np.ndarray]:
        counters = self.counters.copy()
        counters[0] = RUN
        return {
            "run_epoch": self.epoch, "run_position": self.position, "run_counters": counters,
            "run_loss": self.loss, "run_examples": self.examples, "run_rng": self.rng,
            "run_seconds": np.array([self.seconds]),
        }

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray]) -> "RunState":
        return cls(*(arrays["run_" + k].copy() for k in ("epoch", "position", "counters", "loss", "examples", "rng")),
                   seconds=float(arrays["run_seconds"][0]))

    def dealt(self, positions: List[int], rng: List[np.ndarray]) -> "RunState":
        """A one-thread state (the Ray engine's, or --threads 1) spread over len(positions) threads.

        One thread had done the first self.position items (sentences, entries) of its epoch;
        positions[t] is how many of thread t's own items are among them. The unit count goes to
        thread 0 (the learning rate only needs the sum); the RNG streams start anew.
        """
        n = len(positions)
        state = RunState.new(n, self.loss.shape[1], np.concatenate(rng))
        state.epoch[:] = self.epoch[0]
        state.position[:] = positions
        state.counters[1] = self.counters[1]
        state.loss[0], state.examples[0], state.seconds = self.loss[0], self.examples[0], self.seconds
        return state

    def diverged_epoch(self) -> int:
        """1-based epoch whose loss first turned non-finite (else the epoch being trained)."""
        bad = ~np.isfinite(self.loss).all(axis=0)
        if bad.any():
            return int(np.argmax(bad)) + 1
        return int(min(self.epoch.max() + 1, self.loss.shape[1]))


class DivergedError(W2VError):
    """The loss or a vector became NaN or infinite; nothing non-finite was written."""

    def __init__(self, epoch: int, epochs: int, what: str = "the loss"):
        self.epoch, self.epochs, self.what = epoch, epochs, what
        super().__init__(f"training diverged in epoch {epoch}/{epochs}: {what} became NaN or infinite.")


class Interrupts:
    """While active, SIGINT and SIGTERM ask the run to stop cleanly; a second one exits at once.

    The first signal only records itself (``.signal``); run_hogwild polls it, stops the threads at
    their next progress tick and returns, so the caller can save a checkpoint. A second signal
    raises KeyboardInterrupt wherever the main thread is: atomic writes then remove their
    temporary file and nothing already written is touched. Outside the main thread it does nothing.
    """

    def __init__(self):
        self.signal: Optional[str] = None
        self._saved = {}

    def _handle(self, signum, frame):
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved = {}


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
    interrupts: Optional[Interrupts] = None,
) -> RunState:
    """Run every remaining epoch on n_threads lock-free threads, from state (updated in place).

    ``run_chunk(t, epoch, start, counters) -> (loss, examples, items)`` trains thread t's shard
    from item start on, and returns early (items < the rest) when counters[0] is not RUN. The
    kernels share counters: counters[0] is the flag (RUN, STOP, PAUSE, DIVERGED), counters[1 + t]
    the units thread t has done; only this thread reads them for the progress bar. Threads do not
    wait for each other between epochs.

    With ``checkpoint``, the threads pause together (each at its next progress tick) every
    checkpoint_every_s seconds and when the last of them finishes an epoch, and checkpoint(state)
    runs while they wait; it also runs once at the end. A signal (see Interrupts) or Ctrl-C stops
    the threads at their next tick and returns the state with ``stopped`` set (Ctrl-C without
    Interrupts re-raises KeyboardInterrupt). A worker's exception is re-raised; a non-finite
    loss raises DivergedError.
    """
    counters = state.counters
    counters[0] = RUN
    errors: List[BaseException] = []
    cond = threading.Condition()
    parked = [0, 0]  # threads waiting for a checkpoint, threads finished

    def park() -> None:
        with cond:
            parked[0] += 1
            cond.notify_all()
            cond.wait_for(lambda: counters[0] != PAUSE)
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
                loss, examples, items = run_chunk(t, epoch, int(state.position[t]), counters)
                state.loss[t, epoch] += loss
                state.examples[t, epoch] += examples
                state.position[t] += items
                if not np.isfinite(loss):  # the kernel flags it too, but a pause may have overwritten that
                    counters[0] = DIVERGED
                    return
                if state.position[t] == shard_sizes[t]:
                    state.epoch[t] += 1
                    state.position[t] = 0
                    last_to_finish = state.epoch.min() > epoch
                    if checkpoint is not None and last_to_finish and epoch + 1 < epochs and counters[0] == RUN:
                        counters[0] = PAUSE
        except BaseException as e:  # surfaced by the main thread
            errors.append(e)
            counters[0] = STOP
        finally:
            with cond:
                parked[1] += 1
                cond.notify_all()

    bar = _Progress(total, progress, desc, unit)
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
                all_parked = parked[0] + parked[1] == n_threads
            bar.update(int(counters[1:].sum()), **postfix(counters))
            if interrupts is not None and interrupts.signal and counters[0] in (RUN, PAUSE):
                state.stopped = True
                with cond:
                    counters[0] = STOP
                    cond.notify_all()
            now = time.perf_counter()
            if checkpoint is not None and checkpoint_every_s and counters[0] == RUN \
                    and now - last_checkpoint >= checkpoint_every_s:
                counters[0] = PAUSE
            if counters[0] == PAUSE and all_parked:
                state.seconds += now - start
                start = now
                checkpoint(state)
                last_checkpoint = start = time.perf_counter()
                with cond:
                    if counters[0] == PAUSE:
                        counters[0] = RUN
                    cond.notify_all()
    except BaseException as e:
        with cond:
            counters[0] = STOP
            cond.notify_all()
        if interrupts is None or not isinstance(e, KeyboardInterrupt):  # a second signal exits at once
            for th in threads:
                th.join()
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


@dataclass
class Checkpointing:
    """How a run saves and restores its state.

    save(params, state) writes a checkpoint of the named parameter arrays (see run_hogwild for
    when); every_s adds a timed one; resume holds the arrays of a loaded checkpoint to continue
    from; interrupts turns SIGINT / SIGTERM into a clean stop.
    """

    save: Optional[Callable[[Dict[str, np.ndarray], "RunState"], None]] = None
    every_s: Optional[float] = None
    resume: Optional[Dict[str, np.ndarray]] = None
    interrupts: Optional[Interrupts] = None


def check_finite(params: Dict[str, np.ndarray], state: RunState) -> None:
    """Raise DivergedError when any parameter is NaN or infinite (before anything is written)."""
    for name, a in params.items():
        if not np.isfinite(a).all():
            raise DivergedError(state.diverged_epoch(), state.loss.shape[1], f"{name}")


def _resumed(arrays: Optional[Dict[str, np.ndarray]], names, shapes) -> Optional[List[np.ndarray]]:
    """Writable copies of a checkpoint's parameter arrays, checked against the expected shapes."""
    if arrays is None:
        return None
    out = []
    for name, shape in zip(names, shapes):
        a = arrays.get(name)
        if a is None or a.shape != shape or a.dtype != np.float32:
            raise InputError(f"the checkpoint's {name} is missing or has another shape than {shape}; "
                             "start again without --resume.")
        out.append(np.array(a, dtype=np.float32, order="C"))
    return out


def _resumed_state(arrays: Dict[str, np.ndarray], n_threads: int, positions: Callable[[int], List[int]],
                   rng: List[np.ndarray]) -> RunState:
    """A checkpoint's RunState for n_threads threads: as saved, or a one-thread state (the Ray
    engine's, or --threads 1) dealt out, where positions(items done) gives each thread's share."""
    state = RunState.from_arrays(arrays)
    if state.epoch.shape[0] == n_threads:
        return state
    if state.epoch.shape[0] != 1:
        raise InputError(f"the checkpoint was trained with {state.epoch.shape[0]} threads, this run has "
                         f"{n_threads}; resume with --threads {state.epoch.shape[0]}.")
    return state.dealt(positions(int(state.position[0])), rng)


def train_word2vec(
    corpus: EncodedCorpus,
    vocab: Vocab,
    cfg: Word2VecConfig,
    progress: bool = True,
    w_in: Optional[np.ndarray] = None,
    w_out: Optional[np.ndarray] = None,
    checkpointing: Optional[Checkpointing] = None,
) -> TrainResult:
    """Train SGNS or CBOW with cfg.threads lock-free threads on shared float32 matrices.

    Each thread owns a shard of sentences (blocks of 10,000 words dealt in turn), its RNG state
    and scratch buffers, and calls a nogil numba kernel per epoch (or per stretch between
    checkpoints); the kernel reads the other threads' word counters to decay the learning rate by
    global progress. With checkpointing.resume, training continues where that checkpoint stopped.
    """
    cfg.validate()
    ckpt = checkpointing or Checkpointing()
    if cfg.model == "cbow":
        kernel = train_cbow_epoch
    else:
        kernel = train_sgns_window_epoch if cfg.update == "window" else train_sgns_epoch
    n_words = len(vocab)
    n_threads = min(cfg.threads, max(1, corpus.n_sentences))
    resumed = _resumed(ckpt.resume, ("w_in", "w_out"), [(n_words, cfg.dim)] * 2)
    shards = corpus.shards(n_threads)
    if resumed is not None:
        w_in, w_out = resumed
        state = _resumed_state(ckpt.resume, n_threads, lambda done: [int(np.searchsorted(sh, done)) for sh in shards],
                               thread_rng_states(cfg.seed + 1, n_threads))
    else:
        if w_in is None or w_out is None:
            w_in, w_out = init_matrices(n_words, cfg.dim, cfg.seed)
        state = RunState.new(n_threads, cfg.epochs, np.concatenate(thread_rng_states(cfg.seed, n_threads)))
    merge_every = hot_row_merge_every(n_threads, cfg.start_alpha / cfg.default_alpha)
    n_hot = hot_rows(n_words, cfg.dim, n_threads, merge_every)
    if n_hot:  # one private copy of the hot rows per thread, below the shared rows
        w_in = np.concatenate([w_in, np.zeros((n_threads * n_hot, cfg.dim), np.float32)])
        w_out = np.concatenate([w_out, np.zeros((n_threads * n_hot, cfg.dim), np.float32)])
    noise_prob, noise_alias = build_alias_table(vocab.noise_distribution())
    tables = (vocab.keep_probs(cfg.sample), noise_prob, noise_alias)
    total_words = corpus.n_words * cfg.epochs
    sched = np.array([cfg.start_alpha, cfg.min_alpha, max(total_words, 1)], np.float64)
    max_sentence = int(np.diff(corpus.sent_starts).max(initial=1))
    scratch = [thread_scratch(cfg, max_sentence, hot_scratch(n_hot, n_words + t * n_hot, merge_every, cfg.dim))
               for t in range(n_threads)]
    params = {"w_in": w_in[:n_words], "w_out": w_out[:n_words]}

    def run_chunk(t, epoch, start, counters):
        shard = (corpus.ids, corpus.sent_starts, shards[t][start:])
        loss_sum, n_examples, _, n_sentences = kernel(
            w_in, w_out, shard, tables, sched, state.rng[t : t + 1], counters, t, cfg.window, scratch[t]
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
        w_in=params["w_in"],
        w_out=params["w_out"],
        epoch_loss=[float(s / max(n, 1)) for s, n in zip(loss_sum, n_examples)],
        epoch_loss_sum=[float(s) for s in loss_sum],
        epoch_examples=[int(n) for n in n_examples],
        words_trained=int(state.counters[1:].sum()),
        seconds=state.seconds,
        state=state,
        params=params,
    )


class Interrupted(W2VError):
    """A signal stopped training; a checkpoint and the vectors so far were written."""

    def __init__(self, signal_name: str, checkpoint_dir: str, checkpoint_path: str, partial: str, done: str):
        self.signal_name, self.checkpoint_dir, self.checkpoint_path, self.partial = (
            signal_name, checkpoint_dir, checkpoint_path, partial)
        super().__init__(
            f"stopped by {signal_name} {done}; saved checkpoint {checkpoint_path} and the vectors so far in "
            f"{partial} (partial)."
        )


def partial_path(output: str) -> str:
    """Where an interrupted run writes its vectors so far: vectors.bin -> vectors.partial.bin."""
    root, ext = os.path.splitext(output)
    return f"{root}.partial{ext}"


def _fingerprint(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(memoryview(np.ascontiguousarray(a)).cast("B"))
    return h.hexdigest()


def _check_free_space(paths_bytes: Dict[str, int]) -> None:
    """Fail before training when a directory has less free space than what will be written there."""
    need: Dict[int, Tuple[str, int]] = {}
    for directory, n_bytes in paths_bytes.items():
        dev = os.stat(directory).st_dev
        where, total = need.get(dev, (directory, 0))
        need[dev] = (where, total + n_bytes)
    for where, n_bytes in need.values():
        free = shutil.disk_usage(where).free
        if free < n_bytes:
            raise InputError(
                f"{where!r} has {free / 1e6:.1f} MB free but this run writes about {n_bytes / 1e6:.1f} MB there; "
                "free some space or write elsewhere (-o, --checkpoint-dir)."
            )


class _Job:
    """What train_from_corpus and train_glove_from_corpus share: the checkpoint directory, resuming,
    checks before training, and what happens on a signal or divergence."""

    def __init__(self, model: str, output: str, vocab_cfg: VocabConfig, cfg, checkpoint_dir: Optional[str],
                 checkpoint_every: Optional[float], resume: Optional[str], log: Callable[[str], None]):
        self.model, self.output, self.vocab_cfg, self.cfg, self.log = model, output, vocab_cfg, cfg, log
        if checkpoint_every is not None and checkpoint_every < 0:
            raise ConfigError(
                f"--checkpoint-every must be >= 0 minutes (0: only at epoch ends), got {checkpoint_every}.")
        if checkpoint_every is not None and checkpoint_dir is None and resume is None:
            raise ConfigError("--checkpoint-every needs --checkpoint-dir DIR (where the checkpoints go).")
        self.directory = checkpoint_dir or resume
        self.every_s = None if checkpoint_every is None else checkpoint_every * 60.0
        if self.directory is not None and self.every_s is None:
            self.every_s = DEFAULT_CHECKPOINT_MINUTES * 60.0
        self.meta: Optional[dict] = None
        self.arrays: Optional[Dict[str, np.ndarray]] = None
        self.last_checkpoint: Optional[str] = None
        self.checkpoint_seconds: List[float] = []
        if resume is not None:
            self.meta, self.arrays, path = load_checkpoint(resume, log)
            self.last_checkpoint = path
            self._check_config()
            log(f"resuming from {path} (epoch {self.meta['epoch']}/{self.meta['epochs']}, "
                f"{self.meta['progress']:.0%} done)")
        if self.directory is not None:
            _check_directory(self.directory)

    def _check_config(self) -> None:
        saved = self.meta["config"]
        mine = {"vocab": dataclasses.asdict(self.vocab_cfg), "train": dataclasses.asdict(self.cfg)}
        if self.meta["model"] != self.model:
            raise ConfigError(f"the checkpoint trains --model {self.meta['model']}, not {self.model}; "
                              f"resume with --model {self.meta['model']}.")
        diffs = [f"{k} {mine[part][k]!r} (checkpoint: {v!r})" for part in ("vocab", "train")
                 for k, v in saved[part].items() if mine[part].get(k) != v]
        if diffs:
            raise ConfigError(f"these settings differ from the checkpoint's: {', '.join(diffs)}; resume with the "
                              "checkpoint's settings or start a new --checkpoint-dir.")

    def check_data(self, words: List[str], fingerprint: str, what: str) -> None:
        """Refuse to resume on another vocabulary or other training data than the checkpoint's."""
        self.words, self.fingerprint = words, fingerprint
        if self.arrays is None:
            return
        saved_words = self.arrays["words"].tolist()
        if saved_words != words:
            raise InputError(f"this {what} gives another vocabulary ({len(words)} words) than the checkpoint's "
                             f"({len(saved_words)} words); resume with the same corpus, --vocab and --min-count.")
        if self.meta["data"] != fingerprint:
            raise InputError(f"this {what} differs from the one the checkpoint was trained on; resume with the "
                             "same input.")

    def check_space(self, n_words: int, dim: int, fmt: str, n_param_floats: int) -> None:
        per_vector = dim * 4 if fmt == "bin" else dim * 12
        needs = {os.path.dirname(os.path.abspath(self.output)): n_words * (per_vector + 32)}
        if self.directory is not None:
            checkpoint = n_param_floats * 4 + n_words * 64
            needs[os.path.abspath(self.directory)] = needs.get(os.path.abspath(self.directory), 0) + 2 * checkpoint
        _check_free_space(needs)

    def save(self, params: Dict[str, np.ndarray], state: RunState) -> None:
        """Write a checkpoint of params and state into the directory (never a non-finite one)."""
        check_finite(params, state)
        t0 = time.perf_counter()
        epochs = state.loss.shape[1]
        meta = {
            "model": self.model,
            "config": {"vocab": dataclasses.asdict(self.vocab_cfg), "train": dataclasses.asdict(self.cfg)},
            "data": self.fingerprint, "epoch": int(min(state.epoch.min() + 1, epochs)), "epochs": epochs,
            "progress": float(state.counters[1:].sum() / max(self.total_units, 1)), "seconds": state.seconds,
        }
        arrays = dict(params, **state.to_arrays(), words=np.array(self.words, dtype=str), counts=self.counts)
        try:
            self.last_checkpoint = save_checkpoint(self.directory, meta, arrays)
        except OSError as e:
            raise InputError(f"could not write a checkpoint in {self.directory!r}: {e.strerror or e}; "
                             "free some space or choose another --checkpoint-dir.") from e
        self.checkpoint_seconds.append(time.perf_counter() - t0)

    def checkpointing(self, interrupts: Interrupts, counts: np.ndarray, total_units: int) -> Checkpointing:
        """How the trainer should checkpoint and resume; counts : the vocabulary's, total_units :
        the words (or entries) of the whole run, for the progress a checkpoint records."""
        self.counts, self.total_units = counts, total_units
        return Checkpointing(save=self.save if self.directory is not None else None, every_s=self.every_s,
                             resume=self.arrays, interrupts=interrupts)

    def train_and_write(self, run: Callable[[Checkpointing], object], counts: np.ndarray, total_units: int,
                        vectors: Callable[[object], np.ndarray], fmt: str, rate: Tuple[str, float]):
        """run(checkpointing) -> result under Interrupts, then the vectors and config, atomically.

        A signal writes a checkpoint and the vectors so far and raises Interrupted; divergence raises
        an error naming rate = (flag, value). Returns (result, config path, seconds writing).
        """
        config_json = to_json(vocab=self.vocab_cfg, train=self.cfg)
        with Interrupts() as interrupts:
            try:
                result = run(self.checkpointing(interrupts, counts, total_units))
                if result.state.stopped:
                    raise self.interrupted(result, interrupts.signal,
                                           lambda path: _write_outputs(path, self.words, vectors(result), fmt,
                                                                       config_json))
                check_finite(result.params, result.state)
            except DivergedError as e:
                raise self.diverged(e, *rate) from e
            t0 = time.perf_counter()
            config_path = _write_outputs(self.output, self.words, vectors(result), fmt, config_json)
        return result, config_path, time.perf_counter() - t0

    def diverged(self, e: DivergedError, rate_flag: str, rate: float) -> InputError:
        kept = (f" The last good checkpoint, {self.last_checkpoint}, is kept." if self.last_checkpoint else "")
        return InputError(f"{e} No vectors were written. Lower {rate_flag} (it was {rate:g}; try {rate / 10:g}).{kept}")

    def interrupted(self, result, signal_name: str, write_partial: Callable[[str], None]) -> Interrupted:
        """Write a checkpoint and the vectors so far after a signal; returns the exception to raise."""
        state = result.state
        if self.directory is None:
            self.directory = self.output + ".checkpoint"
            _check_directory(self.directory)
        self.save(result.params, state)
        partial = partial_path(self.output)
        write_partial(partial)
        epochs = state.loss.shape[1]
        done = (f"in epoch {int(min(state.epoch.min() + 1, epochs))}/{epochs} "
                f"({state.counters[1:].sum() / max(self.total_units, 1):.0%} done)")
        return Interrupted(signal_name, self.directory, self.last_checkpoint, partial, done)


DEFAULT_CHECKPOINT_MINUTES = 10.0


def _check_directory(directory: str) -> None:
    """Create a checkpoint directory, or fail before training if it cannot be written."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ConfigError(f"checkpoint directory {directory!r} is a file; give a directory path.")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot create checkpoint directory {directory!r}: {e.strerror}; choose another path.") from e
    if not os.access(directory, os.W_OK):
        raise ConfigError(f"checkpoint directory {directory!r} is not writable; choose another --checkpoint-dir.")


def _write_outputs(output: str, words: List[str], vectors: np.ndarray, fmt: str, config_json: str) -> str:
    """The vectors and OUTPUT.json, atomically; a failed write (disk full) names the fix."""
    config_path = output + ".json"
    try:
        save_vectors(output, words, vectors, fmt)
        with atomic_write(config_path) as f:
            f.write(config_json + "\n")
    except OSError as e:
        raise InputError(f"could not write {output!r}: {e.strerror or e}; free some space or choose another -o "
                         "(nothing partial was left behind).") from e
    return config_path


def train_from_corpus(
    source: str,
    output: str,
    vocab_cfg: VocabConfig,
    cfg: Word2VecConfig,
    vocab_path: Optional[str] = None,
    fmt: str = "auto",
    progress: bool = True,
    log: Callable[[str], None] = lambda msg: None,
    checkpoint_dir: Optional[str] = None,
    checkpoint_every: Optional[float] = None,
    resume: Optional[str] = None,
    ray: Optional[RayConfig] = None,
) -> dict:
    """The whole ``w2v-async train`` job: read, encode, train, write vectors and config atomically.

    With ray (a RayConfig), training runs as Downpour SGD on Ray (downpour.py) instead of threads.

    With checkpoint_dir, the state is saved there every checkpoint_every minutes (default 10) and
    at every epoch end; resume continues from the newest good checkpoint in that directory (and
    keeps checkpointing there). SIGINT / SIGTERM save a checkpoint and the vectors so far, then
    raise Interrupted. Returns a JSON-ready summary (config, vocabulary size, words trained,
    words/s, loss per epoch, timings, output paths). Final outputs are written only when training
    finishes, and never with non-finite values.
    """
    vocab_cfg.validate()
    cfg.validate()
    check_output_path(output)
    fmt = resolve_format(output, fmt)
    if ray is not None:
        from .downpour import import_ray, train_word2vec_ray

        ray.validate()
        import_ray()
    job = _Job(cfg.model, output, vocab_cfg, cfg, checkpoint_dir, checkpoint_every, resume, log)
    t0 = time.perf_counter()
    reader, vocab, encoded = read_corpus(source, vocab_cfg, vocab_path, log)
    job.check_data(vocab.words, _fingerprint(encoded.ids, encoded.sent_starts), "corpus")
    job.check_space(len(vocab), cfg.dim, fmt, 2 * len(vocab) * cfg.dim)
    scan_s = time.perf_counter() - t0
    run = (lambda ckpt: train_word2vec(encoded, vocab, cfg, progress=progress, checkpointing=ckpt)) if ray is None \
        else (lambda ckpt: train_word2vec_ray(encoded, vocab, cfg, ray, progress=progress, checkpointing=ckpt))
    result, config_path, write_s = job.train_and_write(
        run, vocab.counts, encoded.n_words * cfg.epochs, lambda res: res.w_in, fmt, ("--alpha", cfg.start_alpha))
    extra = {"engine": "ray", "ray": dataclasses.asdict(ray), "downpour": result.downpour} if ray else {}
    return {
        "model": cfg.model,
        **extra,
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
        "seconds": {"scan": scan_s, "train": result.seconds, "write": write_s,
                    "checkpoints": job.checkpoint_seconds},
        "outputs": {"vectors": output, "format": fmt, "config": config_path, "checkpoint": job.last_checkpoint},
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
    state: Optional[RunState] = None
    params: Dict[str, np.ndarray] = field(default_factory=dict)  # what a checkpoint saves
    downpour: Dict[str, float] = field(default_factory=dict)  # --engine ray: staleness, pushes, timings

    def vectors(self, which: str = "word+context") -> np.ndarray:
        """The output vectors: W + W~ (GloVe's default) or W alone."""
        return self.w_word + self.w_ctx if which == "word+context" else self.w_word


GLOVE_PARAMS = ("w_word", "w_ctx", "b_word", "b_ctx", "gradsq_word", "gradsq_ctx", "gradsq_b_word", "gradsq_b_ctx")


def train_glove(cooc, cfg: GloveConfig, progress: bool = True,
                checkpointing: Optional[Checkpointing] = None) -> GloveResult:
    """Train GloVe on a Cooccurrence with cfg.threads lock-free AdaGrad threads.

    The entries are shuffled once (as Stanford's ``shuffle``); each thread trains a contiguous
    slice of them every epoch, as glove.c does. Parameters start uniform(-0.5, 0.5) / dim, the
    squared-gradient sums at 1. With checkpointing.resume, training continues where that
    checkpoint stopped, AdaGrad sums included.
    """
    cfg.validate()
    ckpt = checkpointing or Checkpointing()
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
    n_threads = min(cfg.threads, cooc.nnz)
    shapes = [(n_words, cfg.dim), (n_words, cfg.dim), (n_words,), (n_words,)] * 2
    resumed = _resumed(ckpt.resume, GLOVE_PARAMS, shapes)
    cuts = np.linspace(0, cooc.nnz, n_threads + 1).astype(np.int64)
    if resumed is not None:
        arrays = resumed
        state = _resumed_state(ckpt.resume, n_threads,
                               lambda done: [int(np.clip(done - cuts[t], 0, cuts[t + 1] - cuts[t]))
                                             for t in range(n_threads)],
                               [np.zeros(1, np.uint64)] * n_threads)
    else:
        scale = np.float32(1.0 / cfg.dim)
        arrays = [np.ascontiguousarray((rng.random(shape, dtype=np.float32) - np.float32(0.5)) * scale)
                  for shape in shapes[:4]]
        arrays += [np.ones_like(p) for p in arrays]
        state = RunState.new(n_threads, cfg.epochs)
    params, gradsq = tuple(arrays[:4]), tuple(arrays[4:])
    hyper = np.array([cfg.x_max, cfg.alpha, cfg.eta], np.float64)
    slices = [tuple(a[cuts[t] : cuts[t + 1]] for a in coo) for t in range(n_threads)]

    def run_chunk(t, epoch, start, counters):
        part = tuple(a[start:] for a in slices[t])
        cost, entries = train_glove_epoch(params, gradsq, part, hyper, counters, t)
        return cost, entries, entries

    def postfix(counters):
        epoch = min(int(counters[1:].sum()) // cooc.nnz, cfg.epochs - 1) + 1
        return {"epoch": f"{epoch}/{cfg.epochs}"}

    named = dict(zip(GLOVE_PARAMS, arrays))
    save = (lambda st: ckpt.save(named, st)) if ckpt.save is not None else None
    run_hogwild(
        n_threads, cfg.epochs, run_chunk, [len(sl[0]) for sl in slices], state, cooc.nnz * cfg.epochs, progress,
        f"glove x{n_threads}", postfix, unit=" entries", checkpoint=save, checkpoint_every_s=ckpt.every_s,
        interrupts=ckpt.interrupts,
    )
    return GloveResult(
        *params,
        epoch_cost=[float(c / max(n, 1)) for c, n in zip(state.loss.sum(axis=0), state.examples.sum(axis=0))],
        entries_trained=int(state.counters[1:].sum()),
        seconds=state.seconds,
        state=state,
        params=named,
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
    checkpoint_dir: Optional[str] = None,
    checkpoint_every: Optional[float] = None,
    resume: Optional[str] = None,
    ray: Optional[RayConfig] = None,
) -> dict:
    """The ``w2v-async train --model glove`` job: count co-occurrences (or load them), train, write.

    With ray (a RayConfig), training runs as Downpour on Ray (downpour.train_glove_ray).

    Exactly one of source and cooccur_path is given. Checkpoints, resume and signals as
    train_from_corpus (a checkpoint holds the AdaGrad sums too). Nothing is written unless
    training finishes.
    """
    from .data.cooccur import Cooccurrence, count_cooccurrences

    vocab_cfg.validate()
    cfg.validate()
    if (source is None) == (cooccur_path is None):
        raise ConfigError("give a CORPUS or --cooccur FILE (not both) to train GloVe.")
    check_output_path(output)
    fmt = resolve_format(output, fmt)
    if ray is not None:
        from .downpour import import_ray, train_glove_ray

        ray.validate()
        if ray.ps_optimizer != "sgd":
            raise ConfigError("GloVe on Ray runs its own AdaGrad in the replicas; use --ps-optimizer sgd.")
        import_ray()
    job = _Job("glove", output, vocab_cfg, cfg, checkpoint_dir, checkpoint_every, resume, log)
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
    n_words = len(cooc.vocab)
    job.check_data(cooc.vocab.words, _fingerprint(cooc.rows, cooc.cols, cooc.values), "co-occurrence matrix")
    job.check_space(n_words, cfg.dim, fmt, 4 * n_words * (cfg.dim + 1))
    prepare_s = time.perf_counter() - t0
    run = (lambda ckpt: train_glove(cooc, cfg, progress=progress, checkpointing=ckpt)) if ray is None \
        else (lambda ckpt: train_glove_ray(cooc, cfg, ray, progress=progress, checkpointing=ckpt))
    result, config_path, write_s = job.train_and_write(
        run, cooc.vocab.counts, cooc.nnz * cfg.epochs, lambda res: res.vectors(cfg.vectors), fmt, ("--eta", cfg.eta))
    extra = {"engine": "ray", "ray": dataclasses.asdict(ray), "downpour": result.downpour} if ray else {}
    return {
        "model": "glove",
        **extra,
        "config": {"vocab": dataclasses.asdict(vocab_cfg), "train": dataclasses.asdict(cfg)},
        "vocab_size": n_words,
        "nnz": cooc.nnz,
        "entries_trained": result.entries_trained,
        "entries_per_sec": result.entries_trained / result.seconds if result.seconds > 0 else 0.0,
        "epoch_cost": result.epoch_cost,
        "seconds": {"cooccur": prepare_s, "train": result.seconds, "write": write_s,
                    "checkpoints": job.checkpoint_seconds},
        "outputs": {"vectors": output, "format": fmt, "config": config_path, "checkpoint": job.last_checkpoint},
    }
