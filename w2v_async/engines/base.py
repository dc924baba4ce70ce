"""What an engine is given and returns: results, the run state a checkpoint holds, how a run saves
and resumes, and the setup every engine shares (matrices, RNG streams, scratch, progress bar)."""

import logging
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Protocol

import numpy as np
from tqdm import tqdm

from ..config import RayConfig, Word2VecConfig
from ..data.init import StartFrom
from ..data.shuffle import shuffled_entries
from ..errors import ConfigError, DivergedError, InputError
from ..models.common import RUN

PROGRESS_REFRESH_S = 0.25


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
    ngram_buckets: Optional[np.ndarray] = None  # --subwords: the bucket of each row of params["w_sub"]

    @property
    def words_per_sec(self) -> float:
        return self.words_trained / self.seconds if self.seconds > 0 else 0.0


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
    ngram_buckets: Optional[np.ndarray] = None  # --subwords: the bucket of each row of params["w_sub"]

    def vectors(self, which: str = "word+context") -> np.ndarray:
        """The output vectors: W + W~ (GloVe's default) or W alone."""
        return self.w_word + self.w_ctx if which == "word+context" else self.w_word


# the arrays a GloVe checkpoint saves, by name
GLOVE_ARRAY_NAMES = ("w_word", "w_ctx", "b_word", "b_ctx", "gradsq_word", "gradsq_ctx", "gradsq_b_word", "gradsq_b_ctx")


def word2vec_arrays(cfg: Word2VecConfig, n_words: int, n_ngram_rows: int = 0):
    """The names and shapes of the arrays a word2vec run trains and checkpoints: w_in, w_out (not
    with --hs --negative 0: never read), syn1 with --hs (the V - 1 inner nodes' rows), and w_sub
    with --subwords (the n_ngram_rows buckets the vocabulary's n-grams use)."""
    names = ("w_in",) + (("w_out",) if cfg.negative > 0 else ()) + (("syn1",) if cfg.hs else ()) \
        + (("w_sub",) if cfg.subwords else ())
    shapes = {"w_in": (n_words, cfg.dim), "w_out": (n_words, cfg.dim), "syn1": (max(n_words - 1, 0), cfg.dim),
              "w_sub": (n_ngram_rows, cfg.dim)}
    return names, [shapes[name] for name in names]


def thread_scratch(cfg: Word2VecConfig, max_sentence: int, hot: Optional[tuple] = None) -> tuple:
    """One thread's (or replica's) kernel scratch for cfg's model; hot: its hot_scratch tuple (none
    by default)."""
    from ..models.hot_rows import hot_scratch  # word2vec's kernels: compiled only by a word2vec run
    from ..models.word2vec import word2vec_scratch

    update = "cbow" if cfg.model == "cbow" else ("pair" if cfg.subwords else cfg.update)  # subwords: pair buffers
    hot = hot if hot is not None else hot_scratch(0, 0, 1, cfg.dim)
    return word2vec_scratch(update, cfg.dim, cfg.window, cfg.negative, max_sentence, hot)


def init_matrices(n_words: int, dim: int, seed: int, scale: float = 0.5):
    """w_in ~ uniform(-scale, scale) / dim, w_out = 0 (float32, C order): word2vec.c's with scale
    0.5, gensim's with 1 (Word2VecConfig.init_scale says which model uses which)."""
    rng = np.random.default_rng(seed)
    w_in = rng.random((n_words, dim), dtype=np.float32)
    w_in -= np.float32(0.5)  # in place: no second matrix-sized temporary
    w_in /= np.float32(dim / (2.0 * scale))  # scale 0.5: the same division as word2vec.c
    return w_in, np.zeros((n_words, dim), np.float32)


def thread_rng_states(seed: int, n_threads: int) -> List[np.ndarray]:
    """One non-zero uint64 xorshift state per thread, derived from the seed."""
    seqs = np.random.SeedSequence(seed).spawn(n_threads)
    states = []
    for s in seqs:
        x = s.generate_state(1, np.uint64)
        x[0] |= np.uint64(1)
        states.append(x)
    return states


