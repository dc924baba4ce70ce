"""Downpour SGD (Dean et al., NIPS 2012) on Ray: parameter-server shards and asynchronous model replicas.

Ray runs the processes, the messages and the restarts; this module only says what the shards and
the replicas do. The numba kernels are the threaded engine's (kernels.sample_batch, train_*_batch).
"""

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .config import RayConfig, Word2VecConfig
from .corpus import EncodedCorpus
from .errors import ConfigError, InputError
from .vocab import Vocab

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
    from . import kernels

    if cfg.model == "cbow":
        return kernels.train_cbow_batch, (0, cfg.negative)
    if cfg.update == "window":
        return kernels.train_sgns_window_batch, (0, cfg.negative)
    return kernels.train_sgns_batch, (cfg.negative, 0)


@dataclass
class Batch:
    """One minibatch as kernels.sample_batch draws it: kept words (sentences concatenated), each
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
    from . import kernels

    ids, sent_starts = corpus
    _, (per_context, per_word) = batch_kernel(cfg)
    n_read = int((sent_starts[sentences + 1] - sent_starts[sentences]).sum())
    arrays = (np.empty(n_read, np.int32), np.empty(len(sentences) + 1, np.int64), np.empty(n_read, np.int32),
              np.empty(n_read + 1, np.int64),
              np.empty(max(1, n_read * (2 * cfg.window * per_context + per_word)), np.int32))
    n_sent, n_words, n_negs, words_read = kernels.sample_batch(
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
    """Rows i % n_shards == shard of w_in and w_out, and the optimizer that applies pushed updates.

    Row i is stored at i // n_shards. A push carries the replica's accumulated change of each row
    (its local SGD steps, learning rate included). "sgd" adds it; "adagrad" (DistBelief) treats it
    as a gradient step and scales it per coordinate by eta / sqrt(sum of the squares so far).
    Every push bumps the version; pull returns it, and push returns how many versions passed
    between the replica's pull and its push (its staleness).
    """

    def __init__(self, w_in: np.ndarray, w_out: np.ndarray, n_shards: int, optimizer: str, eta: float,
                 gradsq: Optional[Tuple[np.ndarray, np.ndarray]] = None):
        self.w_in, self.w_out = np.array(w_in), np.array(w_out)
        self.n_shards, self.optimizer, self.eta = n_shards, optimizer, np.float32(eta)
        self.g_in = self.g_out = None
        if optimizer == "adagrad":  # the sums of squared changes: zero, or a checkpoint's
            self.g_in, self.g_out = (np.array(g) for g in gradsq) if gradsq is not None else (
                np.zeros_like(self.w_in), np.zeros_like(self.w_out))
        self.version = 0
        self.busy = 0.0  # seconds spent serving pulls and pushes (what bounds a shard's throughput)

    def pull(self, in_ids: np.ndarray, out_ids: np.ndarray):
        """(w_in rows, w_out rows, version) for global ids of this shard."""
        t0 = time.perf_counter()
        rows = self.w_in[in_ids // self.n_shards], self.w_out[out_ids // self.n_shards], self.version
        self.busy += time.perf_counter() - t0
        return rows

    def push(self, in_ids, in_delta, out_ids, out_delta, pulled_version: int) -> int:
        t0 = time.perf_counter()
        for ids, delta, w, g in ((in_ids, in_delta, self.w_in, self.g_in),
                                 (out_ids, out_delta, self.w_out, self.g_out)):
            rows = ids // self.n_shards
            if g is None:
                w[rows] += delta
            else:
                g[rows] += delta * delta
                w[rows] += self.eta * delta / (np.sqrt(g[rows]) + np.float32(1e-8))
        staleness = self.version - pulled_version
        self.version += 1
        self.busy += time.perf_counter() - t0
        return staleness

    def rows(self):
        """All of this shard's rows of (w_in, w_out), its AdaGrad sums (or None) and its busy seconds."""
        return self.w_in, self.w_out, (self.g_in, self.g_out), self.busy


# ---- model replicas ----

class DataRefs:
    """Holds the object-store references of the corpus and tables for replicas (and their restarts)."""

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
    words: int
    pushes: int
    staleness: int  # summed over pushes
    pulled_rows: int
    seconds_train: float
    seconds_comm: float


