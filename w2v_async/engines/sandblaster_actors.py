"""Sandblaster's Ray actors: parameter-server shards that stage and commit gradient pushes, and
replicas that compute a batch's gradient one small work unit at a time.

A shard holds its rows (words s, s + m, s + 2m, ... of every GloVe array, flattened) of every
vector L-BFGS keeps (sandblaster.VectorShard). A replica fetches the point it is told to evaluate
from every shard at the start of each batch, adds each unit's gradient into a local accumulator,
and pushes the sum to the shards every few units. A push is staged in the shards under its key
and only added to the gradient when the coordinator commits it: a unit whose replica died, or
that a backup copy finished first, is then counted exactly once.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..models.glove import glove_gradient

PushKey = Tuple[int, int]  # (replica, its push number)
WORK_VECTORS = ("x", "g", "d", "xt", "gt", "q")


class VectorShard:
    """One shard's rows of every vector of the method, as flat float64 arrays. Each command reads
    and writes local rows only and answers with a scalar at most."""

    def __init__(self, x0: np.ndarray, history: int):
        self.v = {name: np.zeros(x0.shape[0]) for name in WORK_VECTORS}
        self.v["x"][:] = x0
        for k in range(history):
            self.v[f"s{k}"] = np.zeros(x0.shape[0])
            self.v[f"y{k}"] = np.zeros(x0.shape[0])

    def dot(self, a: str, b: str) -> float:
        return float(self.v[a] @ self.v[b])

    def axpy(self, alpha: float, a: str, b: str) -> None:
        """b += alpha a."""
        self.v[b] += alpha * self.v[a]

    def scale(self, alpha: float, a: str) -> None:
        self.v[a] *= alpha

    def lincomb(self, out: str, alpha: float, a: str, beta: float, b: str) -> None:
        """out = alpha a + beta b."""
        np.add(alpha * self.v[a], beta * self.v[b], out=self.v[out])

    def zero(self, a: str) -> None:
        self.v[a][:] = 0.0

    def get(self, a: str) -> np.ndarray:
        return self.v[a]

    def add(self, a: str, delta: np.ndarray) -> None:
        self.v[a] += delta


def split_params(params: Tuple[np.ndarray, ...], m: int) -> List[np.ndarray]:
    """The flat float64 vector of each of m shards: its rows of w_word, w_ctx, b_word, b_ctx."""
    return [np.concatenate([np.asarray(p[s::m], np.float64).ravel() for p in params]) for s in range(m)]


def join_params(flats: List[np.ndarray], n_words: int, dim: int) -> Tuple[np.ndarray, ...]:
    """The four arrays (float64) from the shards' flat vectors (split_params's inverse)."""
    m = len(flats)
    out = (np.empty((n_words, dim)), np.empty((n_words, dim)), np.empty(n_words), np.empty(n_words))
    for s, flat in enumerate(flats):
        rows = len(range(s, n_words, m))
        pieces = np.split(flat, np.cumsum([rows * dim, rows * dim, rows]))
        for array, piece in zip(out, pieces):
            array[s::m] = piece.reshape(array[s::m].shape)
    return out


class GradientShard(VectorShard):
    """A parameter-server shard of Sandblaster: VectorShard's commands, plus staged pushes."""

    def __init__(self, x0: np.ndarray, history: int):
        super().__init__(x0, history)
        self.staged: Dict[PushKey, np.ndarray] = {}

    def stage(self, key: PushKey, delta: np.ndarray) -> None:
        self.staged[key] = delta

    def commit(self, target: str, keys: List[PushKey]) -> None:
        """Add the staged pushes of keys (in the order given) to the vector target."""
        for key in keys:
            self.v[target] += self.staged.pop(key)

    def discard(self) -> None:
        """Drop every push not committed (a new batch starts)."""
        self.staged.clear()

    def vectors(self, names: List[str]) -> Dict[str, np.ndarray]:
        return {name: self.v[name] for name in names}

    def load(self, arrays: Dict[str, np.ndarray]) -> None:
        for name, a in arrays.items():
            self.v[name][:] = a


@dataclass
class UnitResult:
    """A unit's cost, and the push that now carries it and the units before it since the last one."""

    unit: int
    cost: float
    push: Optional[PushKey] = None
    pushed_units: Tuple[int, ...] = ()


class SandblasterReplica:
    """Computes GloVe gradients at the point a batch evaluates, a unit of entries at a time."""

    def __init__(self, index: int, shards: list, blocks: list, n_words: int, dim: int, hyper: np.ndarray,
                 push_every: int):
        self.index, self.shards, self.blocks = index, shards, blocks
        self.n_words, self.dim, self.hyper, self.push_every = n_words, dim, np.array(hyper), push_every
        self.batch = -1
        self.params = self.acc = None
        self.units: List[int] = []
        self.pushes = 0

    def _start(self, batch: int, point: str) -> None:
        """Fetch the point from every shard and start an empty accumulator (a batch's start)."""
        import ray  # only inside a Ray worker

        self.params = join_params(ray.get([s.get.remote(point) for s in self.shards]), self.n_words, self.dim)
        self.acc = tuple(np.zeros_like(p) for p in self.params)
        self.batch, self.units = batch, []

    def run_unit(self, batch: int, point: str, unit: int, push_now: bool = False) -> UnitResult:
        if batch != self.batch:
            self._start(batch, point)
        import ray  # only inside a Ray worker

        coo = tuple(np.array(a) for a in ray.get(self.blocks[unit]))  # the object store's arrays are read-only
        cost = glove_gradient(self.params, self.acc, coo, self.hyper)
        self.units.append(unit)
        result = UnitResult(unit, cost)
        if push_now or len(self.units) >= self.push_every:
            result.push, result.pushed_units = self.flush(batch)
        return result

    def flush(self, batch: int) -> Tuple[Optional[PushKey], Tuple[int, ...]]:
        """Stage the accumulated gradient in every shard; (its key, the units it carries)."""
        if batch != self.batch or not self.units:
            return None, ()
        import ray  # only inside a Ray worker

        key = (self.index, self.pushes)
        self.pushes += 1
        pieces = split_params(self.acc, len(self.shards))
        ray.get([s.stage.remote(key, piece) for s, piece in zip(self.shards, pieces)])
        units, self.units = tuple(self.units), []
        for a in self.acc:
            a[:] = 0.0
        return key, units
