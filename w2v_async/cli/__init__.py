"""The w2v-async command line (click only: parse, call one library function, print): the group and
its commands in commands.py, `w2v-async eval` and `similar` in evaluate.py, `w2v-async experiment` in
experiment.py."""

from . import evaluate, experiment  # noqa: F401  (register the eval, similar and experiment commands on the group)
from . import phrases  # noqa: F401  (registers the phrases command on the group)
from .commands import cli, main

__all__ = ["cli", "main"]