class Replica:
    """A model replica: trains jobs of sentences on compact copies of the rows they touch.

    For every n_fetch batches it draws their windows and negatives first, pulls exactly the rows
    they touch from the shards (one message per shard), remaps the batches' ids into that compact
    copy and trains them there with the threaded engine's kernels; every n_push batches, and
    before the next fetch, it pushes the change of each row since the last push.
    """

    def __init__(self, index: int, run: str, cfg: Word2VecConfig, rcfg: RayConfig, n_words: int):
        import ray

        from .trainer import thread_rng_states, word2vec_scratch

        # the run's other actors by name (a restarted replica finds them the same way)
        shards = [ray.get_actor(f"{run}-shard-{s}") for s in range(rcfg.ps_shards)]
        ids, sent_starts, tables = ray.get(ray.get(ray.get_actor(f"{run}-data").refs.remote()))
        # writable copies: numba's typed kernels take no read-only arrays (the object store's are)
        self.ids, self.sent_starts = np.array(ids), np.array(sent_starts)
        self.tables = tuple(np.array(t) for t in tables)
        self.shards, self.cfg, self.rcfg = shards, cfg, rcfg
        self.rng = thread_rng_states(cfg.seed + 7919 * index, 1)[0]
        self.lookup = np.full(n_words, -1, np.int32)
        max_sentence = int(np.diff(sent_starts).max(initial=1))
        self.scratch = word2vec_scratch(cfg, max_sentence)

    def run(self, epoch: int, sentences: np.ndarray, alpha: Tuple[float, float]) -> JobResult:
        """Train one job: the sentences, in batches of about rcfg.batch_words words, with the learning
        rate going linearly from alpha[0] to alpha[1]."""
        import ray

        cfg, rcfg = self.cfg, self.rcfg
        sentences = np.array(sentences, np.int64)
        lengths = self.sent_starts[sentences + 1] - self.sent_starts[sentences]
        cuts = np.searchsorted(np.cumsum(lengths), np.arange(rcfg.batch_words, lengths.sum(), rcfg.batch_words),
                               side="left") + 1
        parts = [p for p in np.split(sentences, cuts) if len(p)]
        out = JobResult(epoch, 0.0, 0, 0, 0, 0, 0, 0.0, 0.0)
        pending = []
        for first in range(0, len(parts), rcfg.n_fetch):
            t0 = time.perf_counter()
            window = parts[first : first + rcfg.n_fetch]
            batches = [sample((self.ids, self.sent_starts), p, self.tables, self.rng, cfg) for p in window]
            out.seconds_train += time.perf_counter() - t0  # drawing is part of the replica's compute
            t0 = time.perf_counter()
            ids_in, ids_out, w_in, w_out, versions = self._pull(batches)
            out.seconds_comm += time.perf_counter() - t0
            out.pulled_rows += len(ids_in) + len(ids_out)
            base_in, base_out = w_in.copy(), w_out.copy()
            for b, batch in enumerate(batches):
                t0 = time.perf_counter()
                done = (first + b) / len(parts)
                lr = alpha[0] + (alpha[1] - alpha[0]) * done
                loss, examples = train_batch(w_in, w_out, batch, cfg, lr, self.scratch)
                out.loss += loss
                out.examples += examples
                out.words += batch.words_read
                out.seconds_train += time.perf_counter() - t0
                if (b + 1) % rcfg.n_push == 0 or b + 1 == len(batches):
                    t0 = time.perf_counter()
                    pending += self._push(ids_in, w_in - base_in, ids_out, w_out - base_out, versions)
                    base_in[:], base_out[:] = w_in, w_out
                    out.pushes += 1
                    out.seconds_comm += time.perf_counter() - t0
        t0 = time.perf_counter()
        out.staleness = int(sum(ray.get(pending)))
        out.seconds_comm += time.perf_counter() - t0
        return out

    def _pull(self, batches: List[Batch]):
        """Pull the rows the batches touch; remap their ids (in place) to rows of the compact copy."""
        import ray

        in_rows = np.unique(np.concatenate([b.words for b in batches]))
        neg_rows = np.unique(np.concatenate([b.negatives for b in batches]))
        out_rows = np.union1d(in_rows, neg_rows)  # words are centers too (output rows)
        m = len(self.shards)
        # compact layout: the rows read as words first (they need w_in and w_out), negatives after
        order = np.concatenate([in_rows, np.setdiff1d(out_rows, in_rows, assume_unique=True)])
        self.lookup[order] = np.arange(len(order), dtype=np.int32)
        for b in batches:
            b.words[:] = self.lookup[b.words]
            b.negatives[:] = self.lookup[b.negatives]
        refs = [shard.pull.remote(in_rows[in_rows % m == s], order[order % m == s])
                for s, shard in enumerate(self.shards)]
        w_in = np.zeros((len(order), self.cfg.dim), np.float32)
        w_out = np.empty((len(order), self.cfg.dim), np.float32)
        versions = []
        for s, (rows_in, rows_out, version) in enumerate(ray.get(refs)):
            w_in[self.lookup[in_rows[in_rows % m == s]]] = rows_in
            w_out[self.lookup[order[order % m == s]]] = rows_out
            versions.append(version)
        self.lookup[order] = -1
        return in_rows, order, w_in, w_out, versions

    def _push(self, ids_in, d_in, ids_out, d_out, versions):
        """Send each shard its rows' changes (no wait: Ray keeps one caller's calls to an actor in order)."""
        m = len(self.shards)
        n_in = len(ids_in)
        refs = []
        for s, shard in enumerate(self.shards):
            sel_in = np.flatnonzero(ids_in % m == s)
            sel_out = np.flatnonzero(ids_out % m == s)
            refs.append(shard.push.remote(ids_in[sel_in], d_in[:n_in][sel_in], ids_out[sel_out], d_out[sel_out],
                                          versions[s]))
        return refs


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
    """Consecutive sentences of one epoch, and the words trained before them in the whole run."""

    epoch: int
    sentences: np.ndarray
    words_before: int
    n_words: int


