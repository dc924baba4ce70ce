"""Test hooks: hold a run at a named stage until a test lets it go, so that the tests force the
races and stops they show (a Ctrl-C that lands while counting runs, a kill -9 in the middle of a
checkpoint) instead of hoping that the machine is slow, or fast, enough.

Off unless the environment names stages when this module is first imported (read once):
W2V_ASYNC_TEST_HOLD=STAGE[,STAGE...] and W2V_ASYNC_TEST_HOLD_DIR=DIR. The first time this process
reaches a named stage, hold() creates the empty file DIR/STAGE (the stage has started) and waits
until DIR/STAGE.release exists or released() is true; HOLD_LIMIT_S bounds the wait, a guard
against a test that hangs, never reached by one that works. Unset, a call site costs a test of the
module constant HOLD; none is in a numba kernel (their hooks are typed arguments, models/locks.py).

The stages (tests/conftest.py starts a process with them):
- ``cooccur-spilled``: a counting thread has spilled its first sorted run (data/cooccur.py); held
  until the count is stopped (Ctrl-C);
- ``cooccur-stopping``: right after ``cooccur-spilled`` lets go, the count being stopped; held until a
  second signal;
- ``hogwild-epoch-E``: a threads-engine worker is about to train in epoch E (engines/threads.py);
  held until the run is stopped (a signal); the other workers go on;
- ``checkpoint-N-saved``: a job has written its N-th checkpoint (job.py); held until a signal;
- ``checkpoint-N-unpublished``: checkpoint number N is written to its temporary file, not yet
  renamed into place (io.save_checkpoint); held until released.
"""

import os
import threading
import time
from typing import Callable, FrozenSet, Optional

_STAGES = os.environ.get("W2V_ASYNC_TEST_HOLD", "")
HOLD: Optional[FrozenSet[str]] = frozenset(s for s in _STAGES.split(",") if s) or None
DIRECTORY = os.environ.get("W2V_ASYNC_TEST_HOLD_DIR", ".")
HOLD_LIMIT_S = 600.0
POLL_S = 0.002

_reached = set()
_lock = threading.Lock()


def _never() -> bool:
    return False


def hold(stage: str, released: Callable[[], bool] = _never) -> None:
    """Report stage and wait there, the first time this process reaches it, if the environment
    names it (see the module's docstring); otherwise return at once."""
    if HOLD is None or stage not in HOLD:
        return
    with _lock:
        if stage in _reached:
            return
        _reached.add(stage)
    marker = os.path.join(DIRECTORY, stage)
    open(marker, "w").close()
    deadline = time.monotonic() + HOLD_LIMIT_S
    while not released() and not os.path.exists(marker + ".release") and time.monotonic() < deadline:
        time.sleep(POLL_S)  # in the main thread, signal handlers run between these sleeps
