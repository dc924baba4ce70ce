"""Frozen training configurations with one validate() each; saved as JSON beside outputs."""

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Optional, Set, Tuple

from .errors import ConfigError

MODELS = ("sgns", "cbow", "glove")
GLOVE_VECTORS = ("word+context", "word")
BATCHING = ("window", "pair")


def default_threads() -> int:
    """Cores this process may run on (all cores, as word2vec.c users expect)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


def _positive(value, flag, default):
    if value is None or value <= 0:
        raise ConfigError(f"{flag} must be a positive number, got {value}; the default is {default}.")


@dataclass(frozen=True)
class VocabConfig:
    """How a corpus becomes a vocabulary (word2vec.c / gensim semantics)."""

    min_count: int = 5
    max_vocab_size: Optional[int] = 30_000_000
    max_final_vocab: Optional[int] = None
    lowercase: bool = False
    # UTF-8 bytes; a longer token is skipped as an unknown word and counted (0: no limit). Web text
    # holds URLs, base64 blobs and minified code as single tokens of up to megabytes. Kept, each
    # costs its length in every reading thread's table (max_vocab_size of them: 30M x 100 kB would
    # be 3 TB) and they are almost never words anyone queries. word2vec.c caps a word at 100 bytes
    # by truncating it, which merges every long URL with its neighbours into one made-up word;
    # skipping keeps the vocabulary honest and bounds a table to max_vocab_size x 100 bytes.
    # English, German or Finnish words and CJK words (3 bytes a character) fit well under 100. A
    # checkpoint from before the setting existed read with no limit ("absent": resumed_config).
    max_word_length: int = dataclasses.field(default=100, metadata={"absent": 0})

    def validate(self) -> "VocabConfig":
        _positive(self.min_count, "--min-count", VocabConfig.min_count)
        if self.max_word_length is None or self.max_word_length < 0:
            raise ConfigError(f"--max-word-length must be >= 0 bytes (0: no limit), got {self.max_word_length}; "
                              f"the default is {VocabConfig.max_word_length}.")
        if self.max_vocab_size is not None:
            _positive(self.max_vocab_size, "--max-vocab-size", VocabConfig.max_vocab_size)
        if self.max_final_vocab is not None:
            _positive(self.max_final_vocab, "--max-final-vocab", "no limit")
        return self


@dataclass(frozen=True)
class Word2VecConfig:
    """Skip-gram or CBOW with negative sampling, trained by Hogwild threads.

    ``alpha=None`` means the word2vec.c default for the model: 0.025 (sgns), 0.05 (cbow).
    ``batching``: "window" trains a skip-gram window as one minibatch against one set of
    negatives (HogBatch, Ji et al. 2016), "pair" each (context, center) pair against its own
    negatives (word2vec.c). CBOW always trains one window per update, as word2vec.c.
    ``None`` means "window", the faster at the same accuracy. ``hs``: hierarchical softmax
    (word2vec.c -hs 1) beside negative sampling, or alone with ``negative=0``. ``fixed_window``:
    every window reaches ``window`` words (gensim's shrink_windows=False), not a draw in [1, window].
    """

    model: str = "sgns"
    dim: int = 100
    window: int = 5
    negative: int = 5
    ns_exponent: float = 0.75  # noise words drawn from counts^ns_exponent (gensim's; 0: uniform)
    sample: float = 1e-3
    alpha: Optional[float] = None
    min_alpha: float = 0.0001
    epochs: int = 5
    threads: int = dataclasses.field(default_factory=default_threads)
    seed: int = 1
    batching: Optional[str] = None
    hs: bool = False
    fixed_window: bool = False
    subwords: bool = False  # fastText's model: a word's input is the mean of its row and its n-grams' rows
    minn: int = 3  # n-grams of <word> of minn..maxn characters (fastText's defaults; maxn 0: none)
    maxn: int = 6
    bucket: int = 2_000_000  # rows the n-grams hash into (fastText's FNV-1a, modulo bucket)

    @property
    def update(self) -> str:
        """The update rule: "window" or "pair" (skip-gram); CBOW's word2vec.c update is "window"."""
        return self.batching or "window"

    @property
    def kernel(self) -> str:
        """The epoch kernel (word2vec_loops.EPOCH_KERNELS): pair, window or cbow, -hs with --hs."""
        if self.subwords:
            return self.model + "-sub"
        return ("cbow" if self.model == "cbow" else self.update) + ("-hs" if self.hs else "")

    @property
    def windows(self) -> Tuple[int, int]:
        """(window, shrink) for the kernels: a window reaches window minus a draw below shrink."""
        return (self.window, 1 if self.fixed_window else self.window)

    @property
    def init_scale(self) -> float:
        """w_in starts uniform(-init_scale, init_scale) / dim. Skip-gram: word2vec.c's 0.5. CBOW:
        gensim's 1. CBOW's hidden layer is the mean of up to 2 window contexts, so it starts
        smaller than any one row, and with word2vec.c's scale it trained 0.9 analogy points below
        gensim at dim 300, window 10, 3 epochs (issue 16, BENCHMARKS.md)."""
        return 1.0 if self.model == "cbow" or self.subwords else 0.5  # fastText: uniform(-1, 1) / dim

    @property
    def default_alpha(self) -> float:
        """word2vec.c's starting learning rate for the model; fastText's 0.05 with subwords."""
        return 0.05 if self.model == "cbow" or self.subwords else 0.025

    @property
    def start_alpha(self) -> float:
        return self.alpha if self.alpha is not None else self.default_alpha

    def validate(self) -> "Word2VecConfig":
        if self.model not in ("sgns", "cbow"):
            raise ConfigError(f"unknown model {self.model!r}; choose one of: {', '.join(MODELS)}.")
        defaults = {"dim": 100, "window": 5, "epochs": 5, "threads": "all cores"}
        for name, default in defaults.items():
            _positive(getattr(self, name), "--" + name, default)
        if not self.hs or not isinstance(self.negative, int) or self.negative < 0:
            _positive(self.negative, "--negative", "5; --negative 0 needs --hs (hierarchical softmax alone)")
        if not isinstance(self.ns_exponent, (int, float)) or not abs(self.ns_exponent) < float("inf"):
            raise ConfigError(f"--ns-exponent must be a finite number (0: uniform noise), got {self.ns_exponent!r}.")
        if self.sample < 0:
            raise ConfigError(f"--sample must be >= 0 (0 disables subsampling), got {self.sample}.")
        if self.start_alpha <= 0:
            raise ConfigError(f"--alpha must be positive, got {self.start_alpha}; word2vec.c uses 0.025.")
        if not 0 <= self.min_alpha <= self.start_alpha:
            raise ConfigError(
                f"--min-alpha must be between 0 and --alpha ({self.start_alpha}), got {self.min_alpha}."
            )
        if self.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {self.seed}.")
        if self.batching is not None and self.batching not in BATCHING:
            raise ConfigError(f"--batching must be one of {', '.join(BATCHING)}, got {self.batching!r}.")
        if self.subwords:
            self._validate_subwords()
        if self.model == "cbow" and self.batching == "pair":
            raise ConfigError(
                "--batching pair is for --model sgns; CBOW updates a whole window at once (as word2vec.c)."
            )
        return self

    def _validate_subwords(self) -> None:
        if self.hs:
            raise ConfigError("--subwords trains with negative sampling; drop --hs.")
        if self.batching is not None:
            raise ConfigError("--batching does not apply to --subwords: a skip-gram window is one step of the "
                              "center's n-grams against each context's negatives; drop --batching.")
        if self.minn is None or self.maxn is None or self.minn < 1 or self.maxn < 0:
            raise ConfigError(f"--minn must be >= 1 and --maxn >= 0 (0: no n-grams), got {self.minn} and "
                              f"{self.maxn}; fastText's are 3 and 6.")
        if self.maxn and self.maxn < self.minn:
            raise ConfigError(f"--maxn ({self.maxn}) is below --minn ({self.minn}); give --maxn >= --minn, or 0 "
                              "for no n-grams.")
        _positive(self.bucket, "--bucket", "2000000 (fastText's)")
        if self.bucket >= 2**31:  # fastText's files hold it as an int32
            raise ConfigError(f"--bucket must be below 2^31 (fastText's files hold it as int32), got {self.bucket}.")


ENGINES = ("threads", "ray", "sandblaster", "gpu")
PS_OPTIMIZERS = ("sgd", "adagrad")


@dataclass(frozen=True)
class RayConfig:
    """Downpour SGD on Ray (Dean et al. 2012): replicas, parameter-server shards and their messages.

    address None starts a local Ray; "auto" or "HOST:PORT" joins a cluster. A replica pulls the
    rows of n_fetch batches at once and pushes its changes every n_push batches and before each
    pull (so n_push above n_fetch acts as n_fetch). A batch is about batch_words words (before
    subsampling; GloVe: co-occurrence entries); job_words: words (entries) per job the driver
    hands out, the unit retried after a failure. ps_optimizer / ps_eta: how shards apply pushes.
    """

    replicas: int = 2
    ps_shards: int = 2
    n_fetch: int = 1
    n_push: int = 1
    ps_optimizer: str = "sgd"
    ps_eta: float = 0.05
    batch_words: int = 50_000
    job_words: int = 200_000
    address: Optional[str] = None

    def validate(self) -> "RayConfig":
        defaults = {"replicas": 2, "ps_shards": 2, "n_fetch": 1, "n_push": 1, "batch_words": 50000,
                    "job_words": 200000}
        for name, default in defaults.items():
            _positive(getattr(self, name), "--" + name.replace("_", "-"), default)
        if self.ps_optimizer not in PS_OPTIMIZERS:
            raise ConfigError(f"--ps-optimizer must be one of {', '.join(PS_OPTIMIZERS)}, got {self.ps_optimizer!r}.")
        if self.ps_eta <= 0:
            raise ConfigError(f"--ps-eta must be positive, got {self.ps_eta}; the default is 0.05.")
        return self


@dataclass(frozen=True)
class GloveConfig:
    """GloVe trained by Hogwild AdaGrad threads on shuffled co-occurrence entries (glove.c defaults)."""

    dim: int = 100
    window: int = 10
    symmetric: bool = True
    memory_gb: float = 1.0
    x_max: float = 100.0
    alpha: float = 0.75
    eta: float = 0.05
    grad_clip: float = 100.0
    epochs: int = 15
    threads: int = dataclasses.field(default_factory=default_threads)
    seed: int = 1
    vectors: str = "word+context"

    def validate(self) -> "GloveConfig":
        defaults = {"dim": 100, "window": 10, "epochs": 15, "threads": "all cores"}
        for name, default in defaults.items():
            _positive(getattr(self, name), "--" + name, default)
        if self.x_max <= 0:
            raise ConfigError(f"--x-max must be positive, got {self.x_max}; GloVe uses 100 (10 on small corpora).")
        if self.alpha <= 0:
            raise ConfigError(f"--glove-alpha must be positive, got {self.alpha}; GloVe uses 0.75.")
        if self.eta <= 0:
            raise ConfigError(f"--eta must be positive, got {self.eta}; GloVe uses 0.05.")
        if self.grad_clip <= 0:
            raise ConfigError(f"--grad-clip must be positive, got {self.grad_clip}; GloVe uses 100.")
        if self.memory_gb <= 0:
            raise ConfigError(f"--memory must be positive (GB), got {self.memory_gb}; the default is 1.")
        if self.vectors not in GLOVE_VECTORS:
            raise ConfigError(f"--vectors must be one of {', '.join(GLOVE_VECTORS)}, got {self.vectors!r}.")
        if self.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {self.seed}.")
        return self


@dataclass(frozen=True)
class SandblasterConfig:
    """Sandblaster L-BFGS for GloVe (Dean et al. 2012): the batch objective's exact gradient, computed
    by replicas over work units of unit_entries entries (a replica pushes every push_every units),
    and L-BFGS steps with history pairs. Stops after max_iter iterations, when the loss changes by
    at most ftol relative, or when the gradient's norm is at most gtol times its first."""

    history: int = 10
    max_iter: int = 100
    gtol: float = 1e-6
    ftol: float = 1e-9
    unit_entries: int = 50_000
    push_every: int = 4
    precondition: bool = True  # H0 scaled by each row's weight sum_j f(X_ij), not by one number

    def validate(self) -> "SandblasterConfig":
        defaults = {"history": ("--lbfgs-history", 10), "max_iter": ("--max-iter", 100),
                    "unit_entries": ("--batch-words", 50000), "push_every": ("push_every", 4)}
        for name, (flag, default) in defaults.items():
            _positive(getattr(self, name), flag, default)
        if self.gtol < 0 or self.ftol < 0:
            raise ConfigError(f"gtol and ftol must be >= 0 (0: never stop on it), got {self.gtol} and {self.ftol}.")
        return self


EXPERIMENT_MODELS = ("sgns", "glove")


@dataclass(frozen=True)
class ExperimentConfig:
    """`w2v-async experiment`: every update scheme on one model, corpus and settings.

    threads: the thread counts of the scaling runs (empty: powers of two up to the cores, and twice
    the cores, oversubscribed); the comparison runs at the largest of them that the cores hold.
    budget_s: each scheme's time limit in the comparison (it stops there, or when its epochs are
    done); scaling_s: each scaling run's; snapshots: timed snapshots evaluated per scheme (None:
    8, GloVe 4: its 15 short epochs add snapshots at their ends);
    downpour: the (n_fetch, n_push) settings of the Downpour runs. epochs None: 3 (sgns), 15 (glove).
    """

    model: str = "sgns"
    threads: Tuple[int, ...] = ()
    budget_s: float = 60.0
    scaling_s: float = 6.0
    snapshots: Optional[int] = None
    downpour: Tuple[Tuple[int, int], ...] = ((1, 1), (8, 8))
    epochs: Optional[int] = None
    dim: int = 100
    min_count: int = 5
    sparsity_words: int = 100_000
    max_iter: int = 100
    seed: int = 1

    @property
    def thread_counts(self) -> Tuple[int, ...]:
        if self.threads:
            return tuple(sorted(set(self.threads)))
        cores = default_threads()
        return tuple(sorted({1 << k for k in range(cores.bit_length()) if 1 << k <= cores} | {cores, 2 * cores}))

    @property
    def workers(self) -> int:
        """Threads (and Ray replicas, at least 2) of the comparison: the most that the cores hold."""
        counts = self.thread_counts
        return max([t for t in counts if t <= default_threads()] or [counts[0]])

    @property
    def n_snapshots(self) -> int:
        return self.snapshots if self.snapshots is not None else (8 if self.model == "sgns" else 4)

    @property
    def n_epochs(self) -> int:
        return self.epochs if self.epochs is not None else (3 if self.model == "sgns" else 15)

    def validate(self) -> "ExperimentConfig":
        if self.model not in EXPERIMENT_MODELS:
            raise ConfigError(f"--model must be one of {', '.join(EXPERIMENT_MODELS)} for an experiment, "
                              f"got {self.model!r}.")
        if any(t <= 0 for t in self.threads):
            raise ConfigError(f"--threads takes positive counts such as 1,2,4, got {','.join(map(str, self.threads))}.")
        for name, flag, default in (("budget_s", "--budget", 60), ("scaling_s", "--scaling-seconds", 6),
                                    ("n_snapshots", "--snapshots", "8; 4 for glove"), ("dim", "--dim", 100),
                                    ("min_count", "--min-count", 5), ("sparsity_words", "--sparsity-words", 100000),
                                    ("max_iter", "--max-iter", 100)):
            _positive(getattr(self, name), flag, default)
        if self.epochs is not None:
            _positive(self.epochs, "--epochs", "3 (sgns), 15 (glove)")
        if any(f <= 0 or p <= 0 for f, p in self.downpour):
            raise ConfigError("--downpour takes n_fetch:n_push pairs of positive numbers, such as 1:1,8:8.")
        return self


def to_json(**configs) -> str:
    """Serialise named config dataclasses into one JSON document."""
    return json.dumps({k: dataclasses.asdict(v) for k, v in configs.items()}, indent=2, sort_keys=True)


# Settings of how a run runs, not of what it trains: a run resumes with its own (given, or this
# machine's default), so a checkpoint moves between machines of any core count. Each thread has
# its own RNG stream and shard, so only the same count continues bit for bit.
RUN_SETTINGS = frozenset({"threads"})


def resumed_config(given, saved: dict, explicit: Optional[Set[str]] = None):
    """given with every field not in explicit taken from saved (a checkpoint's asdict of it).

    Raises ConfigError naming each explicit field that differs from saved; explicit None means
    every field was given explicitly.
    """
    values = {}
    conflicts = []
    for f in dataclasses.fields(given):
        if f.name in RUN_SETTINGS:
            continue  # this machine's, given or by default
        default = f.metadata.get("absent", getattr(given, f.name) if f.default is dataclasses.MISSING else f.default)
        mine, theirs = getattr(given, f.name), saved.get(f.name, default)  # absent: what an older run did
        if explicit is not None and f.name not in explicit:
            values[f.name] = theirs
        elif mine != theirs:
            conflicts.append(f"{f.name} {mine!r} (checkpoint: {theirs!r})")
    if conflicts:
        raise ConfigError(f"these settings differ from the checkpoint's: {', '.join(conflicts)}; resume with the "
                          "checkpoint's settings or start a new --checkpoint-dir.")
    return dataclasses.replace(given, **values)
