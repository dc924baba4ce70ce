"""Downpour SGD (Dean et al., NIPS 2012) on Ray: parameter-server shards and asynchronous model replicas.

Ray runs the processes, the messages and the restarts; this module only says what the shards and
the replicas do. The numba kernels are the threaded engine's (models/word2vec_loops.py).
"""

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .config import RayConfig, Word2VecConfig
from .data.corpus import EncodedCorpus
from .errors import ConfigError, InputError
from .models.glove import train_glove_epoch
from .models.sampling import build_alias_table
from .models.word2vec_loops import sample_batch, train_cbow_batch, train_sgns_batch, train_sgns_window_batch
from .data.vocab import Vocab

RAY_INSTALL = "pip install 'w2v-async[ray]'"


def import_ray():
    """The ray module, or a clear error naming the install command."""
    try:
        import ray
    except ImportError as e:
        raise ConfigError(f"--engine ray needs Ray, which is not installed; install it with {RAY_INSTALL}.") from e
    return ray


# ---- batches: drawn before any parameter is read, so a replica knows which rows to pull ----

def batch_kernel(cfg: Word2VecConfig):
    """The train_*_batch kernel and (negatives per context, per center word) for cfg's model."""
    if cfg.model == "cbow":
        return train_cbow_batch, (0, cfg.negative)
    if cfg.update == "window":
        return train_sgns_window_batch, (0, cfg.negative)
    return train_sgns_batch, (cfg.negative, 0)


@dataclass
class Batch:
    """One minibatch as sample_batch draws it: kept words (sentences concatenated), each
    word's reduced window and negatives. words_read counts the words before subsampling."""

    words: np.ndarray
    sent_bounds: np.ndarray
    reach: np.ndarray
    neg_bounds: np.ndarray
    negatives: np.ndarray
    n_sent: int
    words_read: int

    def arrays(self):
        return (self.words, self.sent_bounds, self.reach, self.neg_bounds, self.negatives)


def sample(corpus: Tuple[np.ndarray, np.ndarray], sentences: np.ndarray, tables, rng_state: np.ndarray,
           cfg: Word2VecConfig) -> Batch:
    """Subsample the sentences and draw every window and negative, in the threaded kernel's order."""
    ids, sent_starts = corpus
    _, (per_context, per_word) = batch_kernel(cfg)
    n_read = int((sent_starts[sentences + 1] - sent_starts[sentences]).sum())
    arrays = (np.empty(n_read, np.int32), np.empty(len(sentences) + 1, np.int64), np.empty(n_read, np.int32),
              np.empty(n_read + 1, np.int64),
              np.empty(max(1, n_read * (2 * cfg.window * per_context + per_word)), np.int32))
    n_sent, n_words, n_negs, words_read = sample_batch(
        (ids, sent_starts, np.array(sentences, np.int64)), tables, rng_state, cfg.window,
        per_context, per_word, arrays)
    words, sent_bounds, reach, neg_bounds, negatives = arrays
    return Batch(words[:n_words], sent_bounds[: n_sent + 1], reach[:n_words], neg_bounds[: n_words + 1],
                 negatives[:n_negs], n_sent, words_read)


def train_batch(w_in: np.ndarray, w_out: np.ndarray, batch: Batch, cfg: Word2VecConfig, lr: float, scratch):
    """Train one batch on w_in, w_out (full matrices or a compact copy with the batch's ids remapped)."""
    kernel, _ = batch_kernel(cfg)
    return kernel(w_in, w_out, batch.arrays(), batch.n_sent, cfg.negative, np.float32(lr), scratch)


# ---- the parameter server: one actor per shard of rows ----

