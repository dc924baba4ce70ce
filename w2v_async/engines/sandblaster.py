"""Sandblaster L-BFGS (Dean et al., "Large Scale Distributed Deep Networks", NIPS 2012): batch
optimisation whose coordinator never holds the parameters.

Parameter-server shards hold, for their rows, every vector L-BFGS keeps: the point x, its gradient
g, the direction d, the trial point and its gradient, and the history pairs (s_k, y_k). The
coordinator (``lbfgs``) sends them small commands (dot products, axpy, scaling, copies: the steps
of the two-loop recursion and of the line search) and combines their scalar answers, so its
messages are O(scalars) per command whatever the model's size. The objective and the gradient at
a point come from ``evaluate(point, gradient)``: distributed passes over the data that leave the
gradient in the shards (replicas on Ray; the caller's function in tests).

This file is the coordinator and a local shard group (shards in this process); the Ray shards and
replicas plug in through the same ``ShardGroup`` interface.
"""

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from ..errors import InputError


from .sandblaster_actors import VectorShard  # noqa: F401 -- the shard a local ShardGroup holds


class ShardGroup:
    """Commands to every shard; dot products come back summed. This one calls shards in this
    process; the Ray group sends the same commands to actors."""

    def __init__(self, shards: Sequence[VectorShard]):
        self.shards = list(shards)

    def call(self, method: str, *args) -> list:
        return [getattr(s, method)(*args) for s in self.shards]

    def dot(self, a: str, b: str) -> float:
        return math.fsum(self.call("dot", a, b))  # the same sum however the rows are split

    def axpy(self, alpha: float, a: str, b: str) -> None:
        self.call("axpy", alpha, a, b)

    def scale(self, alpha: float, a: str) -> None:
        self.call("scale", alpha, a)

    def lincomb(self, out: str, alpha: float, a: str, beta: float, b: str) -> None:
        self.call("lincomb", out, alpha, a, beta, b)

    def copy(self, a: str, b: str) -> None:
        self.call("lincomb", b, 1.0, a, 0.0, a)


@dataclass(frozen=True)
class LbfgsSettings:
    """History size, stopping rules and the Wolfe line search's constants (c1 sufficient decrease,
    c2 curvature; L-BFGS-B's line search uses 1e-3 and 0.9)."""

    history: int = 10
    max_iter: int = 100
    gtol: float = 1e-5  # stop when ||g|| <= gtol
    ftol: float = 1e-10  # stop when the loss changes by at most ftol relative
    c1: float = 1e-3
    c2: float = 0.9
    max_evals: int = 25  # objective evaluations per line search


@dataclass
class LbfgsState:
    """What the coordinator holds between iterations: scalars and history slot numbers only."""

    f: float = math.nan
    gnorm: float = math.nan
    iteration: int = 0
    evaluations: int = 0
    pairs: List[Tuple[int, float, float]] = field(default_factory=list)  # (slot, s.y, y.y), oldest first
    history: List[float] = field(default_factory=list)  # f after each iteration
    stop: str = ""


def two_loop(group: ShardGroup, pairs: Sequence[Tuple[int, float, float]]) -> None:
    """d = -H g, H the L-BFGS inverse Hessian of the pairs with H0 = (s.y / y.y) I (Nocedal &
    Wright, Algorithm 7.4), computed in the shards' vector q."""
    group.copy("g", "q")
    alphas = []
    for slot, sy, _ in reversed(pairs):
        a = group.dot(f"s{slot}", "q") / sy
        group.axpy(-a, f"y{slot}", "q")
        alphas.append(a)
    if pairs:
        _, sy, yy = pairs[-1]
        group.scale(sy / yy, "q")
    for (slot, sy, _), a in zip(pairs, reversed(alphas)):
        b = group.dot(f"y{slot}", "q") / sy
        group.axpy(a - b, f"s{slot}", "q")
    group.lincomb("d", -1.0, "q", 0.0, "q")


def _cubic_min(t0: float, f0: float, d0: float, t1: float, f1: float, d1: float) -> float:
    """The minimiser of the cubic through (t0, f0, d0) and (t1, f1, d1) (Nocedal & Wright 3.59);
    nan when it has none."""
    d_1 = d0 + d1 - 3 * (f0 - f1) / (t0 - t1)
    disc = d_1 * d_1 - d0 * d1
    if disc < 0:
        return math.nan
    d_2 = math.copysign(math.sqrt(disc), t1 - t0)
    denom = d1 - d0 + 2 * d_2
    return math.nan if denom == 0 else t1 - (t1 - t0) * (d1 + d_2 - d_1) / denom


