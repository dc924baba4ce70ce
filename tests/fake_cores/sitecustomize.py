"""Make this Python report W2V_TEST_CORES cores (os.sched_getaffinity, os.cpu_count), so the suite
can be run as on a 1-core or a 64-core machine: `make test-cores`. On PYTHONPATH for the test
processes' children; conftest.py applies the same to the test process itself."""

import os


def fake_cores() -> None:
    n = os.environ.get("W2V_TEST_CORES")
    if not n:
        return
    cores = set(range(int(n)))
    os.sched_getaffinity = lambda pid: set(cores)
    os.cpu_count = lambda: len(cores)


fake_cores()