class Progress:
    """tqdm on stderr, owned by the main thread; workers only bump counters."""

    def __init__(self, total: int, enabled: bool, desc: str, unit: str):
        self.bar = None
        if enabled:
            self.bar = tqdm(total=total, unit=unit, unit_scale=True, desc=desc, dynamic_ncols=True, leave=True)

    def update(self, done: int, **postfix) -> None:
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class StopSignal(Protocol):
    """What an engine polls to stop early (job.Interrupts): ``signal`` is None until a SIGINT or
    SIGTERM asks the run to stop, then the signal's name. A signal whose ``needs_progress`` is true
    (the experiment's time budgets, experiment/record.Budget) is obeyed only once the run has done
    some work (stop_asked): a run that measures words/s measures at least one progress tick,
    however late a loaded machine starts its threads."""

    signal: Optional[str]


def stop_asked(interrupts: Optional[StopSignal], done: int) -> bool:
    """Whether interrupts asks the run to stop now, done units (words, entries, jobs) into it."""
    if interrupts is None or interrupts.signal is None:
        return False
    return done > 0 or not getattr(interrupts, "needs_progress", False)


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
    interrupts: Optional["StopSignal"] = None
    init: Optional[StartFrom] = None  # --init: a new run's parameters start from a trained model's
    lockf: Optional[np.ndarray] = None  # float32[V]: each word's input-row update factor (--lock-init)



def check_finite(params: Dict[str, np.ndarray], state: RunState) -> None:
    """Raise DivergedError when any parameter is NaN or infinite (before anything is written)."""
    for name, a in params.items():
        for first in range(0, a.shape[0], 1 << 16):  # rows in pieces: no matrix-sized temporary
            if not np.isfinite(a[first: first + (1 << 16)]).all():
                raise DivergedError(state.diverged_epoch(), state.loss.shape[1], f"{name}")


def resumed_arrays(arrays: Optional[Dict[str, np.ndarray]], names, shapes) -> Optional[List[np.ndarray]]:
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


def glove_setup(cooc, cfg, ckpt: "Checkpointing", spill_dir: Optional[str]):
    """GloVe's shuffled entries (data/shuffle.py, within cfg.memory_gb: every engine sees the same
    order) and its eight arrays (GLOVE_ARRAY_NAMES): a checkpoint's when resuming, else the
    parameters uniform(-0.5, 0.5) / dim and AdaGrad's sums at 1, with --init's rows where given."""
    if cooc.nnz == 0:
        raise InputError("the co-occurrence matrix is empty; count it from a larger corpus or lower --min-count.")
    rng = np.random.default_rng(cfg.seed)
    coo = shuffled_entries(cooc, rng, cfg.memory_gb, spill_dir)
    n_words = len(cooc.vocab)
    shapes = [(n_words, cfg.dim), (n_words, cfg.dim), (n_words,), (n_words,)]
    resumed = resumed_arrays(ckpt.resume, GLOVE_ARRAY_NAMES, shapes * 2)
    if resumed is not None:
        return coo, resumed
    scale = np.float32(1.0 / cfg.dim)
    arrays = [np.ascontiguousarray((rng.random(shape, dtype=np.float32) - np.float32(0.5)) * scale) for shape in shapes]
    arrays += [np.ones_like(a) for a in arrays]
    if ckpt.init is not None:  # --init: the source's rows for its words
        ckpt.init.fill(dict(zip(GLOVE_ARRAY_NAMES, arrays)))
    return coo, arrays


def resumed_state(arrays: Dict[str, np.ndarray], n_threads: int, positions: Callable[[int], List[int]],
                   rng: List[np.ndarray], sizes: Callable[[int], List[int]]) -> RunState:
    """A checkpoint's RunState for n_threads threads: as saved when its thread count is the same,
    else merged into one thread's (merged_state) and dealt out, where positions(items done) gives
    each thread's share and sizes(T) the items of each of T threads' shards."""
    state = RunState.from_arrays(arrays)
    if state.epoch.shape[0] == n_threads:
        return state
    if state.epoch.shape[0] > 1:
        state = merged_state(state, sizes(state.epoch.shape[0]))
    return state.dealt(positions(int(state.position[0])), rng)


