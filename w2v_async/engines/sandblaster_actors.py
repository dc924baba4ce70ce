"""Sandblaster's shards and, on Ray, its actors and batch passes: parameter-server shards that
stage and commit gradient pushes, replicas that compute a batch's gradient one small work unit at
a time, and ``BatchPasses``, which hands the units out and commits each exactly once.

A shard holds its rows (words s, s + m, s + 2m, ... of every GloVe array, flattened) of every
vector L-BFGS keeps (sandblaster.VectorShard). A replica fetches the point it is told to evaluate
from every shard at the start of each batch, adds each unit's gradient into a local accumulator,
and pushes the sum to the shards every few units. A push is staged in the shards under its key
and only added to the gradient when the coordinator commits it: a unit whose replica died, or
that a backup copy finished first, is then counted exactly once.
"""

import math
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from ..models.glove import glove_gradient

PushKey = Tuple[int, int]  # (replica, its push number)
WORK_VECTORS = ("x", "g", "d", "xt", "gt", "q")


class PassStopped(Exception):
    """A batch pass stopped early (a signal): what it computed is not used."""


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

    def wdot(self, a: str, w: str, b: str) -> float:
        """sum a w b (a dot product weighted by the vector w)."""
        return float(np.dot(self.v[a] * self.v[w], self.v[b]))

    def mul(self, w: str, a: str) -> None:
        """a *= w, element by element."""
        self.v[a] *= self.v[w]

    def set_row_weights(self, word: np.ndarray, ctx: np.ndarray, dim: int) -> None:
        """The diagonal preconditioner h: 1 / the weight of each parameter's row (this shard's rows
        of sum_j f(X_ij) for w_i and b_i, sum_i f(X_ij) for w~_j and b~_j)."""
        inv_word, inv_ctx = (1.0 / np.maximum(m, 1e-12) for m in (word, ctx))
        self.v["h"] = np.concatenate([np.repeat(inv_word, dim), np.repeat(inv_ctx, dim), inv_word, inv_ctx])

    def zero(self, a: str) -> None:
        self.v[a][:] = 0.0

    def get(self, a: str) -> np.ndarray:
        return self.v[a]

    def add(self, a: str, delta: np.ndarray) -> None:
        self.v[a] += delta

    def load(self, arrays: Dict[str, np.ndarray]) -> None:
        for name, a in arrays.items():
            self.v[name][:] = a


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


class ShardGroup:
    """Commands to every shard; dot products come back summed. This one calls shards in this
    process; the Ray group sends the same commands to actors."""

    def __init__(self, shards: Sequence[VectorShard]):
        self.shards = list(shards)

    def call(self, method: str, *args) -> list:
        return [getattr(s, method)(*args) for s in self.shards]

    def call_each(self, method: str, args: list) -> list:
        """Shard k gets the arguments args[k] (a tuple)."""
        return [getattr(s, method)(*a) for s, a in zip(self.shards, args)]

    def load(self, name: str, pieces: List[np.ndarray]) -> None:
        """Set the vector name from each shard's piece (split_params's layout)."""
        self.call_each("load", [({name: piece},) for piece in pieces])

    def dot(self, a: str, b: str) -> float:
        return math.fsum(self.call("dot", a, b))  # the same sum however the rows are split

    def axpy(self, alpha: float, a: str, b: str) -> None:
        self.call("axpy", alpha, a, b)

    def scale(self, alpha: float, a: str) -> None:
        self.call("scale", alpha, a)

    def wdot(self, a: str, w: str, b: str) -> float:
        return math.fsum(self.call("wdot", a, w, b))

    def mul(self, w: str, a: str) -> None:
        self.call("mul", w, a)

    def lincomb(self, out: str, alpha: float, a: str, beta: float, b: str) -> None:
        self.call("lincomb", out, alpha, a, beta, b)

    def copy(self, a: str, b: str) -> None:
        self.call("lincomb", b, 1.0, a, 0.0, a)


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


@dataclass
class UnitResult:
    """A unit's cost, and the push that now carries it and the units before it since the last one."""

    unit: int
    cost: float
    push: Optional[PushKey] = None
    pushed_units: Tuple[int, ...] = ()


