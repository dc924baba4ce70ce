"""The update schemes the experiment compares, each a real engine run: serial SGD, one global lock,
row locks, Hogwild and HogBatch threads, Downpour on Ray, and (GloVe) Sandblaster L-BFGS."""

from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..config import ExperimentConfig, GloveConfig, RayConfig, SandblasterConfig, Word2VecConfig
from ..engines.base import Checkpointing
from ..engines.threads import train_glove, train_word2vec
from .record import Budget, Recorder, SchemeRun


@dataclass(frozen=True)
class Scheme:
    """name (files, tables), label (plots), and how it runs: threads (None: the comparison's),
    guard (word2vec_guarded: "global", "rows", "count"), batching, or Ray: downpour (n_fetch,
    n_push) or sandblaster."""

    name: str
    label: str
    threads: Optional[int] = None
    guard: Optional[str] = None
    batching: Optional[str] = "pair"
    downpour: Optional[Tuple[int, int]] = None
    sandblaster: bool = False

    @property
    def on_ray(self) -> bool:
        return self.downpour is not None or self.sandblaster


def schemes(cfg: ExperimentConfig) -> List[Scheme]:
    """The comparison's schemes for cfg.model, the serial reference first."""
    downpour = [Scheme(f"downpour-{f}-{p}", f"Downpour, n_fetch {f}, n_push {p}", downpour=(f, p))
                for f, p in cfg.downpour]
    if cfg.model == "glove":
        return [Scheme("serial", "serial AdaGrad (1 thread)", threads=1),
                Scheme("global-lock", "one global lock", guard="global"),
                Scheme("row-locks", "row locks", guard="rows"),
                Scheme("hogwild", "Hogwild AdaGrad (lock-free)"),
                *downpour,
                Scheme("sandblaster", "Sandblaster L-BFGS", sandblaster=True)]
    return [Scheme("serial", "serial SGD (1 thread)", threads=1),
            Scheme("global-lock", "one global lock", guard="global"),
            Scheme("row-locks", "row locks", guard="rows"),
            Scheme("hogwild", "Hogwild (lock-free pairs)"),
            Scheme("hogbatch", "HogBatch (lock-free windows, default)", batching="window"),
            *downpour]


# the schemes whose words/s the scaling runs measure at each thread count
SCALING = {"sgns": ("hogwild", "global-lock", "row-locks", "hogbatch"), "glove": ("hogwild", "global-lock", "row-locks")}


def guard_arrays(kind: str, n_words: int) -> tuple:
    """The arrays every thread of a guarded skip-gram shares (word2vec_guarded.guarded_scratch)."""
    from ..models.locks import new_locks  # the experiment's kernels: compiled only when it runs

    if kind == "global":
        return (new_locks(1),)
    if kind == "rows":
        return (new_locks(2 * n_words),)
    return np.zeros(2 * n_words, np.int64), np.zeros(2 * n_words, np.int64)


def word2vec_config(cfg: ExperimentConfig, scheme: Scheme, threads: int) -> Word2VecConfig:
    return Word2VecConfig(dim=cfg.dim, epochs=cfg.n_epochs, seed=cfg.seed, threads=scheme.threads or threads,
                          batching=scheme.batching)


def ray_config(scheme: Scheme, replicas: int, batch_words: int = RayConfig.batch_words) -> RayConfig:
    """Downpour's settings for the scheme. A replica fetches and pushes within one job, so a job
    holds at least max(n_fetch, n_push) batches: with the default 4, n_fetch 8 would act as 4."""
    fetch, push = scheme.downpour or (1, 1)
    return RayConfig(replicas=replicas, ps_shards=2, n_fetch=fetch, n_push=push, batch_words=batch_words,
                     job_words=max(RayConfig.job_words, max(fetch, push) * batch_words))