def merged_state(state: RunState, sizes: List[int]) -> RunState:
    """A T-thread state as one thread's, so that a run can continue on another number of cores.

    The threads' items done in the earliest epoch any of them is in (a thread already past it has
    done all sizes[t] of its items) add up to the one thread's position: the run goes on with the
    same number of items left in that epoch, and the same words done over all epochs (counters,
    which drive the learning rate), but not always the very items that were left, and a thread's
    head start in the next epoch is trained again. Only the same thread count resumes bit for bit.
    """
    epoch = int(state.epoch.min())
    done = sum(int(p) if e == epoch else int(n) for e, p, n in zip(state.epoch, state.position, sizes))
    one = RunState.new(1, state.loss.shape[1], state.rng[:1].copy())
    one.epoch[0], one.position[0] = epoch, done
    one.counters[1] = state.counters[1:].sum()
    one.loss[0], one.examples[0], one.seconds = state.loss.sum(axis=0), state.examples.sum(axis=0), state.seconds
    return one


# ---- Ray, for the engines that run on it (ray.py, sandblaster.py) ----

RAY_INSTALL = "pip install 'w2v-async[ray]'"


def import_ray(engine: str = "ray"):
    """The ray module, or a clear error naming the install command (and the engine that needs it)."""
    try:
        import ray  # optional: the [ray] extra
    except ImportError as e:
        raise ConfigError(f"--engine {engine} needs Ray, which is not installed; install it with {RAY_INSTALL}.") from e
    return ray


def connect(rcfg: RayConfig, engine: str = "ray"):
    """Join the cluster at rcfg.address, or start a local Ray with a CPU per replica and shard."""
    ray = import_ray(engine)
    if ray.is_initialized():
        return ray
    opts = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                configure_logging=True)
    if rcfg.address:
        try:
            ray.init(address=rcfg.address, **opts)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise InputError(f"cannot join the Ray cluster at {rcfg.address!r} ({str(e).splitlines()[0]}); check "
                             "that `ray start --head` runs there and the address, set RAY_AUTH_MODE=token if the "
                             "cluster uses token authentication, or leave out --ray-address for a local Ray.") from e
    else:
        # address "local": always a new local Ray (not a `ray start` cluster this machine may run)
        ray.init(address="local", num_cpus=rcfg.replicas + rcfg.ps_shards, **opts)
    return ray


def subword_scratch(scratch, sub, w_sub, n_threads, merge_every, hot, cfg):
    """w_sub with room for each thread's private copies of the hottest n-gram rows, and the threads'
    scratch with the subword tuple (models/subwords.sub_scratch)."""
    from ..models.common import private_zeros
    from ..models.hot_rows import hot_rows
    from ..models.subwords import sub_scratch

    n_rows = len(sub.buckets)
    n_hot = hot_rows(n_rows, cfg.dim, n_threads, merge_every) if hot else 0
    w_sub = np.concatenate([w_sub, np.zeros((n_threads * n_hot, cfg.dim), np.float32)]) if n_hot else w_sub
    hots = [(np.array([n_hot, n_rows + t * n_hot, merge_every], np.int64), private_zeros(max(n_hot, 1), np.int32),
             private_zeros((n_hot, cfg.dim), np.float32)) for t in range(n_threads)]
    return w_sub, [sub_scratch(sc, w_sub, sub.starts, sub.rows, h, sub.longest, cfg.window, cfg.negative)
                   for sc, h in zip(scratch, hots)]


def composed_vectors(w_in, w_sub, sub):
    """The words' vectors of a subword model: each the mean of its row and its n-grams' rows."""
    from ..models.subwords import compose

    out = np.empty_like(w_in)
    compose(w_in, w_sub, sub.starts, sub.rows, out)
    return out