class SandblasterReplica:
    """Computes GloVe gradients at the point a batch evaluates, a unit of entries at a time. It
    finds the run's shards by name (``{run}-shard-{s}``), so a replica Ray restarts needs nothing
    but its constructor's small arguments; each unit's entries come with the task."""

    def __init__(self, index: int, run: str, n_shards: int, n_words: int, dim: int, hyper: np.ndarray,
                 push_every: int):
        self.index, self.run, self.n_shards = index, run, n_shards
        self.n_words, self.dim, self.hyper, self.push_every = n_words, dim, np.array(hyper), push_every
        self.shards: list = []
        self.batch = -1
        self.params = self.acc = None
        self.units: List[int] = []
        self.pushes = 0

    def _start(self, batch: int, point: str) -> None:
        """Fetch the point from every shard and start an empty accumulator (a batch's start)."""
        import ray  # only inside a Ray worker

        if not self.shards:
            self.shards = [ray.get_actor(f"{self.run}-shard-{s}") for s in range(self.n_shards)]
        self.params = join_params(ray.get([s.get.remote(point) for s in self.shards]), self.n_words, self.dim)
        self.acc = tuple(np.zeros_like(p) for p in self.params)
        self.batch, self.units = batch, []

    def run_unit(self, batch: int, point: str, unit: int, coo: tuple, push_now: bool = False) -> UnitResult:
        """Add the gradient of unit's entries coo = (rows, cols, values) at the batch's point."""
        if batch != self.batch:
            self._start(batch, point)
        coo = tuple(np.array(a) for a in coo)  # the object store's arrays are read-only
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


# ---- on Ray ----

RESTART_WAIT_S = 0.5  # a failed replica gets no work for this long (Ray restarts it meanwhile)
MAX_FAILURES = 20  # failures in a row of every replica that stop the run
BACKUP_AFTER = 3.0  # a unit running this many median unit times gets a backup copy,
BACKUP_MIN_S = 0.5  # and at least this long

class RayShardGroup(ShardGroup):
    """The same commands, sent to shard actors; each answer is a scalar or nothing."""

    def __init__(self, ray, actors: list):
        super().__init__(actors)
        self.ray = ray

    def call(self, method: str, *args) -> list:
        return self.ray.get([getattr(s, method).remote(*args) for s in self.shards])

    def call_each(self, method: str, args: list) -> list:
        return self.ray.get([getattr(s, method).remote(*a) for s, a in zip(self.shards, args)])


