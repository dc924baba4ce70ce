"""Sandblaster L-BFGS (Dean et al., "Large Scale Distributed Deep Networks", NIPS 2012): batch
optimisation whose coordinator never holds the parameters.

Parameter-server shards hold, for their rows, every vector L-BFGS keeps: the point x, its gradient
g, the direction d, the trial point and its gradient, and the history pairs (s_k, y_k). The
coordinator (``lbfgs``) sends them small commands (dot products, axpy, scaling, copies: the steps
of the two-loop recursion and of the line search) and combines their scalar answers, so its
messages are O(scalars) per command whatever the model's size. The objective and the gradient at
a point come from ``evaluate(point, gradient)``: distributed passes over the data that leave the
gradient in the shards (replicas on Ray; the caller's function in tests).

This file is the coordinator and the engine's entry (``train_glove_sandblaster``); the shards, the
Ray actors and the batch passes are in sandblaster_actors.py, behind the ``ShardGroup`` interface.
"""

import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from ..config import GloveConfig, RayConfig, SandblasterConfig
from ..errors import ConfigError, InputError
from .base import Checkpointing, GloveResult, Progress, RunState, connect
from .sandblaster_actors import (BatchPasses, GradientShard, PassStopped, RayShardGroup, SandblasterReplica,
                                 ShardGroup, join_params, split_params)


@dataclass(frozen=True)
class LbfgsSettings:
    """History size, stopping rules and the Wolfe line search's constants (c1 sufficient decrease,
    c2 curvature; L-BFGS-B's line search uses 1e-3 and 0.9)."""

    history: int = 10
    max_iter: int = 100
    gtol: float = 1e-5  # stop when ||g|| <= gtol (times the first ||g|| when relative_gtol)
    ftol: float = 1e-10  # stop when the loss changes by at most ftol relative
    c1: float = 1e-3
    c2: float = 0.9
    max_evals: int = 25  # objective evaluations per line search
    relative_gtol: bool = False
    diagonal: bool = False  # precondition by the shards' vector h (two_loop)


@dataclass
class LbfgsState:
    """What the coordinator holds between iterations: scalars and history slot numbers only."""

    f: float = math.nan
    gnorm: float = math.nan
    gnorm0: float = math.nan  # ||g|| at the start
    iteration: int = 0
    evaluations: int = 0
    pairs: List[Tuple[int, float, float]] = field(default_factory=list)  # (slot, s.y, y.y), oldest first
    history: List[float] = field(default_factory=list)  # f after each iteration
    stop: str = ""


def two_loop(group: ShardGroup, pairs: Sequence[Tuple[int, float, float]], diagonal: bool = False) -> None:
    """d = -H g, H the L-BFGS inverse Hessian of the pairs with H0 = (s.y / y.y) I (Nocedal &
    Wright, Algorithm 7.4), computed in the shards' vector q. With diagonal, H0 = gamma diag(h),
    gamma = s.y / (y.h.y) (h the shards' preconditioner): plain L-BFGS in the variables scaled
    by h^(-1/2)."""
    group.copy("g", "q")
    alphas = []
    for slot, sy, _ in reversed(pairs):
        a = group.dot(f"s{slot}", "q") / sy
        group.axpy(-a, f"y{slot}", "q")
        alphas.append(a)
    if diagonal:
        group.mul("h", "q")
    if pairs:
        slot, sy, yy = pairs[-1]
        group.scale(sy / (group.wdot(f"y{slot}", "h", f"y{slot}") if diagonal else yy), "q")
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
        state.gnorm = state.gnorm0 = math.sqrt(group.dot("g", "g"))
    gtol = settings.gtol * (state.gnorm0 if settings.relative_gtol else 1.0)
    while True:
        if state.gnorm <= gtol:
            state.stop = "gradient"
            return state
        if state.iteration >= settings.max_iter:
            state.stop = "max_iter"
            return state
        two_loop(group, state.pairs, settings.diagonal)
        d0 = group.dot("d", "g")
        if not d0 < 0:  # not a descent direction (curvature lost): restart from (scaled) steepest descent
            state.pairs.clear()
            two_loop(group, state.pairs, settings.diagonal)
            d0 = group.dot("d", "g")
        first = 1.0 / math.sqrt(-d0) if not state.pairs else 1.0  # 1 / ||g|| in the scaled variables

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


