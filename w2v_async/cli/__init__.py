"""The w2v-async command line (click only: parse, call one library function, print): the group and
its commands in commands.py, `w2v-async experiment` in experiment.py."""

from . import experiment  # noqa: F401  (registers the experiment command on the group)
from .commands import cli, main

__all__ = ["cli", "main"]
