"""Shared by the benchmark scripts: run one command as its own process and measure it."""

import json
import os
import subprocess
import sys
import time


def measure(cmd):
    """Run cmd; return (wall seconds, peak RSS in MiB of that process, its last stdout line as JSON or None)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"benchmark step failed: {' '.join(map(str, cmd))}")
    lines = out.strip().splitlines()
    return wall, usage.ru_maxrss / 1024, json.loads(lines[-1]) if lines else None