def train_glove_sandblaster(cooc, cfg: GloveConfig, rcfg: RayConfig, scfg: SandblasterConfig, progress: bool = True,
                            checkpointing: Optional[Checkpointing] = None,
                            after_result: Optional[Callable[[list, int], None]] = None) -> GloveResult:
    """GloVe by Sandblaster L-BFGS on Ray: the batch objective is the sum of J over every entry, its
    gradient computed by rcfg.replicas replicas over units of scfg.unit_entries entries, the
    parameters and L-BFGS's vectors held by rcfg.ps_shards shards.

    Parameters start as the threaded engine's (same seed, uniform(-0.5, 0.5) / dim). epoch_cost
    holds the mean J per entry after each iteration. checkpointing as the other engines: a
    checkpoint (at the first iteration's end after every every_s seconds, and at the end) holds the parameters
    and L-BFGS's state (the gradient, the history pairs); a signal stops the batch pass under way
    and returns the state of the last finished iteration with state.stopped set.
    """
    cfg.validate()
    rcfg.validate()
    scfg.validate()
    ckpt = checkpointing or Checkpointing()
    ray = connect(rcfg, "sandblaster")
    n_words, nnz = len(cooc.vocab), cooc.nnz
    settings = LbfgsSettings(history=scfg.history, max_iter=scfg.max_iter, gtol=scfg.gtol, ftol=scfg.ftol,
                             relative_gtol=True, diagonal=scfg.precondition)
    saved = checkpoint_state(ckpt.resume, n_words, cfg.dim, scfg.history) if ckpt.resume is not None else None
    if saved is None:
        rng = np.random.default_rng(cfg.seed)
        scale = np.float32(1.0 / cfg.dim)
        params = [((rng.random(shape, dtype=np.float32) - np.float32(0.5)) * scale).astype(np.float64)
                  for shape in param_shapes(n_words, cfg.dim)]
        state, seconds = LbfgsState(), 0.0
    else:
        params, state, vectors, seconds = saved
    run_name = f"w2v-async-sandblaster-{uuid.uuid4().hex[:12]}"
    shard_cls = ray.remote(num_cpus=1)(GradientShard)  # a CPU each, as Downpour's: apart from the replicas
    shards = [shard_cls.options(name=f"{run_name}-shard-{s}").remote(flat, settings.history)
              for s, flat in enumerate(split_params(params, rcfg.ps_shards))]
    del params
    group = RayShardGroup(ray, shards)
    if saved is not None:
        for name, flat in vectors.items():
            group.load(name, split_params(unflatten(flat, n_words, cfg.dim), rcfg.ps_shards))
        del vectors
    if scfg.precondition:
        m = rcfg.ps_shards
        word, ctx = row_weights(cooc, cfg.x_max, cfg.alpha)
        group.call_each("set_row_weights", [(word[s::m], ctx[s::m], cfg.dim) for s in range(m)])
    step = scfg.unit_entries
    blocks = [ray.put(tuple(np.ascontiguousarray(a[lo : lo + step]) for a in (cooc.rows, cooc.cols, cooc.values)))
              for lo in range(0, nnz, step)]
    hyper = np.array([cfg.x_max, cfg.alpha, cfg.eta, cfg.grad_clip], np.float64)
    replica_cls = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(SandblasterReplica)
    replicas = [replica_cls.remote(r, run_name, rcfg.ps_shards, n_words, cfg.dim, hyper, scfg.push_every)
                for r in range(rcfg.replicas)]
    passes = BatchPasses(ray, group, replicas, blocks)
    if after_result is not None:  # a hook for tests (a node removed mid-pass)
        passes.on_result = lambda results: after_result(replicas, results)
    stop = ckpt.interrupts
    passes.should_stop = None if stop is None else (lambda: stop.signal is not None)
    bar = Progress(settings.max_iter, progress, f"glove sandblaster x{rcfg.replicas}", " it")
    bar.update(state.iteration)
    start = time.perf_counter()
    last_save = time.monotonic()

    def run_state(st: LbfgsState, stopped: bool = False) -> RunState:
        run = RunState.new(1, max(settings.max_iter, st.iteration))
        run.loss[0, : st.iteration] = st.history
        run.examples[0, : st.iteration] = nnz
        run.epoch[0] = st.iteration
        run.counters[1] = st.iteration * nnz
        run.seconds = seconds + time.perf_counter() - start
        run.stopped = stopped
        return run

    def gather(st: LbfgsState) -> dict:
        return checkpoint_arrays(group, st, n_words, cfg.dim)

    iteration_seconds: List[float] = []  # this run's training time at each iteration's end

    def on_iteration(st: LbfgsState) -> None:
        nonlocal last_save
        iteration_seconds.append(time.perf_counter() - start)
        bar.update(st.iteration, cost=f"{st.f / nnz:.4f}")
        if ckpt.save is not None and ckpt.every_s is not None and time.monotonic() - last_save >= ckpt.every_s:
            ckpt.save(gather(st), run_state(st))
            last_save = time.monotonic()

    stopped = False
    try:
        try:
            state = lbfgs(group, passes, settings, state, on_iteration)
        except PassStopped:
            stopped = True
        if stopped or ckpt.save is not None:  # a checkpoint (the job writes one on a stop): L-BFGS's state too
            arrays = gather(state)
        else:  # the point only: the history pairs are (2 history + 1) times its size
            arrays = dict(zip(PARAM_NAMES, join_params(group.call("get", "x"), n_words, cfg.dim)))
        if ckpt.save is not None and not stopped:
            ckpt.save(arrays, run_state(state))
    finally:
        bar.close()
        for actor in replicas + shards:
            ray.kill(actor)
    w_word, w_ctx, b_word, b_ctx = (arrays[name].astype(np.float32) for name in PARAM_NAMES)
    run = run_state(state, stopped)
    return GloveResult(
        w_word, w_ctx, b_word, b_ctx, epoch_cost=[f / nnz for f in state.history],
        entries_trained=passes.batch * nnz, seconds=run.seconds, state=run, params=arrays,
        downpour={"iterations": state.iteration, "evaluations": state.evaluations, "stop": state.stop,
                  "units": len(blocks), "units_retried": passes.retried, "backups": passes.backups,
                  "batch_passes": passes.batch, "iteration_seconds": iteration_seconds},
    )