class Runner:
    """Runs schemes on one encoded corpus (sgns) or co-occurrence matrix (glove)."""

    def __init__(self, cfg: ExperimentConfig, encoded=None, vocab=None, cooc=None, spill_dir: Optional[str] = None,
                 snapshot_dir: Optional[str] = None, snapshot_rows: Optional[int] = None):
        """spill_dir: GloVe's shuffle spills there; snapshot_dir: snapshots go there as .npy files
        (None: kept in memory), each of the first snapshot_rows words (None: all)."""
        self.cfg, self.encoded, self.vocab, self.cooc, self.spill_dir = cfg, encoded, vocab, cooc, spill_dir
        self.snapshot_dir, self.snapshot_rows = snapshot_dir, snapshot_rows
        self.n_words = len(vocab) if vocab is not None else len(cooc.vocab)

    def compare(self, scheme: Scheme, log: Callable[[str], None]) -> SchemeRun:
        """The scheme for cfg.budget_s at the comparison's thread count, cfg.n_snapshots snapshots."""
        workers = scheme.threads or max(self.cfg.workers, 2 if scheme.on_ray else 1)
        run = SchemeRun(scheme.name, scheme.label, workers)
        every = self.cfg.budget_s / (self.cfg.n_snapshots + 1)
        glove = self.cfg.model == "glove"
        pick = (lambda p: np.asarray(p["w_word"], np.float32) + np.asarray(p["w_ctx"], np.float32)) if glove \
            else (lambda p: p["w_in"])
        rec = Recorder(run, self.cfg.budget_s, every, pick, self.snapshot_rows, self.snapshot_dir)
        result = self._train(scheme, workers, rec.checkpointing())
        if glove:
            examples = result.state.examples.sum() if result.state is not None else 0
            rec.finish(result, result.w_word + result.w_ctx, result.entries_trained,
                       float(result.state.loss.sum()) if result.state is not None else 0.0, int(examples))
        else:
            rec.finish(result, result.w_in, result.words_trained, sum(result.epoch_loss_sum),
                       sum(result.epoch_examples))
        run.extra["train_seconds"] = result.seconds
        if scheme.downpour is not None and "mean_staleness" in run.extra:
            # other replicas' batches between a fetch and the push of what was trained on it
            run.extra["staleness_batches"] = run.extra["mean_staleness"] * scheme.downpour[1]
        run.extra["epochs_done"] = float(np.min(result.state.epoch)) if result.state is not None else 0.0
        log(f"{scheme.name}: {run.words:,} {'entries' if glove else 'words'} in {result.seconds:.1f} s "
            f"({run.words / max(result.seconds, 1e-9):,.0f}/s), {len(run.snapshots)} snapshots")
        return run

    def words_per_sec(self, scheme: Scheme, threads: int) -> float:
        """Words (GloVe: entries) per second of scheme at threads, over at most cfg.scaling_s s."""
        result = self._train(replace(scheme, threads=threads), threads,
                             Checkpointing(interrupts=Budget(self.cfg.scaling_s)), epochs=1)
        done = result.entries_trained if self.cfg.model == "glove" else result.words_trained
        return done / result.seconds if result.seconds > 0 else 0.0

    def collisions(self, threads: int) -> Tuple[np.ndarray, np.ndarray, float]:
        """Lock-free updates (skip-gram pairs, GloVe entries) at threads for cfg.scaling_s s, every
        row write counted: (writes int64[2 V], collided writes int64[2 V], seconds); rows V.. are
        w_out's (GloVe: W~'s)."""
        arrays = guard_arrays("count", self.n_words)
        stop = Checkpointing(interrupts=Budget(self.cfg.scaling_s))
        if self.cfg.model == "glove":
            gcfg = GloveConfig(dim=self.cfg.dim, epochs=1, seed=self.cfg.seed, threads=threads)
            result = train_glove(self.cooc, gcfg, progress=False, checkpointing=stop, spill_dir=self.spill_dir,
                                 counts=arrays)
        else:
            w2v = replace(word2vec_config(self.cfg, Scheme("count", "", guard="count"), threads), epochs=1)
            result = train_word2vec(self.encoded, self.vocab, w2v, progress=False, guard=("count", arrays),
                                    checkpointing=stop)
        return arrays[0], arrays[1], result.seconds

    def _train(self, scheme: Scheme, workers: int, ckpt: Checkpointing, epochs: Optional[int] = None):
        cfg = self.cfg
        if cfg.model == "glove":
            gcfg = GloveConfig(dim=cfg.dim, epochs=epochs or cfg.n_epochs, seed=cfg.seed, threads=workers)
            if scheme.sandblaster:
                from ..engines.sandblaster import train_glove_sandblaster  # Ray: only for its schemes

                return train_glove_sandblaster(self.cooc, gcfg, ray_config(scheme, workers),
                                               SandblasterConfig(max_iter=cfg.max_iter, unit_entries=250_000),
                                               progress=False, checkpointing=ckpt)
            if scheme.downpour is not None:
                from ..engines.ray import train_glove_ray  # Ray: only for its schemes

                rcfg = ray_config(scheme, workers, batch_words=500_000)  # bench_engines' GloVe minibatch
                return train_glove_ray(self.cooc, gcfg, rcfg, progress=False, checkpointing=ckpt,
                                       spill_dir=self.spill_dir)
            locks = None
            if scheme.guard is not None:
                from ..models.locks import new_locks  # the experiment's kernels: compiled only when it runs

                locks = new_locks(1 if scheme.guard == "global" else 2 * self.n_words)
            return train_glove(self.cooc, gcfg, progress=False, checkpointing=ckpt, spill_dir=self.spill_dir,
                               locks=locks)
        w2v = word2vec_config(cfg, scheme, workers)
        if epochs is not None:
            w2v = replace(w2v, epochs=epochs)
        if scheme.downpour is not None:
            from ..engines.ray import train_word2vec_ray  # Ray: only for its schemes

            return train_word2vec_ray(self.encoded, self.vocab, w2v, ray_config(scheme, workers), progress=False,
                                      checkpointing=ckpt)
        guard = (scheme.guard, guard_arrays(scheme.guard, self.n_words)) if scheme.guard else None
        return train_word2vec(self.encoded, self.vocab, w2v, progress=False, checkpointing=ckpt, guard=guard)


def warm_up(cfg: ExperimentConfig) -> None:
    """Compile (or load from numba's cache) every kernel the schemes run, before any clock starts."""
    if cfg.model == "glove":
        from ..models import glove_guarded  # noqa: F401  (typed at import, as glove.py it imports)
        return
    from ..models.word2vec_loops import epoch_kernel  # word2vec's kernels: compiled only for the experiment

    for update in ("pair", "window", "pair-global", "pair-rows", "pair-count"):
        epoch_kernel(update)


def scaling(runner: Runner, cfg: ExperimentConfig, log: Callable[[str], None],
            repeats: int = 2) -> Dict[str, Dict[int, List[float]]]:
    """words/s (GloVe: entries/s) of each scaling scheme at each of cfg.thread_counts, measured
    repeats times in turn (every scheme and count, then again): a shared machine's other load
    only ever slows a run down, so the report takes the fastest of each."""
    by_name = {s.name: s for s in schemes(cfg)}
    out: Dict[str, Dict[int, List[float]]] = {name: {t: [] for t in cfg.thread_counts} for name in SCALING[cfg.model]}
    for _ in range(repeats):
        for name, per in out.items():
            for t in cfg.thread_counts:
                per[t].append(runner.words_per_sec(by_name[name], t))
                log(f"scaling: {name} x{t}: {per[t][-1]:,.0f}/s")
    return out
