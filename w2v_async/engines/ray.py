"""The Downpour SGD engine on Ray (Dean et al., NIPS 2012): the driver hands out jobs to model
replicas that exchange parameters with sharded parameter servers (ray_actors.py).

Ray runs the processes, the messages and the restarts; this module only says what the driver does.
"""

import time
import uuid
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..config import RayConfig, Word2VecConfig
from ..data.encoded import EncodedCorpus
from ..data.vocab import Vocab
from ..errors import ConfigError, DivergedError
from ..models.sampling import build_alias_table
from .base import (GLOVE_ARRAY_NAMES, Checkpointing, GloveResult, Progress, RunState, TrainResult, connect,
                   glove_setup, init_matrices, stop_asked, thread_rng_states)
from .ray_actors import GloveReplica, ParamShard, Replica

@dataclass
class Job:
    """One unit of work: consecutive items (sentences, or shuffled entries) of one epoch.

    payload is (block, first): the job trains its block of the data (an object in Ray's store that
    only the replica running it fetches) from item first of the block on; position is the
    epoch's items done before it (a one-thread run's RunState.position); units_before counts the
    words (entries) trained before it in the whole run, n_units its own.
    """

    epoch: int
    payload: object
    position: int
    units_before: int
    n_units: int


def sentence_blocks(corpus: EncodedCorpus, job_words: int) -> np.ndarray:
    """The first sentence of every block of about job_words words (sentence s belongs to block
    sent_starts[s + 1] // job_words), then n_sentences. A search per block: nothing corpus-sized."""
    ends = corpus.sent_starts[1:]
    firsts = np.searchsorted(ends, np.arange(0, corpus.n_words, job_words, dtype=np.int64), side="left")
    return np.unique(np.concatenate([[0], firsts, [corpus.n_sentences]]).astype(np.int64))


def make_jobs(corpus: EncodedCorpus, blocks: np.ndarray, epochs: int, start_epoch: int = 0,
              start_sentence: int = 0, words_before: int = 0) -> List[Job]:
    """Every word2vec job of the run from (start_epoch, start_sentence) on, in training order: a
    block (sentence_blocks) each, the same every epoch; the first one starts at start_sentence."""
    jobs = []
    done = words_before
    starts = corpus.sent_starts
    for epoch in range(start_epoch, epochs):
        for k, (a, b) in enumerate(zip(blocks[:-1].tolist(), blocks[1:].tolist())):
            first = max(a, start_sentence) if epoch == start_epoch else a
            if first >= b:
                continue
            n = int(starts[b] - starts[first])
            jobs.append(Job(epoch, (k, first - a), first, done, n))
            done += n
    return jobs


def make_glove_jobs(nnz: int, epochs: int, job_entries: int, start_epoch: int = 0, start_entry: int = 0,
                    entries_before: int = 0) -> List[Job]:
    """Every GloVe job from (start_epoch, start_entry) on: block k is the shuffled entries
    [k job_entries, (k + 1) job_entries)."""
    jobs = []
    done = entries_before
    for epoch in range(start_epoch, epochs):
        first = start_entry if epoch == start_epoch else 0
        for a in range(first, nnz, job_entries):
            k = a // job_entries
            b = min(nnz, (k + 1) * job_entries)
            jobs.append(Job(epoch, (k, a - k * job_entries), a, done, b - a))
            done += b - a
    return jobs


class BlocksInFlight:
    """The data blocks in Ray's store while jobs use them: block k (make(k), read from the mapped
    corpus or the shuffled entries) is put when a job of it goes out and its ref dropped when the
    last such job has come back, so Ray frees it. The store holds the blocks of the jobs in flight
    (two per replica: 2 x replicas x about 1 MB at --job-words 200,000), however long the corpus;
    putting every block up front held all of it (40 GB of ids at 10 billion tokens, spilled to
    disk past the store's memory). An epoch puts each block again: one copy of the data per pass.
    """

    def __init__(self, ray, make: Callable[[int], object]):
        self.ray, self.make = ray, make
        self.held: Dict[int, list] = {}  # block -> [its ref, jobs out with it]
        self.most = 0  # the most blocks held at once (for tests)

    def take(self, k: int):
        if k not in self.held:
            self.held[k] = [self.ray.put(self.make(k)), 0]
            self.most = max(self.most, len(self.held))
        self.held[k][1] += 1
        return self.held[k][0]

    def give_back(self, k: int) -> None:
        self.held[k][1] -= 1
        if not self.held[k][1]:
            del self.held[k]