def row_weights(cooc, x_max: float, alpha: float, chunk: int = 1 << 24) -> Tuple[np.ndarray, np.ndarray]:
    """Each row's total GloVe weight: sum_j f(X_ij) for words, sum_i f(X_ij) for contexts. They are
    the objective's curvature along the biases, and along the vectors up to the vectors' scale:
    L-BFGS's preconditioner (two_loop), so rare words move as far as frequent ones."""
    n = len(cooc.vocab)
    word, ctx = np.zeros(n), np.zeros(n)
    for lo in range(0, cooc.nnz, chunk):  # in pieces: no temporary the size of the matrix
        f = np.minimum(np.asarray(cooc.values[lo : lo + chunk], np.float64) / x_max, 1.0) ** alpha
        word += np.bincount(cooc.rows[lo : lo + chunk], f, n)
        ctx += np.bincount(cooc.cols[lo : lo + chunk], f, n)
    return word, ctx


# ---- checkpoints: the parameters and L-BFGS's state, in the rows' natural order ----

PARAM_NAMES = ("w_word", "w_ctx", "b_word", "b_ctx")


def param_shapes(n_words: int, dim: int) -> list:
    return [(n_words, dim), (n_words, dim), (n_words,), (n_words,)]


def unflatten(flat: np.ndarray, n_words: int, dim: int) -> Tuple[np.ndarray, ...]:
    """The four arrays of a vector laid out as w_word, w_ctx, b_word, b_ctx, each raveled."""
    cuts = np.cumsum([n_words * dim, n_words * dim, n_words])
    return tuple(piece.reshape(shape) for piece, shape in zip(np.split(flat, cuts), param_shapes(n_words, dim)))