def wolfe_search(phi: Callable[[float], Tuple[float, float]], f0: float, d0: float, t: float,
                 settings: LbfgsSettings) -> Tuple[float, float, float, int]:
    """A step t satisfying the strong Wolfe conditions along a descent direction (Nocedal &
    Wright, Algorithms 3.5 and 3.6, cubic interpolation safeguarded by bisection).

    phi(t) -> (f, f') evaluates the objective and its directional derivative at t. Returns
    (t, f, f', evaluations); the last evaluation is always at the returned t, so whatever phi
    leaves behind (the trial point and its gradient) belongs to it.
    """
    c1, c2 = settings.c1, settings.c2
    prev = (0.0, f0, d0)
    evals = 0

    def zoom(lo, hi):
        nonlocal evals
        while True:
            (t_lo, f_lo, d_lo), (t_hi, f_hi, d_hi) = lo, hi
            width = abs(t_hi - t_lo)
            t_j = _cubic_min(t_lo, f_lo, d_lo, t_hi, f_hi, d_hi)
            low, high = min(t_lo, t_hi), max(t_lo, t_hi)
            if not (low + 0.1 * width <= t_j <= high - 0.1 * width):
                t_j = 0.5 * (t_lo + t_hi)
            f_j, d_j = phi(t_j)
            evals += 1
            if f_j > f0 + c1 * t_j * d0 or f_j >= f_lo:
                hi = (t_j, f_j, d_j)
            else:
                if abs(d_j) <= -c2 * d0:
                    return t_j, f_j, d_j
                if d_j * (t_hi - t_lo) >= 0:
                    hi = lo
                lo = (t_j, f_j, d_j)
            if evals >= settings.max_evals or width < 1e-16 * max(1.0, high):
                if lo[0] != t_j:  # leave phi's state at the point returned
                    f_lo, d_lo = phi(lo[0])
                    evals += 1
                    return lo[0], f_lo, d_lo
                return t_j, f_j, d_j

    while True:
        f_t, d_t = phi(t)
        evals += 1
        if f_t > f0 + c1 * t * d0 or (evals > 1 and f_t >= prev[1]):
            return (*zoom(prev, (t, f_t, d_t)), evals)
        if abs(d_t) <= -c2 * d0:
            return t, f_t, d_t, evals
        if d_t >= 0:
            return (*zoom((t, f_t, d_t), prev), evals)
        if evals >= settings.max_evals:
            return t, f_t, d_t, evals
        prev = (t, f_t, d_t)
        t *= 2.0


def lbfgs(group: ShardGroup, evaluate: Callable[[str, str], float], settings: LbfgsSettings,
          state: LbfgsState = None, on_iteration: Callable[[LbfgsState], None] = None) -> LbfgsState:
    """Minimise from the shards' x (or from a resumed state): each iteration computes d = -H g
    in the shards, finds a Wolfe step along it with distributed passes (evaluate("xt", "gt")),
    and keeps the pair s = xt - x, y = gt - g in the next history slot. Stops after max_iter
    iterations, when ||g|| <= gtol, or when the loss changes by at most ftol relative."""
    state = state or LbfgsState()
    if math.isnan(state.f):
        state.f = evaluate("x", "g")
        state.evaluations += 1
        state.gnorm = math.sqrt(group.dot("g", "g"))
    while True:
        if state.gnorm <= settings.gtol:
            state.stop = "gradient"
            return state
        if state.iteration >= settings.max_iter:
            state.stop = "max_iter"
            return state
        two_loop(group, state.pairs)
        d0 = group.dot("d", "g")
        if not d0 < 0:  # not a descent direction (curvature lost): restart from steepest descent
            state.pairs.clear()
            group.lincomb("d", -1.0, "g", 0.0, "g")
            d0 = -state.gnorm ** 2
        first = 1.0 / state.gnorm if not state.pairs else 1.0

        def phi(t: float) -> Tuple[float, float]:
            group.lincomb("xt", 1.0, "x", t, "d")
            f = evaluate("xt", "gt")
            return f, group.dot("gt", "d")

        t, f_new, _, evals = wolfe_search(phi, state.f, d0, first, settings)
        state.evaluations += evals
        slot = state.iteration % settings.history
        group.lincomb(f"s{slot}", 1.0, "xt", -1.0, "x")
        group.lincomb(f"y{slot}", 1.0, "gt", -1.0, "g")
        sy, yy = group.dot(f"s{slot}", f"y{slot}"), group.dot(f"y{slot}", f"y{slot}")
        state.pairs = [p for p in state.pairs if p[0] != slot]
        if sy > 1e-12 * yy:  # keep H positive definite
            state.pairs.append((slot, sy, yy))
        group.copy("xt", "x")
        group.copy("gt", "g")
        change = (state.f - f_new) / max(abs(state.f), abs(f_new), 1.0)
        state.f, state.gnorm = f_new, math.sqrt(group.dot("g", "g"))
        state.iteration += 1
        state.history.append(f_new)
        if on_iteration is not None:
            on_iteration(state)
        if 0 <= change <= settings.ftol:
            state.stop = "loss"
            return state


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


class BatchPasses:
    """evaluate(point, gradient) for lbfgs on Ray: one pass of the replicas over every work unit.

    Units go to whichever replica is free, ``in_flight`` at a time each (the paper's load
    balancing). A replica's pushes are staged in the shards and committed here only when none of
    their units has been counted: a dead replica's units that were not committed are handed out
    again, and once no unit is left to hand out, units still running or waiting in a replica's
    accumulator get a backup copy on an idle replica (pushed at once); whichever push arrives
    first is committed, and the units of a push refused that way are handed out again. So every
    unit's gradient enters the shards exactly once, whatever fails.
    """

    def __init__(self, ray, group: RayShardGroup, replicas: list, n_units: int, in_flight: int = 2,
                 on_result: Callable[[int], None] = None):
        self.ray, self.group, self.replicas, self.n_units = ray, group, replicas, n_units
        self.in_flight = in_flight
        self.on_result = on_result  # called with the number of unit results so far (a hook for tests)
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
            for r, replica in enumerate(self.replicas):
                while queue and load(r) < self.in_flight and time.monotonic() >= down_until[r]:
                    unit = queue.pop()
                    if unit in counted or any(unit in h for h in held.values()) or \
                            any(u == unit for _, u in running.values()):
                        continue  # counted, or still on its way (the same unit twice in one push would count twice)
                    ref = replica.run_unit.remote(batch, point, unit)
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
            ref = replica.run_unit.remote(batch, point, unit, True)
            running[ref] = (r, unit)
            started[ref] = now
