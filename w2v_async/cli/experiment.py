"""`w2v-async experiment`: every update scheme on one corpus, written up as a report."""

import shlex

import click

from ..config import EXPERIMENT_MODELS
from ..errors import W2VError
from .commands import CONTEXT, UsageFailure, _fail, _log, cli


def _int_list(text: str, flag: str):
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UsageFailure(f"{flag} takes comma-separated whole numbers such as 1,2,4, got {text!r}.") from None


def _pairs(text: str):
    try:
        return tuple(tuple(int(v) for v in p.split(":")) for p in text.split(",") if p.strip())
    except ValueError:
        raise UsageFailure(f"--downpour takes n_fetch:n_push pairs such as 1:1,8:8, got {text!r}.") from None


@cli.command(context_settings=CONTEXT)
@click.argument("corpus")
@click.option("-o", "--output", "report_dir", required=True,
              help="Directory for report.md, results.json and the PNG plots (created if missing).")
@click.option("--model", type=click.Choice(EXPERIMENT_MODELS), default="sgns", show_default=True,
              help="sgns: skip-gram (every scheme); glove: GloVe (serial, Hogwild AdaGrad, Downpour, Sandblaster).")
@click.option("--threads", default=None,
              help="Thread counts of the scaling runs, e.g. 1,2,4,8 [default: powers of two up to the cores, "
                   "and twice the cores]; the comparison runs the most that the cores hold.")
@click.option("--budget", default=60.0, show_default=True, type=float,
              help="Seconds each scheme trains in the comparison (it stops there or at its last epoch).")
@click.option("--scaling-seconds", default=6.0, show_default=True, type=float,
              help="Seconds of each scaling run (one scheme at one thread count, measured twice: the faster "
                   "counts).")
@click.option("--snapshots", default=None, type=int,
              help="Timed snapshots of the vectors evaluated during each scheme's run, every --budget / "
                   "(snapshots + 1) seconds, and at epoch ends at most twice as often [default: 8; 4 for glove].")
@click.option("--downpour", default="1:1,8:8", show_default=True,
              help="n_fetch:n_push settings of the Downpour runs (Ray).")
@click.option("--epochs", default=None, type=int, help="Epochs of each scheme [default: 3; 15 for glove].")
@click.option("--dim", default=100, show_default=True, type=int, help="Vector dimension.")
@click.option("--min-count", default=5, show_default=True, type=int, help="Drop words seen fewer times.")
@click.option("--sparsity-words", default=100_000, show_default=True, type=int,
              help="Words (glove: entries) sampled for the update hypergraph's statistics.")
@click.option("--max-iter", default=100, show_default=True, type=int, help="glove: Sandblaster's L-BFGS iterations.")
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed.")
@click.option("-q", "--quiet", is_flag=True, help="No log lines on stderr.")
def experiment(corpus, report_dir, model, threads, budget, scaling_seconds, snapshots, downpour, epochs, dim,
               min_count, sparsity_words, max_iter, seed, quiet):
    """Train one model on CORPUS under every update scheme and write a report to REPORT_DIR.

    Serial SGD, one global lock, row locks, Hogwild and HogBatch threads, Downpour on Ray, and
    (glove) Sandblaster L-BFGS, each for --budget seconds with the same settings; words/s against
    threads; the update hypergraph's sparsity (HOGWILD!'s Omega, Delta, rho) and the collisions
    the threads really had. The plots need matplotlib (pip install 'w2v-async[plots]').

    \b
    Example:
      w2v-async experiment corpus.txt -o report --budget 60 --threads 1,2,4
    """
    from ..api import run_experiment  # numba, gensim and Ray load only when the command runs

    options = dict(model=model, threads=_int_list(threads, "--threads") if threads else (), budget=budget,
                   scaling_seconds=scaling_seconds, snapshots=snapshots, downpour=_pairs(downpour), epochs=epochs,
                   dim=dim, min_count=min_count, sparsity_words=sparsity_words, max_iter=max_iter, seed=seed)
    try:
        run_experiment(corpus, report_dir, log=_log(quiet),
                       command="w2v-async " + shlex.join(getattr(cli, "argv", ["experiment", corpus])), **options)
    except W2VError as e:
        _fail(e)