class BatchPasses:
    """evaluate(point, gradient) for lbfgs on Ray: one pass of the replicas over every work unit.

    blocks[u] is unit u's entries (an object in Ray's store, fetched by the replica that runs it).
    Units go to whichever replica is free, ``in_flight`` at a time each (the paper's load
    balancing). A replica's pushes are staged in the shards and committed here only when none of
    their units has been counted: a dead replica's units that were not committed are handed out
    again, and once no unit is left to hand out, units still running or waiting in a replica's
    accumulator get a backup copy on an idle replica (pushed at once); whichever push arrives
    first is committed, and the units of a push refused that way are handed out again. So every
    unit's gradient enters the shards exactly once, whatever fails.
    """

    def __init__(self, ray, group: RayShardGroup, replicas: list, blocks: list, in_flight: int = 2,
                 on_result: Callable[[int], None] = None):
        self.ray, self.group, self.replicas, self.blocks = ray, group, replicas, blocks
        self.n_units = len(blocks)
        self.in_flight = in_flight
        self.on_result = on_result  # called with the number of unit results so far (a hook for tests)
        self.should_stop: Optional[Callable[[], bool]] = None  # polled between results: True stops the pass
        self.results = 0
        self.batch = 0
        self.retried = 0  # units handed out again after a failure or a refused push
        self.backups = 0
        self.unit_seconds: List[float] = []

    def __call__(self, point: str, gradient: str) -> float:
        ray = self.ray
        self.batch += 1
        batch = self.batch
        self.group.call("discard")
        self.group.call("zero", gradient)
        queue = list(range(self.n_units))
        queue.reverse()  # pop() hands out unit 0 first
        counted: Dict[int, float] = {}
        costs: Dict[Tuple[int, int], float] = {}  # (replica, unit) -> cost, until its push is committed
        held: Dict[int, set] = {r: set() for r in range(len(self.replicas))}  # units run, not yet pushed
        running: Dict = {}  # ObjectRef -> (replica, unit or None for a flush)
        backed_up: set = set()
        dead = ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError

        def load(r: int) -> int:
            return sum(1 for rr, _ in running.values() if rr == r)

        def settle(r: int, push, units) -> None:
            if push is None:
                return
            if counted.keys() & set(units):  # a backup copy was counted first: hand the rest out again
                again = [u for u in units if u not in counted]
                queue.extend(again)
                self.retried += len(again)
            else:
                self.group.call("commit", gradient, [push])
                for u in units:
                    counted[u] = costs.pop((r, u))
            held[r].difference_update(units)

        started: Dict = {}  # ObjectRef -> when it was handed out
        down_until = [0.0] * len(self.replicas)  # a replica that failed gets no work while Ray restarts it
        failures = [0] * len(self.replicas)  # its failures since its last result

        def requeue_held(r: int, extra=()) -> None:
            lost = [u for u in held[r] | set(extra) if u not in counted]
            held[r].clear()
            queue.extend(lost)
            self.retried += len(lost)

        def handle(ref) -> None:
            r, unit = running.pop(ref)
            t0 = started.pop(ref, None)
            try:
                result = ray.get(ref)
            except dead:  # the replica died (Ray restarts it): what it held was never committed
                requeue_held(r, () if unit is None else (unit,))
                failures[r] += 1
                down_until[r] = time.monotonic() + RESTART_WAIT_S
                if min(failures) > MAX_FAILURES:
                    raise InputError(f"every Sandblaster replica keeps failing ({MAX_FAILURES} times in a row); "
                                     "see the Ray logs (ray logs) for why.") from None
                return
            failures[r] = 0
            if unit is None:
                if result[0] is None:  # restarted while idle: what it held is gone
                    requeue_held(r)
                settle(r, *result)
                return
            costs[(r, unit)] = result.cost
            held[r].add(unit)
            if t0 is not None:
                self.unit_seconds.append(time.monotonic() - t0)
            self.results += 1
            if self.on_result is not None:
                self.on_result(self.results)
            settle(r, result.push, result.pushed_units)

        while len(counted) < self.n_units:
            if self.should_stop is not None and self.should_stop():
                raise PassStopped()
            for r, replica in enumerate(self.replicas):
                while queue and load(r) < self.in_flight and time.monotonic() >= down_until[r]:
                    unit = queue.pop()
                    if unit in counted or any(unit in h for h in held.values()) or \
                            any(u == unit for _, u in running.values()):
                        continue  # counted, or still on its way (the same unit twice in one push would count twice)
                    ref = replica.run_unit.remote(batch, point, unit, self.blocks[unit])
                    running[ref] = (r, unit)
                    started[ref] = time.monotonic()
            if not queue and not running:  # everything ran: push what the accumulators hold
                for r, replica in enumerate(self.replicas):
                    if held[r]:
                        running[replica.flush.remote(batch)] = (r, None)
            if not queue:
                self._back_up(batch, point, running, started, counted, backed_up, down_until)
            if not running:
                time.sleep(RESTART_WAIT_S / 10)  # every replica with work is restarting
                continue
            [ready], _ = ray.wait(list(running), num_returns=1)
            r = running[ready][0]
            # a replica runs its tasks in order: handle its results in that order (a push carries
            # units whose own results must be in first)
            for ref in [k for k, (rr, _) in running.items() if rr == r]:
                handle(ref)
                if ref == ready:
                    break
        return math.fsum(counted[u] for u in range(self.n_units))

    def _back_up(self, batch, point, running, started, counted, backed_up, down_until) -> None:
        """Give each idle replica one unit that has run on another for over BACKUP_AFTER times the
        median unit and BACKUP_MIN_S (the paper's backup tasks: a straggler delays nothing). Units done but not
        yet pushed are left alone: they are pushed when the batch's last units are in."""
        if not self.unit_seconds:
            return
        now = time.monotonic()
        slow_after = max(BACKUP_MIN_S, BACKUP_AFTER * float(np.median(self.unit_seconds[-200:])))
        busy = {r for r, _ in running.values()} | {r for r, t in enumerate(down_until) if now < t}
        waiting = [u for ref, (_, u) in running.items()
                   if u is not None and u not in counted and u not in backed_up and now - started[ref] > slow_after]
        for r, replica in enumerate(self.replicas):
            if r in busy or not waiting:
                continue
            unit = waiting.pop(0)
            backed_up.add(unit)
            self.backups += 1
            ref = replica.run_unit.remote(batch, point, unit, self.blocks[unit], True)
            running[ref] = (r, unit)
            started[ref] = now
