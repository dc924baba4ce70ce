"""SIGINT and SIGTERM as a clean stop for a training run (job.py): the first asks, the second insists."""

import signal
import threading
from typing import Optional


class Interrupts:
    """While active, SIGINT and SIGTERM ask the run to stop cleanly; a second one leaves without the checkpoint.

    The first signal only records itself (``.signal``); run_hogwild polls it, stops the threads at
    their next progress tick and returns, so the caller can save a checkpoint. The second raises
    KeyboardInterrupt wherever the main thread is (run_hogwild joins its nogil threads before letting it
    out; atomic writes clean up), and later ones are ignored. Outside the main thread it does nothing."""

    def __init__(self, insist: bool = True):
        self.signal: Optional[str] = None
        self.signals = 0  # how many came: those after the second would cut that joining or cleaning short
        self.insist = insist  # False: the second only counts too, for a caller that polls (an exception
        # thrown into threading's waits can leave their lock held, and the waits block for ever)
        self._saved = {}

    def _handle(self, signum, frame):
        self.signal, self.signals = self.signal or signal.Signals(signum).name, self.signals + 1
        if self.signals == 2 and self.insist:
            raise KeyboardInterrupt

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved = {}