def make_jobs(corpus: EncodedCorpus, epochs: int, job_words: int, start_epoch: int = 0,
              start_sentence: int = 0, words_before: int = 0) -> List[Job]:
    """Every job of the run from (start_epoch, start_sentence) on, in training order.

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
            jobs.append(Job(epoch, p, done, n))
            done += n
    return jobs


def run_state_for_ray(state, shards: List[np.ndarray]) -> Tuple[int, int]:
    """(epoch, sentence) a checkpoint's state resumes at on Ray: exactly where a one-thread run
    stood; for several threads, the start of the earliest epoch not all of them finished."""
    if state.epoch.shape[0] == 1:
        return int(state.epoch[0]), int(shards[0][state.position[0]]) if state.position[0] < len(shards[0]) else 0
    return int(state.epoch.min()), 0


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
    from .trainer import Checkpointing, RunState, TrainResult, _Progress, init_matrices, thread_rng_states

    cfg.validate()
    rcfg.validate()
    ckpt = checkpointing or Checkpointing()
    ray = connect(rcfg)
    from . import kernels

    n_words = len(vocab)
    noise_prob, noise_alias = kernels.build_alias_table(vocab.noise_distribution())
    tables = (vocab.keep_probs(cfg.sample), noise_prob, noise_alias)
    state = RunState.new(1, cfg.epochs, thread_rng_states(cfg.seed, 1)[0])
    gradsq = None  # AdaGrad shards' sums of squared changes, full size, for checkpoints
    if rcfg.ps_optimizer == "adagrad":
        gradsq = {k: np.zeros((n_words, cfg.dim), np.float32) for k in ("ps_gradsq_in", "ps_gradsq_out")}
    if ckpt.resume is not None:
        w_in, w_out = (np.array(ckpt.resume[k], np.float32) for k in ("w_in", "w_out"))
        if gradsq is not None and "ps_gradsq_in" in ckpt.resume:
            gradsq = {k: np.array(ckpt.resume[k], np.float32) for k in gradsq}
        saved = RunState.from_arrays(ckpt.resume)
        start_epoch, start_sentence = run_state_for_ray(saved, corpus.shards(saved.epoch.shape[0]))
        state.loss[0], state.examples[0] = saved.loss.sum(axis=0), saved.examples.sum(axis=0)
        state.seconds = saved.seconds
        words_before = int(saved.counters[1:].sum()) if saved.epoch.shape[0] == 1 else start_epoch * corpus.n_words
    else:
        w_in, w_out = init_matrices(n_words, cfg.dim, cfg.seed)
        start_epoch, start_sentence, words_before = 0, 0, 0
    jobs = make_jobs(corpus, cfg.epochs, rcfg.job_words, start_epoch, start_sentence, words_before)
    total = corpus.n_words * cfg.epochs

    m = rcfg.ps_shards
    run = f"w2v-async-{uuid.uuid4().hex[:12]}"
    shard_cls = ray.remote(num_cpus=1)(ParamShard)
    shards = [shard_cls.options(name=f"{run}-shard-{s}").remote(
        w_in[s::m], w_out[s::m], m, rcfg.ps_optimizer, rcfg.ps_eta,
        None if gradsq is None else (gradsq["ps_gradsq_in"][s::m], gradsq["ps_gradsq_out"][s::m]))
        for s in range(m)]
    refs = [ray.put(a) for a in (corpus.ids, corpus.sent_starts)] + [ray.put(tables)]
    data = ray.remote(num_cpus=0)(DataRefs).options(name=f"{run}-data").remote(refs)
    replica_cls = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(Replica)
    replicas = [replica_cls.remote(r, run, cfg, rcfg, n_words) for r in range(rcfg.replicas)]

    def alpha_at(words):
        return max(cfg.min_alpha, cfg.start_alpha - (cfg.start_alpha - cfg.min_alpha) * words / max(total, 1))

    params = {"w_in": w_in, "w_out": w_out, **(gradsq or {})}  # what a checkpoint holds

    def gather():
        """Copy every shard's rows (and AdaGrad sums) into params; returns the shards' busy seconds."""
        busy = 0.0
        for s, (rows_in, rows_out, (g_in, g_out), b) in enumerate(ray.get([sh.rows.remote() for sh in shards])):
            w_in[s::m], w_out[s::m] = rows_in, rows_out
            if gradsq is not None:
                gradsq["ps_gradsq_in"][s::m], gradsq["ps_gradsq_out"][s::m] = g_in, g_out
            busy += b
        return busy

    def mark(next_job: int):
        """Set the state for a moment when exactly the jobs before next_job are done (a one-thread
        run's state: epoch, sentences of it done, words done)."""
        if next_job < len(jobs):
            job = jobs[next_job]
            state.epoch[0], state.position[0], state.counters[1] = job.epoch, job.sentences[0], job.words_before
        else:
            state.epoch[0], state.position[0], state.counters[1] = cfg.epochs, 0, total

    def save(next_job: int):
        mark(next_job)
        gather()
        ckpt.save(params, state)

    stats = dict(pushes=0, staleness=0, pulled_rows=0, jobs_retried=0, seconds_train=0.0, seconds_comm=0.0,
                 seconds_shards=0.0)
    words_done = words_before
    in_flight: Dict = {}  # ObjectRef -> (job index, replica index)
    load = [0] * rcfg.replicas
    retry: List[int] = []
    next_job = 0
    pausing = False
    epoch_saved = start_epoch
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

    bar = _Progress(total, progress, f"{cfg.model} ray x{rcfg.replicas}", "w")
    bar.update(words_done)
    t0 = last_save = time.perf_counter()
    jobs_done = 0
    try:
        while True:
            if ckpt.interrupts is not None and ckpt.interrupts.signal and not state.stopped:
                state.stopped = pausing = True
            if ckpt.save is not None and not pausing and next_job < len(jobs):
                pausing = bool(ckpt.every_s and time.perf_counter() - last_save >= ckpt.every_s)

            for r in range(rcfg.replicas):  # two jobs in flight per replica
                while load[r] < 2 and (retry or may_start_next()):
                    j = retry.pop(0) if retry else next_job
                    next_job += j == next_job
                    job = jobs[j]
                    alpha = (alpha_at(job.words_before), alpha_at(job.words_before + job.n_words))
                    in_flight[replicas[r].run.remote(job.epoch, job.sentences, alpha)] = (j, r)
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
            words_done += res.words
            for key in ("pushes", "staleness", "pulled_rows", "seconds_train", "seconds_comm"):
                stats[key] += getattr(res, key)
            jobs_done += 1
            bar.update(words_done, epoch=f"{res.epoch + 1}/{cfg.epochs}")
            if after_job is not None:
                after_job(replicas, jobs_done)
        stats["seconds_shards"] = gather()
        state.seconds += time.perf_counter() - t0
        if not np.isfinite(state.loss).all():
            from .trainer import DivergedError

            raise DivergedError(state.diverged_epoch(), cfg.epochs)
        if state.stopped:
            mark(next_job)  # the caller writes the checkpoint and the vectors so far
        elif ckpt.save is not None:
            save(len(jobs))
    finally:
        bar.close()
        for actor in replicas + shards + [data]:
            ray.kill(actor)
    loss_sum = state.loss.sum(axis=0)
    n_examples = state.examples.sum(axis=0)
    downpour = dict(stats, mean_staleness=stats["staleness"] / max(stats["pushes"], 1))
    return TrainResult(
        w_in=w_in, w_out=w_out, epoch_loss=[float(x / max(n, 1)) for x, n in zip(loss_sum, n_examples)],
        epoch_loss_sum=[float(x) for x in loss_sum], epoch_examples=[int(n) for n in n_examples],
        words_trained=words_done, seconds=state.seconds, state=state, params=params,
        downpour=downpour,
    )
