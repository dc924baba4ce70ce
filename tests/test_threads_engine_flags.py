"""The threads engine's run flag and signals, with each race forced: the tests hold a thread at
the exact point with an Event or a hook, so what they show does not depend on timing or cores.

Fake run_chunk functions stand in for the kernels: like a kernel at its progress tick, a held one
returns when the flag is no longer RUN (`_until` polls for that, as the kernels do)."""

import signal
import threading
import time

import numpy as np
import pytest

from w2v_async.engines import threads as engine
from w2v_async.engines.base import RunState
from w2v_async.errors import DivergedError
from w2v_async.job import Interrupts
from w2v_async.models.common import RUN

WAIT_S = 60  # only a bound against hanging the suite if the engine were broken


def _until(condition) -> None:
    """Wait until condition() holds (a kernel reads the flag at its tick the same way)."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "the engine never got there"
        threading.Event().wait(0.001)


class _PauseDecision:
    """A checkpoint_every_s whose comparison with the time elapsed (where the main thread decides
    to pause for a timed checkpoint) first runs hook(), then says a checkpoint is due, every time."""

    def __init__(self, hook):
        self.hook, self.calls = hook, 0

    def __bool__(self):
        return True

    def __le__(self, elapsed):  # elapsed >= checkpoint_every_s
        self.calls += 1
        if self.calls == 1:
            self.hook()
        return True

    __ge__ = __le__


@pytest.mark.parametrize("failure", ["exception", "divergence"])
def test_a_worker_failure_is_not_overwritten_by_a_checkpoint_pause(failure):
    """Worker 0 fails (raises, or returns a NaN loss) just as the main thread decides on a timed
    checkpoint: the run must stop at once and report the failure, with no checkpoint of the
    failed state and the other worker stopped at its next tick. Before the fix, the main thread
    had read RUN, then wrote PAUSE over the worker's STOP / DIVERGED: a checkpoint was taken,
    the run went on to the end, and the exception came only then (a divergence never)."""
    fail, entered, worker0 = threading.Event(), threading.Event(), []
    state = RunState.new(2, 1)
    saved = []

    def run_chunk(t, epoch, start, counters):
        if t == 0:
            worker0.append(threading.current_thread())
            entered.set()
            assert fail.wait(WAIT_S)
            if failure == "exception":
                raise RuntimeError("worker 0 failed")
            return float("nan"), 1, 1
        _until(lambda: counters[0] != RUN)  # worker 1 runs until its tick sees the flag
        return 0.0, 1, 1

    def fail_worker0_now():  # the main thread is between reading the flag and pausing
        assert entered.wait(WAIT_S)
        fail.set()
        worker0[0].join(WAIT_S)
        assert not worker0[0].is_alive()

    decision = _PauseDecision(fail_worker0_now)
    expected = RuntimeError if failure == "exception" else DivergedError
    with pytest.raises(expected):
        engine.run_hogwild(2, 1, run_chunk, [1, 3], state, 4, False, "test", lambda c: {},
                           checkpoint=lambda st: saved.append(st.position.copy()), checkpoint_every_s=decision)
    assert decision.calls >= 1
    assert saved == []  # no checkpoint of a failed run
    assert state.position[1] == 1  # worker 1 stopped at its first tick, not after its whole shard


def test_a_second_signal_joins_the_workers_before_the_keyboard_interrupt_propagates(monkeypatch):
    """Two signals: the second raises KeyboardInterrupt in the main thread. The worker (a nogil
    kernel in a real run) is held after its tick saw the flag until the engine joins it; the
    KeyboardInterrupt must reach the caller only once it has ended. Before the fix, the engine
    did not join when a KeyboardInterrupt came under Interrupts: the interpreter could exit with
    the kernels still writing into the arrays being freed."""
    entered, joined = threading.Event(), threading.Event()
    workers = []

    class JoinSeen(threading.Thread):
        def join(self, timeout=None):
            if not joined.is_set():  # the engine's join
                joined.set()
                signal.raise_signal(signal.SIGINT)  # a third signal while joining: ignored
            return super().join(timeout)

    def run_chunk(t, epoch, start, counters):
        workers.append(threading.current_thread())
        entered.set()
        _until(lambda: counters[0] != RUN)  # its tick sees the stop...
        assert joined.wait(WAIT_S)  # ...and it ends only while the engine waits for it
        return 0.0, 1, 1

    def postfix(counters):  # the main thread's progress tick: both signals, once the worker runs
        if entered.is_set() or entered.wait(WAIT_S):
            if interrupts.signal is None:
                signal.raise_signal(signal.SIGINT)
                assert interrupts.signal == "SIGINT"
                signal.raise_signal(signal.SIGTERM)
        return {}

    monkeypatch.setattr(threading, "Thread", JoinSeen)
    interrupts = Interrupts()
    try:
        with interrupts, pytest.raises(KeyboardInterrupt):
            engine.run_hogwild(1, 1, run_chunk, [5], RunState.new(1, 1), 5, False, "test", postfix,
                               interrupts=interrupts)
        assert workers and not workers[0].is_alive()  # joined before the KeyboardInterrupt came out
    finally:
        joined.set()
        for th in workers:
            th.join(WAIT_S)


def test_signals_after_the_second_are_ignored_until_the_block_is_left():
    """The first signal is recorded, the second raises KeyboardInterrupt, a third must not raise
    again (it would cut short the joining of the threads or an atomic write's clean-up)."""
    previous = signal.getsignal(signal.SIGINT)
    with Interrupts() as interrupts:
        signal.raise_signal(signal.SIGTERM)
        assert interrupts.signal == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        try:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGTERM)
        except KeyboardInterrupt:  # before the fix
            pytest.fail("a signal after the second raised KeyboardInterrupt again")
        assert interrupts.signal == "SIGTERM"
    assert signal.getsignal(signal.SIGINT) is previous