class ParamShard:
    """Rows i % n_shards == shard of every named parameter array, and how pushed changes apply.

    Row i is stored at i // n_shards. A push carries the replica's accumulated change of each row
    (its local steps, learning rate included). "sgd" adds it; "adagrad" (DistBelief) treats it
    as a gradient step and scales it per coordinate by eta / sqrt(sum of the squares so far),
    sums the shard holds. Every push bumps the version; pull returns it, and push returns how many
    versions passed between the replica's pull and its push (its staleness).
    """

    def __init__(self, arrays: Dict[str, np.ndarray], n_shards: int, optimizer: str, eta: float,
                 gradsq: Optional[Dict[str, np.ndarray]] = None):
        self.arrays = {name: np.array(a) for name, a in arrays.items()}
        self.n_shards, self.eta = n_shards, np.float32(eta)
        self.gradsq = None
        if optimizer == "adagrad":  # the sums of squared changes: zero, or a checkpoint's
            self.gradsq = {name: np.array(gradsq[name]) if gradsq else np.zeros_like(a)
                           for name, a in self.arrays.items()}
        self.version = 0
        self.busy = 0.0  # seconds spent serving pulls and pushes (what bounds a shard's throughput)

    def pull(self, ids: Dict[str, np.ndarray]):
        """({name: rows of the global ids asked for}, version)."""
        t0 = time.perf_counter()
        rows = {name: self.arrays[name][i // self.n_shards] for name, i in ids.items()}
        self.busy += time.perf_counter() - t0
        return rows, self.version

    def push(self, changes: Dict[str, Tuple[np.ndarray, np.ndarray]], pulled_version: int) -> int:
        """Apply {name: (global ids, change of each row)}; returns the staleness."""
        t0 = time.perf_counter()
        for name, (ids, delta) in changes.items():
            rows, w = ids // self.n_shards, self.arrays[name]
            if self.gradsq is None:
                w[rows] += delta
            else:
                g = self.gradsq[name]
                g[rows] += delta * delta
                w[rows] += self.eta * delta / (np.sqrt(g[rows]) + np.float32(1e-8))
        staleness = self.version - pulled_version
        self.version += 1
        self.busy += time.perf_counter() - t0
        return staleness

    def rows(self):
        """(all of this shard's rows by name, its AdaGrad sums by name or None, its busy seconds)."""
        return self.arrays, self.gradsq, self.busy


def split_by_shard(ids: np.ndarray, m: int) -> List[np.ndarray]:
    """Positions in ids (sorted unique global ids) of the rows each of m shards owns."""
    return [np.flatnonzero(ids % m == s) for s in range(m)]


# ---- model replicas ----

class DataRefs:
    """Holds the object-store references of the training data for replicas (and their restarts)."""

    def __init__(self, refs: list):
        self._refs = refs

    def refs(self) -> list:
        return self._refs


@dataclass
class JobResult:
    """What a replica reports for one job."""

    epoch: int
    loss: float
    examples: int
    words: int  # units trained: words read (word2vec) or entries (GloVe)
    pushes: int = 0
    staleness: int = 0  # summed over pushes
    pulled_rows: int = 0
    seconds_train: float = 0.0
    seconds_comm: float = 0.0


class _ReplicaBase:
    """Pull, push and the n_fetch / n_push loop; subclasses draw and train batches of their model."""

    def _connect(self, run: str, rcfg: RayConfig):
        """The run's shards and data by name (a restarted replica finds them the same way)."""
        import ray

        self.rcfg = rcfg
        self.shards = [ray.get_actor(f"{run}-shard-{s}") for s in range(rcfg.ps_shards)]
        # writable copies: numba's typed kernels take no read-only arrays (the object store's are)
        return [np.array(a) if isinstance(a, np.ndarray) else tuple(np.array(t) for t in a)
                for a in ray.get(ray.get(ray.get_actor(f"{run}-data").refs.remote()))]

    def _pull(self, ids: Dict[str, np.ndarray]):
        """{name: compact rows for the sorted unique global ids[name]}, and each shard's version."""
        import ray

        m = len(self.shards)
        parts = {name: split_by_shard(i, m) for name, i in ids.items()}
        refs = [shard.pull.remote({name: ids[name][parts[name][s]] for name in ids})
                for s, shard in enumerate(self.shards)]
        local = {name: np.empty((len(i),) + self.shapes[name], np.float32) for name, i in ids.items()}
        versions = []
        for s, (rows, version) in enumerate(ray.get(refs)):
            for name in ids:
                local[name][parts[name][s]] = rows[name]
            versions.append(version)
        return local, versions

    def _push(self, ids, local, base, versions):
        """Send each shard the change of its rows since base (no wait: Ray keeps one caller's calls
        to an actor in order); returns the refs of the staleness each push reports."""
        m = len(self.shards)
        parts = {name: split_by_shard(i, m) for name, i in ids.items()}
        refs = []
        for s, shard in enumerate(self.shards):
            changes = {name: (ids[name][parts[name][s]], local[name][parts[name][s]] - base[name][parts[name][s]])
                       for name in ids}
            refs.append(shard.push.remote(changes, versions[s]))
        return refs

    def _train_window(self, out: JobResult, windows: list, train_one: Callable) -> JobResult:
        """windows: [(ids by name, remapped batches)] of up to n_fetch batches each: pull their rows,
        train each batch with train_one(local, batch, index) -> (loss, examples, units), push every
        n_push batches and at the end of the window."""
        import ray

        pending = []
        for ids, batches in windows:
            t0 = time.perf_counter()
            local, versions = self._pull(ids)
            out.seconds_comm += time.perf_counter() - t0
            out.pulled_rows += sum(len(i) for i in ids.values())
            base = {name: a.copy() for name, a in local.items()}
            for b, batch in enumerate(batches):
                t0 = time.perf_counter()
                loss, examples, units = train_one(local, batch)
                out.loss += loss
                out.examples += examples
                out.words += units
                out.seconds_train += time.perf_counter() - t0
                if (b + 1) % self.rcfg.n_push == 0 or b + 1 == len(batches):
                    t0 = time.perf_counter()
                    pending += self._push(ids, local, base, versions)
                    for name, a in local.items():
                        base[name][:] = a
                    out.pushes += 1
                    out.seconds_comm += time.perf_counter() - t0
        t0 = time.perf_counter()
        out.staleness = int(sum(ray.get(pending)))
        out.seconds_comm += time.perf_counter() - t0
        return out


class Replica(_ReplicaBase):
    """A word2vec model replica: trains jobs of sentences on compact copies of the rows they touch.

    For every n_fetch batches it draws their windows and negatives first, pulls exactly the rows
    they touch from the shards (one message per shard), remaps the batches' ids into that compact
    copy and trains them there with the threaded engine's kernels; every n_push batches, and
    before the next fetch, it pushes the change of each row since the last push.
    """

    def __init__(self, index: int, run: str, cfg: Word2VecConfig, rcfg: RayConfig, n_words: int):
        from .trainer import thread_rng_states, thread_scratch

        self.ids, self.sent_starts, self.tables = self._connect(run, rcfg)
        self.cfg = cfg
        self.shapes = {"w_in": (cfg.dim,), "w_out": (cfg.dim,)}
        self.rng = thread_rng_states(cfg.seed + 7919 * index, 1)[0]
        self.scratch = thread_scratch(cfg, int(np.diff(self.sent_starts).max(initial=1)))

    def run(self, epoch: int, sentences: np.ndarray, alpha: Tuple[float, float]) -> JobResult:
        """Train one job: the sentences, in batches of about rcfg.batch_words words, with the learning
        rate going linearly from alpha[0] to alpha[1]."""
        cfg, rcfg = self.cfg, self.rcfg
        sentences = np.array(sentences, np.int64)
        lengths = self.sent_starts[sentences + 1] - self.sent_starts[sentences]
        cuts = np.searchsorted(np.cumsum(lengths), np.arange(rcfg.batch_words, lengths.sum(), rcfg.batch_words),
                               side="left") + 1
        parts = [p for p in np.split(sentences, cuts) if len(p)]
        out = JobResult(epoch, 0.0, 0, 0)
        t0 = time.perf_counter()
        windows = []
        for first in range(0, len(parts), rcfg.n_fetch):
            batches = [sample((self.ids, self.sent_starts), p, self.tables, self.rng, cfg)
                       for p in parts[first : first + rcfg.n_fetch]]
            windows.append((self._remap(batches), [(first + b, batch) for b, batch in enumerate(batches)]))
        out.seconds_train += time.perf_counter() - t0  # drawing is part of the replica's compute

        def train_one(local, item):
            b, batch = item
            lr = alpha[0] + (alpha[1] - alpha[0]) * b / len(parts)
            loss, examples = train_batch(local["w_in"], local["w_out"], batch, cfg, lr, self.scratch)
            return loss, examples, batch.words_read

        return self._train_window(out, windows, train_one)

    @staticmethod
    def _remap(batches: List[Batch]) -> Dict[str, np.ndarray]:
        """The rows the batches touch, with their ids remapped (in place) to rows of one compact copy.

        Words come first (they are read from w_in and, as centers, from w_out), then the ids only
        ever drawn as negatives (w_out only; their w_in rows are pulled but never read).
        """
        words = np.unique(np.concatenate([b.words for b in batches]))
        negs = np.setdiff1d(np.unique(np.concatenate([b.negatives for b in batches])), words, assume_unique=True)
        order = np.concatenate([words, negs])
        rank = np.argsort(order, kind="stable")
        for b in batches:
            b.words[:] = rank[np.searchsorted(order, b.words, sorter=rank)]
            b.negatives[:] = rank[np.searchsorted(order, b.negatives, sorter=rank)]
        return {"w_in": words, "w_out": order}  # words' local ids are the first len(words) rows


GLOVE_ROW_ARRAYS = ("w_word", "b_word", "gradsq_word", "gradsq_b_word")  # indexed by X's row (word)
GLOVE_COL_ARRAYS = ("w_ctx", "b_ctx", "gradsq_ctx", "gradsq_b_ctx")  # indexed by X's column (context)


class GloveReplica(_ReplicaBase):
    """A GloVe model replica: trains jobs of shuffled co-occurrence entries on compact copies.

    GloVe's optimizer is AdaGrad with per-coordinate sums, so the sums are parameters like the
    rest: a replica pulls the rows of W, b and their sums that its entries' words touch, and of
    W~, b~ and theirs for the contexts, runs glove.c's update there (models.glove.train_glove_epoch),
    and pushes every array's change; the shards add them (sgd).
    """

    def __init__(self, index: int, run: str, cfg, rcfg: RayConfig, n_words: int):
        self.rows, self.cols, self.values = self._connect(run, rcfg)
        self.cfg = cfg
        self.shapes = {name: (cfg.dim,) if name in ("w_word", "w_ctx", "gradsq_word", "gradsq_ctx") else ()
                       for name in GLOVE_ROW_ARRAYS + GLOVE_COL_ARRAYS}
        self.hyper = np.array([cfg.x_max, cfg.alpha, cfg.eta], np.float64)

    def run(self, epoch: int, entries: Tuple[int, int], alpha=None) -> JobResult:
        """Train the entries [start, end) of the shuffled matrix, in batches of rcfg.batch_words."""
        start, end = entries
        out = JobResult(epoch, 0.0, 0, 0)
        bounds = list(range(start, end, self.rcfg.batch_words)) + [end]
        windows = []
        for w in range(0, len(bounds) - 1, self.rcfg.n_fetch):
            pieces = list(zip(bounds[w : w + self.rcfg.n_fetch], bounds[w + 1 : w + 1 + self.rcfg.n_fetch]))
            words = np.unique(self.rows[pieces[0][0] : pieces[-1][1]])
            contexts = np.unique(self.cols[pieces[0][0] : pieces[-1][1]])
            batches = [(np.searchsorted(words, self.rows[a:b]).astype(np.int32),
                        np.searchsorted(contexts, self.cols[a:b]).astype(np.int32), self.values[a:b])
                       for a, b in pieces]
            ids = {**{name: words for name in GLOVE_ROW_ARRAYS}, **{name: contexts for name in GLOVE_COL_ARRAYS}}
            windows.append((ids, batches))

        def train_one(local, coo):
            params = tuple(local[n] for n in ("w_word", "w_ctx", "b_word", "b_ctx"))
            gradsq = tuple(local[n] for n in ("gradsq_word", "gradsq_ctx", "gradsq_b_word", "gradsq_b_ctx"))
            cost, n = train_glove_epoch(params, gradsq, coo, self.hyper, np.zeros(2, np.int64), 0)
            return cost, n, n

        return self._train_window(out, windows, train_one)


# ---- the driver ----

def connect(rcfg: RayConfig):
    """Join the cluster at rcfg.address, or start a local Ray with a CPU per replica and shard."""
    ray = import_ray()
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
        ray.init(num_cpus=rcfg.replicas + rcfg.ps_shards, **opts)
    return ray


@dataclass
class Job:
    """One unit of work: consecutive items (sentences, or shuffled entries) of one epoch.

    payload is what the replica gets (sentence numbers, or an entry range); position is the
    epoch's items done before it (a one-thread run's RunState.position); units_before counts the
    words (entries) trained before it in the whole run, n_units its own.
    """

    epoch: int
    payload: object
    position: int
    units_before: int
    n_units: int


def make_jobs(corpus: EncodedCorpus, epochs: int, job_words: int, start_epoch: int = 0,
              start_sentence: int = 0, words_before: int = 0) -> List[Job]:
    """Every word2vec job of the run from (start_epoch, start_sentence) on, in training order.

    A job is the sentences of one block of about job_words words (blocks cut at the same places
    every epoch); the first one starts at start_sentence.
    """
    block = corpus.sent_starts[1:] // job_words
    pieces = np.split(np.arange(corpus.n_sentences, dtype=np.int64), np.flatnonzero(np.diff(block)) + 1)
    jobs = []
    done = words_before
    for epoch in range(start_epoch, epochs):
        for p in pieces:
            if epoch == start_epoch:
                p = p[p >= start_sentence]
            if len(p) == 0:
                continue
            n = int(corpus.sent_starts[p[-1] + 1] - corpus.sent_starts[p[0]])
            jobs.append(Job(epoch, p, int(p[0]), done, n))
            done += n
    return jobs


def make_glove_jobs(nnz: int, epochs: int, job_entries: int, start_epoch: int = 0, start_entry: int = 0,
                    entries_before: int = 0) -> List[Job]:
    """Every GloVe job from (start_epoch, start_entry) on: ranges of job_entries shuffled entries."""
    jobs = []
    done = entries_before
    for epoch in range(start_epoch, epochs):
        first = start_entry if epoch == start_epoch else 0
        for a in range(first, nnz, job_entries):
            b = min(nnz, a + job_entries)
            jobs.append(Job(epoch, (a, b), a, done, b - a))
            done += b - a
    return jobs


def resume_point(arrays, units_per_epoch: int) -> Tuple[int, int, int]:
    """(epoch, items of it done, units done) a checkpoint of either engine resumes at on Ray:
    exactly where a one-thread run stood; for several threads, the start of the earliest epoch
    not all of them finished."""
    from .trainer import RunState

    saved = RunState.from_arrays(arrays)
    if saved.epoch.shape[0] == 1:
        return int(saved.epoch[0]), int(saved.position[0]), int(saved.counters[1])
    epoch = int(saved.epoch.min())
    return epoch, 0, epoch * units_per_epoch


class _Downpour:
    """The driver: starts the actors, hands out jobs, checkpoints, and gathers the result."""

    def __init__(self, ray, rcfg: RayConfig, params: Dict[str, np.ndarray], data: list, replica_cls, replica_args,
                 gradsq_names: Dict[str, str], resume):
        self.ray, self.rcfg, self.params = ray, rcfg, params
        m = rcfg.ps_shards
        self.gradsq = None  # AdaGrad shards' sums, full size (for checkpoints), by parameter name
        if rcfg.ps_optimizer == "adagrad":
            self.gradsq = {name: np.zeros_like(params[name]) for name in gradsq_names}
            if resume is not None and all(key in resume for key in gradsq_names.values()):
                self.gradsq = {name: np.array(resume[key]) for name, key in gradsq_names.items()}
        self.gradsq_names = gradsq_names
        run = f"w2v-async-{uuid.uuid4().hex[:12]}"
        shard_cls = ray.remote(num_cpus=1)(ParamShard)
        self.shards = [shard_cls.options(name=f"{run}-shard-{s}").remote(
            {name: a[s::m] for name, a in params.items()}, m, rcfg.ps_optimizer, rcfg.ps_eta,
            None if self.gradsq is None else {name: g[s::m] for name, g in self.gradsq.items()}) for s in range(m)]
        self.data = ray.remote(num_cpus=0)(DataRefs).options(name=f"{run}-data").remote([ray.put(d) for d in data])
        cls = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(replica_cls)
        self.replicas = [cls.remote(r, run, *replica_args) for r in range(rcfg.replicas)]

    def gather(self) -> float:
        """Copy every shard's rows (and AdaGrad sums) into the full arrays; returns the shards' busy seconds."""
        m = self.rcfg.ps_shards
        busy = 0.0
        for s, (arrays, gradsq, b) in enumerate(self.ray.get([sh.rows.remote() for sh in self.shards])):
            for name, a in arrays.items():
                self.params[name][s::m] = a
            for name, g in (gradsq or {}).items():
                self.gradsq[name][s::m] = g
            busy += b
        return busy

    def checkpoint_params(self) -> Dict[str, np.ndarray]:
        extra = {key: self.gradsq[name] for name, key in self.gradsq_names.items()} if self.gradsq else {}
        return {**self.params, **extra}

    def close(self) -> None:
        for actor in self.replicas + self.shards + [self.data]:
            self.ray.kill(actor)

    def run(self, jobs: List[Job], state, ckpt, total: int, epochs: int, progress: bool, desc: str, unit: str,
            alpha_at: Callable[[int], float], after_job=None) -> dict:
        """Hand out the jobs, two in flight per replica; returns the summed Downpour measurements.

        To checkpoint (every ckpt.every_s seconds and before the first job of each epoch) or to stop
        on a signal, no new job goes out until the running ones finish: then exactly the jobs before
        the next one are done, a one-thread RunState (epoch, position, units done).
        """
        from .trainer import _Progress

        ray = self.ray
        stats = dict(pushes=0, staleness=0, pulled_rows=0, jobs_retried=0, seconds_train=0.0, seconds_comm=0.0,
                     seconds_shards=0.0)
        in_flight: Dict = {}  # ObjectRef -> (job index, replica index)
        load = [0] * len(self.replicas)
        retry: List[int] = []
        next_job = 0
        pausing = False
        epoch_saved = jobs[0].epoch if jobs else epochs
        units_done = int(state.counters[1])
        jobs_done = 0

        def mark(j: int):
            if j < len(jobs):
                state.epoch[0], state.position[0], state.counters[1] = jobs[j].epoch, jobs[j].position, \
                    jobs[j].units_before
            else:
                state.epoch[0], state.position[0], state.counters[1] = epochs, 0, total

        def save(j: int):
            mark(j)
            self.gather()
            ckpt.save(self.checkpoint_params(), state)

        def may_start_next():
            """Whether the next new job may go out now; the first job of an epoch waits for a
            checkpoint of the epochs before it (when checkpointing)."""
            nonlocal pausing
            if pausing or next_job == len(jobs):
                return False
            if ckpt.save is not None and jobs[next_job].epoch > epoch_saved:
                pausing = True
                return False
            return True

        bar = _Progress(total, progress, desc, unit)
        bar.update(units_done)
        t0 = last_save = time.perf_counter()
        try:
            while True:
                if ckpt.interrupts is not None and ckpt.interrupts.signal and not state.stopped:
                    state.stopped = pausing = True
                if ckpt.save is not None and not pausing and next_job < len(jobs):
                    pausing = bool(ckpt.every_s and time.perf_counter() - last_save >= ckpt.every_s)
                for r, replica in enumerate(self.replicas):
                    while load[r] < 2 and (retry or may_start_next()):
                        j = retry.pop(0) if retry else next_job
                        next_job += j == next_job
                        job = jobs[j]
                        alpha = (alpha_at(job.units_before), alpha_at(job.units_before + job.n_units))
                        in_flight[replica.run.remote(job.epoch, job.payload, alpha)] = (j, r)
                        load[r] += 1
                if not in_flight:
                    if next_job == len(jobs) or state.stopped:
                        break
                    if pausing:  # everything before next_job is done: a consistent state
                        save(next_job)
                        epoch_saved, last_save, pausing = jobs[next_job].epoch, time.perf_counter(), False
                    continue
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.25)
                if not ready:
                    continue
                j, r = in_flight.pop(ready[0])
                load[r] -= 1
                try:
                    res = ray.get(ready[0])
                except ray.exceptions.RayActorError:
                    retry.append(j)  # the replica died: Ray restarts it, the job is handed out again
                    stats["jobs_retried"] += 1
                    continue
                state.loss[0, res.epoch] += res.loss
                state.examples[0, res.epoch] += res.examples
                units_done += res.words
                for key in ("pushes", "staleness", "pulled_rows", "seconds_train", "seconds_comm"):
                    stats[key] += getattr(res, key)
                jobs_done += 1
                bar.update(units_done, epoch=f"{res.epoch + 1}/{epochs}")
                if after_job is not None:
                    after_job(self.replicas, jobs_done)
            stats["seconds_shards"] = self.gather()
            state.seconds += time.perf_counter() - t0
            if not np.isfinite(state.loss).all():
                from .trainer import DivergedError

                raise DivergedError(state.diverged_epoch(), epochs)
            if state.stopped:
                mark(next_job)  # the caller writes the checkpoint and the vectors so far
            elif ckpt.save is not None:
                save(len(jobs))
        finally:
            bar.close()
        stats["units_done"] = units_done
        stats["mean_staleness"] = stats["staleness"] / max(stats["pushes"], 1)
        return stats


def train_word2vec_ray(corpus: EncodedCorpus, vocab: Vocab, cfg: Word2VecConfig, rcfg: RayConfig,
                       progress: bool = True, checkpointing=None,
                       after_job: Optional[Callable[[list, int], None]] = None):
    """Train SGNS or CBOW with Downpour SGD: rcfg.replicas replica actors, rcfg.ps_shards shard actors.

    The encoded corpus and the sampling tables go into Ray's object store once. The driver hands
    out jobs (about rcfg.job_words consecutive words each, in corpus order, epoch after epoch,
    two in flight per replica, no barrier between replicas) with the learning rate decaying
    linearly over the whole run; it gathers losses, staleness and progress (tqdm). A replica that
    dies is restarted by Ray and its unfinished jobs are handed out again (their pushes up to the
    failure stay applied: at-least-once). after_job(replicas, jobs_done) is a hook for tests.

    checkpointing (trainer.Checkpointing) as the threaded engine: to checkpoint, the driver stops
    handing out new jobs, lets the running ones finish, gathers the shards' rows and saves them
    with a one-thread RunState (epoch, sentences done, words done, loss), the threaded engine's
    format; at every epoch end, every every_s seconds and at the end. A first signal stops the
    same way and returns with state.stopped set. resume takes a checkpoint of either engine.
    Returns a trainer.TrainResult whose ``downpour`` dict holds the Downpour measurements.
    """
    from .trainer import Checkpointing, RunState, TrainResult, init_matrices, thread_rng_states

    cfg.validate()
    rcfg.validate()
    ckpt = checkpointing or Checkpointing()
    ray = connect(rcfg)
    n_words = len(vocab)
    noise_prob, noise_alias = build_alias_table(vocab.noise_distribution())
    tables = (vocab.keep_probs(cfg.sample), noise_prob, noise_alias)
    state = RunState.new(1, cfg.epochs, thread_rng_states(cfg.seed, 1)[0])
    if ckpt.resume is not None:
        w_in, w_out = (np.array(ckpt.resume[k], np.float32) for k in ("w_in", "w_out"))
        saved = RunState.from_arrays(ckpt.resume)
        start = resume_point(ckpt.resume, corpus.n_words)
        state.loss[0], state.examples[0], state.seconds = saved.loss.sum(0), saved.examples.sum(0), saved.seconds
        state.counters[1] = start[2]
    else:
        w_in, w_out = init_matrices(n_words, cfg.dim, cfg.seed)
        start = (0, 0, 0)
    jobs = make_jobs(corpus, cfg.epochs, rcfg.job_words, *start)
    total = corpus.n_words * cfg.epochs

    def alpha_at(words):
        return max(cfg.min_alpha, cfg.start_alpha - (cfg.start_alpha - cfg.min_alpha) * words / max(total, 1))

    driver = _Downpour(ray, rcfg, {"w_in": w_in, "w_out": w_out}, [corpus.ids, corpus.sent_starts, tables], Replica,
                       (cfg, rcfg, n_words), {"w_in": "ps_gradsq_in", "w_out": "ps_gradsq_out"}, ckpt.resume)
    try:
        stats = driver.run(jobs, state, ckpt, total, cfg.epochs, progress, f"{cfg.model} ray x{rcfg.replicas}", "w",
                           alpha_at, after_job)
    finally:
        driver.close()
    loss_sum, n_examples = state.loss.sum(axis=0), state.examples.sum(axis=0)
    return TrainResult(
        w_in=w_in, w_out=w_out, epoch_loss=[float(x / max(n, 1)) for x, n in zip(loss_sum, n_examples)],
        epoch_loss_sum=[float(x) for x in loss_sum], epoch_examples=[int(n) for n in n_examples],
        words_trained=stats.pop("units_done"), seconds=state.seconds, state=state,
        params=driver.checkpoint_params(), downpour=stats,
    )


def train_glove_ray(cooc, cfg, rcfg: RayConfig, progress: bool = True, checkpointing=None,
                    after_job: Optional[Callable[[list, int], None]] = None):
    """Train GloVe with Downpour on Ray: replicas run glove.c's AdaGrad update on compact copies.

    The entries are shuffled once as the threaded engine does (same seed, same order) and go into
    the object store; jobs are ranges of rcfg.job_words entries, batches of rcfg.batch_words.
    The AdaGrad sums travel with the rows (GloveReplica) and the shards add every change, so
    --ps-optimizer must be sgd. Checkpoints, resume and signals as train_word2vec_ray, in the
    threaded GloVe checkpoint format. Returns a trainer.GloveResult (with ``downpour``).
    """
    from .trainer import GLOVE_PARAMS, Checkpointing, GloveResult, RunState

    cfg.validate()
    rcfg.validate()
    if rcfg.ps_optimizer != "sgd":
        raise ConfigError("GloVe on Ray runs its own AdaGrad in the replicas; use --ps-optimizer sgd.")
    ckpt = checkpointing or Checkpointing()
    ray = connect(rcfg)
    n_words = len(cooc.vocab)
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(cooc.nnz)  # the threaded engine's shuffle and initialisation
    coo = [cooc.rows[order], cooc.cols[order], cooc.values[order]]
    del order
    shapes = [(n_words, cfg.dim), (n_words, cfg.dim), (n_words,), (n_words,)]
    state = RunState.new(1, cfg.epochs)
    if ckpt.resume is not None:
        arrays = [np.array(ckpt.resume[name], np.float32) for name in GLOVE_PARAMS]
        saved = RunState.from_arrays(ckpt.resume)
        start = resume_point(ckpt.resume, cooc.nnz)
        state.loss[0], state.examples[0], state.seconds = saved.loss.sum(0), saved.examples.sum(0), saved.seconds
        state.counters[1] = start[2]
    else:
        scale = np.float32(1.0 / cfg.dim)
        arrays = [np.ascontiguousarray((rng.random(shape, dtype=np.float32) - np.float32(0.5)) * scale)
                  for shape in shapes]
        arrays += [np.ones_like(a) for a in arrays]
        start = (0, 0, 0)
    params = dict(zip(GLOVE_PARAMS, arrays))
    jobs = make_glove_jobs(cooc.nnz, cfg.epochs, rcfg.job_words, *start)
    total = cooc.nnz * cfg.epochs
    driver = _Downpour(ray, rcfg, params, coo, GloveReplica, (cfg, rcfg, n_words), {}, None)
    try:
        stats = driver.run(jobs, state, ckpt, total, cfg.epochs, progress, f"glove ray x{rcfg.replicas}",
                           " entries", lambda units: 0.0, after_job)
    finally:
        driver.close()
    return GloveResult(
        params["w_word"], params["w_ctx"], params["b_word"], params["b_ctx"],
        epoch_cost=[float(c / max(n, 1)) for c, n in zip(state.loss[0], state.examples[0])],
        entries_trained=stats.pop("units_done"), seconds=state.seconds, state=state, params=params, downpour=stats,
    )