def _natural(group: ShardGroup, name: str, n_words: int, dim: int) -> np.ndarray:
    return np.concatenate([a.ravel() for a in join_params(group.call("get", name), n_words, dim)])


def checkpoint_arrays(group: ShardGroup, state: LbfgsState, n_words: int, dim: int) -> dict:
    """What a checkpoint holds: the point as the GloVe arrays (float64), the gradient and the
    history pairs in use (flat, the rows in order, whatever the sharding), and the scalars."""
    arrays = dict(zip(PARAM_NAMES, join_params(group.call("get", "x"), n_words, dim)))
    if math.isnan(state.f):  # stopped before the first pass: only the point
        return arrays
    arrays["lbfgs_g"] = _natural(group, "g", n_words, dim)
    for kind in "sy":
        arrays[f"lbfgs_{kind}"] = np.zeros((len(state.pairs), arrays["lbfgs_g"].shape[0]))
        for k, (slot, _, _) in enumerate(state.pairs):
            arrays[f"lbfgs_{kind}"][k] = _natural(group, f"{kind}{slot}", n_words, dim)
    arrays["lbfgs_pairs"] = np.array(state.pairs, np.float64).reshape(-1, 3)
    arrays["lbfgs_scalars"] = np.array([state.f, state.gnorm, state.gnorm0, state.iteration, state.evaluations])
    arrays["lbfgs_history"] = np.array(state.history, np.float64)
    return arrays


def checkpoint_state(arrays: dict, n_words: int, dim: int, history: int):
    """(params, LbfgsState, vectors by shard name, seconds) from a Sandblaster checkpoint's arrays."""
    if "lbfgs_scalars" not in arrays and "gradsq_word" in arrays:
        raise ConfigError("the checkpoint holds AdaGrad's state (--engine threads or ray), not L-BFGS's; resume it "
                          "with --engine threads or ray, or start a new --checkpoint-dir.")
    shapes = param_shapes(n_words, dim)
    params = []
    for name, shape in zip(PARAM_NAMES, shapes):
        a = arrays.get(name)
        if a is None or a.shape != shape:
            raise InputError(f"the checkpoint's {name} is missing or has another shape than {shape}; "
                             "start again without --resume.")
        params.append(np.array(a, np.float64))
    seconds = float(arrays["run_seconds"][0]) if "run_seconds" in arrays else 0.0
    state = LbfgsState()
    if "lbfgs_scalars" not in arrays:
        return params, state, {}, seconds
    f, gnorm, gnorm0, iteration, evaluations = arrays["lbfgs_scalars"].tolist()
    pairs = [(int(slot), sy, yy) for slot, sy, yy in arrays["lbfgs_pairs"].tolist()]
    if any(slot >= history for slot, _, _ in pairs):
        raise ConfigError(f"the checkpoint keeps {max(s for s, _, _ in pairs) + 1} history pairs; resume with "
                          f"--lbfgs-history {max(s for s, _, _ in pairs) + 1} or more.")
    state = LbfgsState(f=f, gnorm=gnorm, gnorm0=gnorm0, iteration=int(iteration), evaluations=int(evaluations),
                       pairs=pairs, history=arrays["lbfgs_history"].tolist())
    vectors = {"g": arrays["lbfgs_g"]}
    for k, (slot, _, _) in enumerate(pairs):
        vectors[f"s{slot}"], vectors[f"y{slot}"] = arrays["lbfgs_s"][k], arrays["lbfgs_y"][k]
    return params, state, vectors, seconds
