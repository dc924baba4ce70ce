"""What the experiment records of a run: snapshots of the vectors and the loss while it trains,
taken through the engines' checkpoint hook, and a time budget that stops it as a signal would."""

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Union

import numpy as np

from ..engines.base import Checkpointing


class Budget:
    """A StopSignal (engines/base.py) that fires once seconds have passed since it was made; the
    engines obey it only once the run has done some work (needs_progress), so a scaling run on a
    loaded machine measures at least one progress tick, never 0 words/s."""

    needs_progress = True

    def __init__(self, seconds: float):
        self.deadline = time.perf_counter() + seconds

    @property
    def signal(self) -> Optional[str]:
        return "budget" if time.perf_counter() >= self.deadline else None


@dataclass
class Snapshot:
    """The run at one moment: seconds since it started, words (GloVe: entries) trained, the mean
    loss of the examples since the last snapshot, and the vectors then (the array, or the .npy
    file it was written to; None once evaluated)."""

    seconds: float
    words: int
    loss: float
    vectors: Union[np.ndarray, str, None] = None
    analogy: Optional[float] = None
    ws353: Optional[float] = None


@dataclass
class SchemeRun:
    """One scheme's run: its name, label, workers, snapshots, and what its engine measured."""

    name: str
    label: str
    workers: int
    seconds: float = 0.0
    words: int = 0
    snapshots: List[Snapshot] = field(default_factory=list)
    extra: Dict[str, float] = field(default_factory=dict)

    @property
    def words_per_sec(self) -> float:
        return self.words / self.seconds if self.seconds > 0 else 0.0

    @property
    def final(self) -> Optional[Snapshot]:
        return self.snapshots[-1] if self.snapshots else None


class Recorder:
    """Takes a Snapshot at every checkpoint an engine offers (every every_s seconds), stops the run
    at the budget, and adds the final one. vectors(params) picks the vectors from the arrays a
    checkpoint saves (w_in, or GloVe's W + W~). Snapshots keep the first rows rows (the words an
    evaluation looks at), in memory, or with spill_dir in .npy files there: at 400,000 words and
    dim 100 a snapshot is 160 MB, and an experiment takes about 70.
    """

    def __init__(self, run: SchemeRun, budget_s: float, every_s: float,
                 vectors: Callable[[Dict[str, np.ndarray]], np.ndarray], rows: Optional[int] = None,
                 spill_dir: Optional[str] = None):
        self.run, self.vectors, self.rows, self.spill_dir = run, vectors, rows, spill_dir
        self.start = time.perf_counter()
        self.budget = Budget(budget_s)
        self.every_s = every_s
        self.loss_sum = 0.0
        self.examples = 0

    def checkpointing(self) -> Checkpointing:
        return Checkpointing(save=self.save, every_s=self.every_s, interrupts=self.budget)

    def _take(self, words: int, loss_sum: float, examples: int, vectors: np.ndarray) -> None:
        new = examples - self.examples
        loss = (loss_sum - self.loss_sum) / new if new > 0 else float("nan")
        if new > 0 or not self.run.snapshots:
            kept: Union[np.ndarray, str] = np.array(vectors[: self.rows], np.float32)
            if self.spill_dir is not None:
                path = os.path.join(self.spill_dir, f"{self.run.name}-{len(self.run.snapshots)}.npy")
                np.save(path, kept)
                kept = path
            self.run.snapshots.append(Snapshot(time.perf_counter() - self.start, int(words), float(loss), kept))
        self.loss_sum, self.examples = loss_sum, examples

    def save(self, params: Dict[str, np.ndarray], state) -> None:
        # engines also offer one at every epoch's end: GloVe's 15 short epochs would triple the
        # snapshots to evaluate, so one comes at most every half interval
        last = self.run.snapshots[-1].seconds if self.run.snapshots else -self.every_s
        if time.perf_counter() - self.start - last < self.every_s / 2:
            return
        self._take(int(state.counters[1:].sum()), float(state.loss.sum()), int(state.examples.sum()),
                   self.vectors(params))

    def finish(self, result, vectors: np.ndarray, words: int, loss_sum: float, examples: int) -> SchemeRun:
        """The final snapshot from the engine's result, and the run's totals."""
        self._take(words, loss_sum, examples, vectors)
        self.run.seconds = time.perf_counter() - self.start
        self.run.words = words
        self.run.extra.update({k: v for k, v in getattr(result, "downpour", {}).items()
                               if isinstance(v, (int, float))})
        return self.run
