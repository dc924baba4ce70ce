"""Downpour SGD's processes on Ray (Dean et al., NIPS 2012): the parameter-server shards and the model
replicas, and the minibatches a replica draws before it pulls any row."""

import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..config import RayConfig, Word2VecConfig
from ..models.glove import train_glove_epoch
from ..models.word2vec_batch import sample_batch, train_cbow_batch, train_sgns_batch, train_sgns_window_batch
from .base import thread_rng_states, thread_scratch


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
        (ids, sent_starts, np.array(sentences, np.int64)), tables, rng_state, cfg.windows,
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
    versions passed between the replica's pull and its push (its staleness). scale (--lock-init):
    {name: float32[this shard's rows]}, each row's changes multiplied by its factor first (0: the
    row never changes, whatever a replica's copy of it did).
    """

    def __init__(self, arrays: Dict[str, np.ndarray], n_shards: int, optimizer: str, eta: float,
                 gradsq: Optional[Dict[str, np.ndarray]] = None, scale: Optional[Dict[str, np.ndarray]] = None):
        self.arrays = {name: np.array(a) for name, a in arrays.items()}
        self.scale = scale or {}
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
            if self.gradsq is not None:  # AdaGrad: the change becomes its scaled step
                g = self.gradsq[name]
                g[rows] += delta * delta
                delta = self.eta * delta / (np.sqrt(g[rows]) + np.float32(1e-8))
            w[rows] += delta * self.scale[name][rows][:, None] if name in self.scale else delta
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


def _fetch(ref) -> list:
    """A data block from the object store (from another node's store if need be), as writable
    copies: numba's typed kernels take no read-only arrays (the object store's are)."""
    import ray  # optional: the batch code above is used (and tested) without Ray

    return [np.array(a) for a in ray.get(ref)]


class _ReplicaBase:
    """Pull, push and the n_fetch / n_push loop; subclasses draw and train batches of their model."""

    def _connect(self, run: str, rcfg: RayConfig):
        """The run's shards, found by name (a replica that Ray restarts, on any node, finds them too)."""
        import ray  # optional: the batch code above is used (and tested) without Ray

        self.rcfg = rcfg
        self.shards = [ray.get_actor(f"{run}-shard-{s}") for s in range(rcfg.ps_shards)]

    @staticmethod
    def _load(data: list) -> list:
        """The run's shared data from its refs, which come with every job rather than to the
        constructor: Ray cannot promise a restarted actor its constructor's objects."""
        import ray  # optional: the batch code above is used (and tested) without Ray

        # writable copies: numba's typed kernels take no read-only arrays (the object store's are)
        return [np.array(a) if isinstance(a, np.ndarray) else tuple(np.array(t) for t in a)
                for a in ray.get(data)]

    def _pull(self, ids: Dict[str, np.ndarray]):
        """{name: compact rows for the sorted unique global ids[name]}, and each shard's version."""
        import ray  # optional: the batch code above is used (and tested) without Ray

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
        import ray  # optional: the batch code above is used (and tested) without Ray

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

    def __init__(self, index: int, run: str, cfg: Word2VecConfig, rcfg: RayConfig, n_words: int, longest: int):
        self._connect(run, rcfg)
        self.tables = None  # the noise and subsampling tables, from the first job's data refs
        self.cfg = cfg
        self.shapes = {"w_in": (cfg.dim,), "w_out": (cfg.dim,)}
        self.rng = thread_rng_states(cfg.seed + 7919 * index, 1)[0]
        self.scratch = thread_scratch(cfg, longest)

    def run(self, epoch: int, block: tuple, alpha: Tuple[float, float], data: list) -> JobResult:
        """Train one job: block is (the ref of its corpus block: ids and sentence starts, the first
        sentence of it to train); in batches of about rcfg.batch_words words, with the learning
        rate going linearly from alpha[0] to alpha[1]. data: the refs of the run's tables."""
        if self.tables is None:
            (self.tables,) = self._load(data)
        cfg, rcfg = self.cfg, self.rcfg
        ref, first = block
        ids, starts = _fetch(ref)
        sentences = np.arange(first, starts.shape[0] - 1, dtype=np.int64)
        lengths = starts[sentences + 1] - starts[sentences]
        cuts = np.searchsorted(np.cumsum(lengths), np.arange(rcfg.batch_words, lengths.sum(), rcfg.batch_words),
                               side="left") + 1
        parts = [p for p in np.split(sentences, cuts) if len(p)]
        out = JobResult(epoch, 0.0, 0, 0)
        t0 = time.perf_counter()
        windows = []
        for first in range(0, len(parts), rcfg.n_fetch):
            batches = [sample((ids, starts), p, self.tables, self.rng, cfg)
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
        self._connect(run, rcfg)
        self.cfg = cfg
        self.shapes = {name: (cfg.dim,) if name in ("w_word", "w_ctx", "gradsq_word", "gradsq_ctx") else ()
                       for name in GLOVE_ROW_ARRAYS + GLOVE_COL_ARRAYS}
        self.hyper = np.array([cfg.x_max, cfg.alpha, cfg.eta, cfg.grad_clip], np.float64)

    def run(self, epoch: int, block: tuple, alpha=None, data=None) -> JobResult:
        """Train a block of the shuffled entries (block: its ref, and the first entry of it to
        train), in batches of rcfg.batch_words; data: unused (GloVe's replicas share none)."""
        ref, start = block
        rows, cols, values = _fetch(ref)
        end = rows.shape[0]
        out = JobResult(epoch, 0.0, 0, 0)
        bounds = list(range(start, end, self.rcfg.batch_words)) + [end]
        windows = []
        for w in range(0, len(bounds) - 1, self.rcfg.n_fetch):
            pieces = list(zip(bounds[w : w + self.rcfg.n_fetch], bounds[w + 1 : w + 1 + self.rcfg.n_fetch]))
            words = np.unique(rows[pieces[0][0] : pieces[-1][1]])
            contexts = np.unique(cols[pieces[0][0] : pieces[-1][1]])
            batches = [(np.searchsorted(words, rows[a:b]).astype(np.int32),
                        np.searchsorted(contexts, cols[a:b]).astype(np.int32), values[a:b])
                       for a, b in pieces]
            ids = {**{name: words for name in GLOVE_ROW_ARRAYS}, **{name: contexts for name in GLOVE_COL_ARRAYS}}
            windows.append((ids, batches))

        def train_one(local, coo):
            params = tuple(local[n] for n in ("w_word", "w_ctx", "b_word", "b_ctx"))
            gradsq = tuple(local[n] for n in ("gradsq_word", "gradsq_ctx", "gradsq_b_word", "gradsq_b_ctx"))
            cost, n = train_glove_epoch(params, gradsq, coo, self.hyper, np.zeros(2, np.int64), 0)
            return cost, n, n

        return self._train_window(out, windows, train_one)