def resume_point(arrays, units_per_epoch: int) -> Tuple[int, int, int]:
    """(epoch, items of it done, units done) a checkpoint of either engine resumes at on Ray:
    exactly where a one-thread run stood; for several threads, the start of the earliest epoch
    not all of them finished."""

    saved = RunState.from_arrays(arrays)
    if saved.epoch.shape[0] == 1:
        return int(saved.epoch[0]), int(saved.position[0]), int(saved.counters[1])
    epoch = int(saved.epoch.min())
    return epoch, 0, epoch * units_per_epoch


class _Downpour:
    """The driver: starts the actors, hands out jobs, checkpoints, and gathers the result."""

    def __init__(self, ray, rcfg: RayConfig, params: Dict[str, np.ndarray], data: list,
                 block: Callable[[int], object], replica_cls, replica_args, gradsq_names: Dict[str, str], resume,
                 lockf: Optional[np.ndarray] = None):
        self.ray, self.rcfg, self.params, self.blocks = ray, rcfg, params, BlocksInFlight(ray, block)
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
            None if self.gradsq is None else {name: g[s::m] for name, g in self.gradsq.items()},
            None if lockf is None else {"w_in": lockf[s::m]}) for s in range(m)]
        # sent with every job, in a list so Ray hands the replicas refs, not the data: a restarted
        # replica gets them again (Ray does not promise a restartable actor its constructor's objects)
        self.data_refs = [ray.put(d) for d in data]
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
        for actor in self.replicas + self.shards:
            self.ray.kill(actor)

    def run(self, jobs: List[Job], state, ckpt, total: int, epochs: int, progress: bool, desc: str, unit: str,
            alpha_at: Callable[[int], float], after_job=None) -> dict:
        """Hand out the jobs, two in flight per replica; returns the summed Downpour measurements.

        To checkpoint (every ckpt.every_s seconds and before the first job of each epoch) or to stop
        on a signal, no new job goes out until the running ones finish: then exactly the jobs before
        the next one are done, a one-thread RunState (epoch, position, units done).
        """

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

        bar = Progress(total, progress, desc, unit)
        bar.update(units_done)
        t0 = last_save = time.perf_counter()
        try:
            while True:
                if stop_asked(ckpt.interrupts, jobs_done) and not state.stopped:
                    state.stopped = pausing = True
                if ckpt.save is not None and not pausing and next_job < len(jobs):
                    pausing = bool(ckpt.every_s and time.perf_counter() - last_save >= ckpt.every_s)
                for r, replica in enumerate(self.replicas):
                    while load[r] < 2 and (retry or may_start_next()):
                        j = retry.pop(0) if retry else next_job
                        next_job += j == next_job
                        job = jobs[j]
                        alpha = (alpha_at(job.units_before), alpha_at(job.units_before + job.n_units))
                        block, first = job.payload
                        in_flight[replica.run.remote(job.epoch, (self.blocks.take(block), first), alpha,
                                                     self.data_refs)] = (j, r)
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
                self.blocks.give_back(jobs[j].payload[0])  # a retry puts it again
                try:
                    res = ray.get(ready[0])
                except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                    retry.append(j)  # the replica (or its node) died: Ray restarts it, the job goes out again
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

    The sampling tables go into Ray's object store once, and the encoded corpus in blocks of about
    rcfg.job_words words, one object each while its jobs run (BlocksInFlight): a replica fetches only
    the blocks of the jobs it runs, so on a cluster a node receives the part of the corpus its
    replicas train. The driver hands
    out jobs (about rcfg.job_words consecutive words each, in corpus order, epoch after epoch,
    two in flight per replica, no barrier between replicas) with the learning rate decaying
    linearly over the whole run; it gathers losses, staleness and progress (tqdm). A replica that
    dies is restarted by Ray and its unfinished jobs are handed out again (their pushes up to the
    failure stay applied: at-least-once). after_job(replicas, jobs_done) is a hook for tests.

    checkpointing (base.Checkpointing) as the threaded engine: to checkpoint, the driver stops
    handing out new jobs, lets the running ones finish, gathers the shards' rows and saves them
    with a one-thread RunState (epoch, sentences done, words done, loss), the threaded engine's
    format; at every epoch end, every every_s seconds and at the end. A first signal stops the
    same way and returns with state.stopped set. resume takes a checkpoint of either engine.
    Returns a base.TrainResult whose ``downpour`` dict holds the Downpour measurements.
    """

    cfg.validate()
    rcfg.validate()
    if cfg.hs or cfg.subwords:
        flag = "--hs (hierarchical softmax)" if cfg.hs else "--subwords (fastText's model)"
        raise ConfigError(f"{flag} trains on the threads engine only; drop --engine ray, or drop "
                          f"{flag.split()[0]} for Downpour's word2vec.")
    ckpt = checkpointing or Checkpointing()
    ray = connect(rcfg)
    n_words = len(vocab)
    noise_prob, noise_alias = build_alias_table(vocab.noise_distribution(cfg.ns_exponent))
    tables = (vocab.keep_probs(cfg.sample), noise_prob, noise_alias)
    state = RunState.new(1, cfg.epochs, thread_rng_states(cfg.seed, 1)[0])
    if ckpt.resume is not None:
        w_in, w_out = (np.array(ckpt.resume[k], np.float32) for k in ("w_in", "w_out"))
        saved = RunState.from_arrays(ckpt.resume)
        start = resume_point(ckpt.resume, corpus.n_words)
        state.loss[0], state.examples[0], state.seconds = saved.loss.sum(0), saved.examples.sum(0), saved.seconds
        state.counters[1] = start[2]
    else:
        w_in, w_out = init_matrices(n_words, cfg.dim, cfg.seed, cfg.init_scale)
        if ckpt.init is not None:  # --init: the shards start from the source's rows
            ckpt.init.fill({"w_in": w_in, "w_out": w_out})
        start = (0, 0, 0)
    blocks = sentence_blocks(corpus, rcfg.job_words)
    jobs = make_jobs(corpus, blocks, cfg.epochs, *start)
    total = corpus.n_words * cfg.epochs
    starts = corpus.sent_starts

    def block(k):  # ids and sentence starts of the k-th block, read from the (mapped) corpus when a job needs it
        a, b = int(blocks[k]), int(blocks[k + 1])
        return np.array(corpus.ids[starts[a]:starts[b]]), np.array(starts[a:b + 1] - starts[a])

    def alpha_at(words):
        return max(cfg.min_alpha, cfg.start_alpha - (cfg.start_alpha - cfg.min_alpha) * words / max(total, 1))

    driver = _Downpour(ray, rcfg, {"w_in": w_in, "w_out": w_out}, [tables], block, Replica,
                       (cfg, rcfg, n_words, corpus.longest_sentence()),
                       {"w_in": "ps_gradsq_in", "w_out": "ps_gradsq_out"}, ckpt.resume, ckpt.lockf)
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


def train_glove_ray(cooc, cfg, rcfg: RayConfig, progress: bool = True, checkpointing=None, spill_dir=None,
                    after_job: Optional[Callable[[list, int], None]] = None):
    """Train GloVe with Downpour on Ray: replicas run glove.c's AdaGrad update on compact copies.

    The entries are shuffled once as the threaded engine does (same seed, same order) and go into
    the object store in blocks of rcfg.job_words entries, a job's each (a replica fetches the
    blocks of its jobs only); batches of rcfg.batch_words.
    The AdaGrad sums travel with the rows (GloveReplica) and the shards add every change, so
    --ps-optimizer must be sgd. Checkpoints, resume and signals as train_word2vec_ray, in the
    threaded GloVe checkpoint format. Returns a base.GloveResult (with ``downpour``).
    """

    cfg.validate()
    rcfg.validate()
    if rcfg.ps_optimizer != "sgd":
        raise ConfigError("GloVe on Ray runs its own AdaGrad in the replicas; use --ps-optimizer sgd.")
    ckpt = checkpointing or Checkpointing()
    ray = connect(rcfg)
    n_words = len(cooc.vocab)
    coo, arrays = glove_setup(cooc, cfg, ckpt, spill_dir)  # the threaded engine's shuffle and initialisation
    state = RunState.new(1, cfg.epochs)
    start = (0, 0, 0)
    if ckpt.resume is not None:
        saved = RunState.from_arrays(ckpt.resume)
        start = resume_point(ckpt.resume, cooc.nnz)
        state.loss[0], state.examples[0], state.seconds = saved.loss.sum(0), saved.examples.sum(0), saved.seconds
        state.counters[1] = start[2]
    params = dict(zip(GLOVE_ARRAY_NAMES, arrays))
    jobs = make_glove_jobs(cooc.nnz, cfg.epochs, rcfg.job_words, *start)
    total = cooc.nnz * cfg.epochs
    step = rcfg.job_words
    # the driver keeps the shuffled entries (in memory within --memory, else mapped) and puts a block as its jobs go out
    driver = _Downpour(ray, rcfg, params, [], lambda k: tuple(np.array(a[k * step:(k + 1) * step]) for a in coo),
                       GloveReplica, (cfg, rcfg, n_words), {}, None)
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