def test_the_flag_moves_only_as_its_precedence_allows():
    """RUN and PAUSE alternate; STOP and DIVERGED are never undone by PAUSE or RUN."""
    from w2v_async.models.common import DIVERGED, PAUSE, STOP

    moves = engine.FLAG_MOVES
    assert PAUSE in moves[RUN] and RUN in moves[PAUSE]
    for final in (STOP, DIVERGED):
        assert PAUSE not in moves[final] and RUN not in moves[final]
    assert STOP not in moves[DIVERGED]
    assert np.all([flag in moves for flag in (RUN, PAUSE, STOP, DIVERGED)])


class _ExpiredBudget:
    """An experiment budget already spent (experiment/record.Budget): it asks for a stop at every
    poll, but only once the run has done some work (needs_progress). The second poll lets the
    worker (held until then) start its chunk."""

    needs_progress = True

    def __init__(self):
        self.polls, self.polled_twice = 0, threading.Event()

    @property
    def signal(self):
        self.polls += 1
        if self.polls == 2:
            self.polled_twice.set()
        return "budget"


def test_a_budget_stops_a_run_only_after_its_first_tick():
    """The experiment measures words/s over a time budget. On a loaded machine the budget can be
    spent before a worker has started its first chunk: the run then measured 0 words/s (a failed
    experiment test). Here the worker starts only after the main thread has seen the spent budget
    twice; the run must still train one tick and then stop."""
    budget, state = _ExpiredBudget(), RunState.new(1, 1)

    def run_chunk(t, epoch, start, counters):
        assert budget.polled_twice.wait(WAIT_S)
        if counters[0] != RUN:  # the kernel's first tick: stopped before any work
            return 0.0, 0, 0
        counters[1 + t] += 5
        _until(lambda: counters[0] != RUN)  # at its next tick the kernel sees the stop
        return 1.0, 5, 5

    engine.run_hogwild(1, 1, run_chunk, [10], state, 10, False, "test", lambda c: {}, interrupts=budget)
    assert state.stopped and state.position[0] == 5 and state.examples[0, 0] == 5


def test_a_signal_stops_a_run_before_any_work():
    """Ctrl-C (no needs_progress) is obeyed at once, work or none."""
    stop, state = _ExpiredBudget(), RunState.new(1, 1)
    stop.needs_progress = False

    def run_chunk(t, epoch, start, counters):
        assert stop.polled_twice.wait(WAIT_S)
        if counters[0] != RUN:
            return 0.0, 0, 0
        counters[1 + t] += 5
        return 1.0, 5, 5

    engine.run_hogwild(1, 1, run_chunk, [10], state, 10, False, "test", lambda c: {}, interrupts=stop)
    assert state.stopped and state.position[0] == 0
