"""The w2v-async group and its vocab, train and cooccur commands (click only: parse, call one library function,
print)."""

import json
import os
import shlex
import signal
import sys

import click

from .. import __version__
from ..config import BATCHING, ENGINES, MODELS, PS_OPTIMIZERS, default_threads
from ..errors import ConfigError, W2VError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class UsageFailure(click.ClickException):
    """A bad setting or path: one ``Error:`` line, exit code 2."""

    exit_code = 2


class RuntimeFailure(click.ClickException):
    """Bad data or a failed run: one ``Error:`` line, exit code 1."""

    exit_code = 1


class OneLineErrors(click.Group):
    """A group whose every failure is a single ``Error: ...`` line on stderr (no usage dump).

    Exit codes: 0 success, 1 runtime error, 2 usage error, 130 interrupted.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        self.argv = list(sys.argv[1:] if args is None else args)  # for the resume command we print
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            click.echo(f"Error: {e.format_message()}", err=True)
            sys.exit(2)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Error: interrupted; stopped at once. Files written before are intact (outputs are "
                       "only ever replaced whole).", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)


def _fail(e: W2VError):
    if isinstance(e, ConfigError):
        raise UsageFailure(str(e)) from e
    raise RuntimeFailure(str(e)) from e


def _checkpoint_settings(ctx, resume_dir):
    """The newest checkpoint's metadata when resuming (its settings fill in the options not given)."""
    from ..io import peek_checkpoint  # each command imports what it uses when it runs: --help stays fast

    if resume_dir is None:
        return None
    if not os.path.isdir(resume_dir):
        raise UsageFailure(f"checkpoint directory {resume_dir!r} does not exist; check the --resume path.")
    return peek_checkpoint(resume_dir)


def _log(quiet: bool):
    return (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))


def vocab_options(f):
    """Options shared by every command that builds a vocabulary."""
    opts = [
        click.option("--min-count", default=5, show_default=True, type=int,
                     help="Drop words seen fewer times."),
        click.option("--max-vocab-size", default=30_000_000, show_default=True, type=int,
                     help="Prune rare words while counting when more distinct words are held "
                          "(word2vec.c; bounds memory)."),
        click.option("--max-final-vocab", default=None, type=int,
                     help="Raise --min-count until at most this many words remain (gensim)."),
        click.option("--lowercase/--no-lowercase", default=False, show_default=True,
                     help="Lowercase the text before splitting."),
        click.option("--max-word-length", default=100, show_default=True, type=int,
                     help="Skip tokens longer than this many UTF-8 bytes (URLs, encoded data), counted in the "
                          "summary; 0: no limit."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@click.group(cls=OneLineErrors, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="w2v-async")
def cli():
    """Train word embeddings with lock-free (Hogwild) threads, and evaluate them.

    \b
    Example:
      w2v-async vocab corpus.txt -o vocab.tsv
      w2v-async train corpus.txt --vocab vocab.tsv -o vectors.bin
      w2v-async cooccur corpus.txt --vocab vocab.tsv -o cooc.npz
      w2v-async eval vectors.bin
    """


@cli.command(context_settings=CONTEXT)
@click.argument("corpus")
@click.option("-o", "--output", required=True, help="Vocabulary file to write ('word count' lines).")
@vocab_options
@click.option("--threads", default=default_threads(), show_default=True, type=int,
              help="Reading threads: a large file is cut at line ends, a directory by files.")
@click.option("-q", "--quiet", is_flag=True, help="No log lines on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object on stdout.")
def vocab(corpus, output, min_count, max_vocab_size, max_final_vocab, lowercase, max_word_length, threads, quiet,
          as_json):
    """Count the words of CORPUS (file, directory, .gz, .bz2 or - for stdin) into a vocabulary.

    The output uses word2vec.c's -save-vocab format, sorted by count, and is read back by
    `train --vocab`.

    \b
    Example:
      w2v-async vocab corpus.txt.gz -o vocab.tsv --min-count 5
    """
    from ..api import build_vocab  # as every command here: numba and gensim load only when a command runs

    log = _log(quiet)
    try:
        words, summary = build_vocab(corpus, output, log, min_count=min_count, max_vocab_size=max_vocab_size,
                                     max_final_vocab=max_final_vocab, lowercase=lowercase,
                                     max_word_length=max_word_length, threads=threads)
    except W2VError as e:
        _fail(e)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        log(f"{len(words)} words (of {summary['tokens']} tokens) written to {output}")


@cli.command(context_settings=CONTEXT)
@click.argument("corpus", required=False)
@click.option("-o", "--output", required=True,
              help="Vectors file; .bin gives word2vec binary, anything else word2vec text.")
@click.option("--format", "fmt", type=click.Choice(["auto", "bin", "txt", "glove"]), default="auto",
              show_default=True, help="Output format (auto: from the file name; glove: text, no header).")
@click.option("--model", type=click.Choice(MODELS), default="sgns", show_default=True,
              help="Skip-gram (sgns) or CBOW with negative sampling, or GloVe.")
@click.option("--dim", default=100, show_default=True, type=int, help="Vector dimension.")
@click.option("--window", default=None, type=int,
              help="Maximum context distance [default: 5; 10 for glove]. word2vec reduces it at random per word.")
@click.option("--negative", default=5, show_default=True, type=int,
              help="Negative samples per example (0 with --hs: hierarchical softmax alone).")
@click.option("--hs", is_flag=True,
              help="Hierarchical softmax (word2vec.c -hs 1): the center predicted along its Huffman path, beside "
                   "negative sampling or alone with --negative 0. Threads engine.")
@click.option("--fixed-window", is_flag=True,
              help="Every window reaches --window words (gensim shrink_windows=False), not a random 1..window.")
@click.option("--subwords", is_flag=True,
              help="fastText's model: a word's input is the mean of its row and its character n-grams' rows, "
                   "hashed into --bucket rows; memory up to (--bucket + vocabulary) x --dim x 4 bytes for them "
                   "(0.8 GB at the defaults, only the buckets the vocabulary's n-grams use). Threads engine.")
@click.option("--minn", default=3, show_default=True, type=int, help="--subwords: shortest n-gram, in characters.")
@click.option("--maxn", default=6, show_default=True, type=int,
              help="--subwords: longest n-gram, in characters (0: none, the word's own row only).")
@click.option("--bucket", default=2_000_000, show_default=True, type=int,
              help="--subwords: rows the n-grams are hashed into (fastText's FNV-1a hash).")
@click.option("--ns-exponent", default=0.75, show_default=True, type=float,
              help="Noise words are drawn from counts^x (gensim's ns_exponent; 0: uniform, negative: rare words).")
@click.option("--sample", default=1e-3, show_default=True, type=float,
              help="Subsampling threshold for frequent words (0 disables it).")
@click.option("--alpha", default=None, type=float,
              help="Starting learning rate [default: 0.025 sgns, 0.05 cbow and --subwords (fastText's)].")
@click.option("--min-alpha", default=0.0001, show_default=True, type=float,
              help="Learning rate at the end of training (linear decay).")
@click.option("--batching", type=click.Choice(BATCHING), default=None,
              help="sgns: window (one minibatch and one negative set per window, HogBatch) or pair "
                   "(word2vec.c's per-pair updates) [default: window].")
@click.option("--epochs", default=None, type=int, help="Passes over the corpus [default: 5; 15 for glove].")
@click.option("--threads", default=default_threads(), show_default=True, type=int,
              help="Hogwild worker threads (default: all cores).")
@click.option("--seed", default=1, show_default=True, type=int,
              help="Random seed; --threads 1 with the same seed gives identical vectors.")
@click.option("--vocab", "vocab_path", default=None,
              help="Read this vocabulary (from `w2v-async vocab`) instead of counting.")
@click.option("--cooccur", "cooccur_path", default=None,
              help="glove: train on this file from `w2v-async cooccur` instead of a CORPUS.")
@click.option("--x-max", default=100.0, show_default=True, type=float, help="glove: weighting cutoff x_max.")
@click.option("--glove-alpha", default=0.75, show_default=True, type=float, help="glove: weighting exponent.")
@click.option("--eta", default=0.05, show_default=True, type=float, help="glove: AdaGrad learning rate.")
@click.option("--grad-clip", default=100.0, show_default=True, type=float,
              help="glove: clip each vector coordinate's gradient to [-g, g] (glove.c's -grad-clip).")
@click.option("--vectors", "which_vectors", type=click.Choice(["word+context", "word"]), default="word+context",
              show_default=True, help="glove: write W + W~ or W alone.")
@click.option("--asymmetric", is_flag=True, help="glove: count left contexts only.")
@click.option("--memory", default=1.0, show_default=True, type=float, help="glove: GB for co-occurrence counting.")
@click.option("--tmp-dir", default=None, help="glove: where co-occurrence runs spill [default: beside the output].")
@click.option("--engine", type=click.Choice(ENGINES), default="threads", show_default=True,
              help="threads: Hogwild threads in this process. ray: Downpour SGD (parameter-server shards and "
                   "asynchronous replicas) on Ray, local or a cluster. sandblaster (glove): L-BFGS on the exact "
                   "batch gradient, computed by replicas on Ray. ray and sandblaster need pip install 'w2v-async[ray]'. "
                   "gpu: sgns (HogBatch windows), cbow and glove on an NVIDIA GPU, pip install 'w2v-async[gpu]'.")
@click.option("--max-iter", default=100, show_default=True, type=int,
              help="sandblaster: L-BFGS iterations at most (it also stops once the loss changes by under 1e-9).")
@click.option("--lbfgs-history", default=10, show_default=True, type=int, help="sandblaster: L-BFGS history pairs.")
@click.option("--replicas", default=2, show_default=True, type=int, help="ray: model replicas (actors).")
@click.option("--ps-shards", default=2, show_default=True, type=int, help="ray: parameter-server shards (actors).")
@click.option("--batch-words", default=50_000, show_default=True, type=int,
              help="ray: words (glove: co-occurrence entries) per minibatch; larger: fewer, bigger messages. "
                   "sandblaster: entries per work unit.")
@click.option("--n-fetch", default=1, show_default=True, type=int,
              help="ray: batches per pull of the rows they touch.")
@click.option("--n-push", default=1, show_default=True, type=int,
              help="ray: batches per push of the replica's row changes (also pushed before every pull).")
@click.option("--ps-optimizer", type=click.Choice(PS_OPTIMIZERS), default="sgd", show_default=True,
              help="ray: how shards apply pushed changes: add them (sgd) or scale them per coordinate (adagrad).")
@click.option("--ps-eta", default=0.05, show_default=True, type=float, help="ray: AdaGrad's learning rate.")
@click.option("--ray-address", default=None,
              help="ray: join this cluster (HOST:PORT or auto) instead of starting a local Ray.")
@click.option("--cache-dir", default=None,
              help="Keep the encoded corpus here for later runs on the same files and vocabulary settings "
                   "[default: .w2v-cache beside the output].")
@click.option("--cache/--no-cache", default=True, show_default=True,
              help="Reuse (and store) the encoded corpus; --no-cache reads the corpus every time.")
@click.option("--checkpoint-dir", default=None,
              help="Save the whole training state here at every epoch end and every --checkpoint-every minutes.")
@click.option("--checkpoint-every", default=None, type=float,
              help="Minutes between checkpoints (0: epoch ends only) [default: 10 with --checkpoint-dir].")
@click.option("--resume", "resume_dir", default=None,
              help="Continue from the newest good checkpoint in this directory (settings not given are "
                   "taken from it); checkpoints keep going there.")
@click.option("--save-model", default=None,
              help="Also write the finished model here (.npz: every matrix, the vocabulary and its counts, the "
                   "settings), to start a later run from with --init.")
@click.option("--init", default=None,
              help="Start from a trained model: a --save-model file, a checkpoint directory, or vectors (word2vec "
                   "text or binary, GloVe text, fastText .vec or .bin). Its words keep their rows, new words start "
                   "fresh; --dim defaults to its own; the learning rate runs from --alpha again.")
@click.option("--init-vocab", type=click.Choice(["extend", "keep"]), default="extend", show_default=True,
              help="--init: extend: the source's words and the corpus's new ones (--min-count); keep: the source's "
                   "words only.")
@click.option("--lock-init", is_flag=True,
              help="--init: freeze the word vectors that came from it (gensim's vectors_lockf = 0); new words and "
                   "the output rows train.")
@click.option("--lock-factor", default=None, type=float,
              help="--init: scale the updates of the word vectors that came from it by F in [0, 1].")
@vocab_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or log lines on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object on stdout.")
@click.pass_context
def train(ctx, corpus, output, fmt, model, dim, window, negative, hs, fixed_window, subwords, minn, maxn, bucket,
          ns_exponent, sample, alpha, min_alpha, batching, epochs, threads,
          seed, vocab_path, cooccur_path, x_max, glove_alpha, eta, grad_clip, which_vectors, asymmetric, memory, tmp_dir,
          engine, max_iter, lbfgs_history, replicas, ps_shards, batch_words, n_fetch, n_push, ps_optimizer, ps_eta, ray_address, cache_dir, cache,
          checkpoint_dir, checkpoint_every, resume_dir, save_model, init, init_vocab, lock_init, lock_factor, min_count, max_vocab_size, max_final_vocab, lowercase,
          max_word_length, quiet, as_json):
    """Train word vectors on CORPUS (file, directory, .gz, .bz2 or - for stdin).

    The corpus is read once into an int32 id array (a file beside the output, memory-mapped,
    and kept in --cache-dir for the next run on the same files); every epoch then runs inside nogil numba kernels on lock-free threads (or, with --engine ray,
    as Downpour SGD on Ray; GloVe also as Sandblaster L-BFGS, --engine sandblaster). The vectors and
    OUTPUT.json (the configuration) are written atomically when training ends. GloVe counts
    co-occurrences first (or reads --cooccur). Ctrl-C saves a checkpoint and the vectors so far.

    \b
    Example:
      w2v-async train corpus.txt -o vectors.bin --model sgns --dim 100 --epochs 5
      w2v-async train corpus.txt -o vectors.bin --hs --negative 0
      w2v-async train corpus.txt --vocab vocab.tsv -o vectors.txt --model cbow --json
      w2v-async train --model glove --cooccur cooc.npz -o glove.txt --format glove
      w2v-async train corpus.txt -o vectors.bin --engine ray --replicas 4 --ps-shards 2
      w2v-async train --model glove --cooccur cooc.npz -o glove.txt --engine sandblaster --max-iter 200
      w2v-async train corpus.txt -o vectors.bin --checkpoint-dir ck --checkpoint-every 10
      w2v-async train corpus.txt -o vectors.bin --resume ck
      w2v-async train general.txt -o general.bin --save-model general.npz
      w2v-async train domain.txt -o domain.bin --init general.npz
    """
    from ..errors import Interrupted
    from ..warmup import MODELS, compile_notice
    from .options import check_options, given, given_options

    options = given_options(ctx)
    try:
        saved = _checkpoint_settings(ctx, resume_dir)
        if saved is not None and not given(ctx, "model"):
            model = saved["model"]
        check_options(options, model, saved)  # before anything loads: an option that does not apply
        with compile_notice(MODELS[model], _log(quiet)):  # a line on stderr when numba must compile
            from ..api import run  # numba and the engines load only when a command trains

            outcome = run(corpus, output, **options, model=model, progress=not quiet, log=_log(quiet))
        summary = outcome.summary
    except Interrupted as e:
        argv = getattr(ctx.find_root().command, "argv", sys.argv[1:])
        args = argv if resume_dir else _without_init(argv) + ["--resume", e.checkpoint_dir]
        click.echo(f"Error: {e} Resume with: w2v-async {' '.join(shlex.quote(a) for a in args)}", err=True)
        sys.exit(130)
    except W2VError as e:
        _fail(e)
    if as_json:
        click.echo(json.dumps(summary))
    elif not quiet:
        loss = [f"{x:.4f}" for x in summary.get("epoch_loss") or summary["epoch_cost"]]
        shown = loss if len(loss) <= 12 else loss[:3] + ["..."] + loss[-3:]  # L-BFGS: one per iteration
        per = "iteration" if summary.get("engine") == "sandblaster" else "epoch"
        click.echo(f"trained in {summary['seconds']['train']:.1f} s; loss per {per}: {', '.join(shown)}; wrote {output}",
                   err=True)


@cli.command(context_settings=CONTEXT)
@click.argument("corpus")
@click.option("-o", "--output", required=True, help="Co-occurrence file to write (.npz).")
@click.option("--window", default=10, show_default=True, type=int, help="Context distance; pairs weigh 1/distance.")
@click.option("--asymmetric", is_flag=True, help="Count left contexts only (Stanford's -symmetric 0).")
@click.option("--memory", default=1.0, show_default=True, type=float,
              help="GB for the counting and merging buffers; full buffers are sorted and spilled to disk.")
@click.option("--threads", default=default_threads(), show_default=True, type=int, help="Counting threads.")
@click.option("--vocab", "vocab_path", default=None,
              help="Read this vocabulary (from `w2v-async vocab`) instead of counting.")
@click.option("--tmp-dir", default=None,
              help="Where sorted runs are spilled: about 12 bytes per distinct pair, as the output "
                   "[default: beside the output].")
@click.option("--cache-dir", default=None,
              help="Keep the encoded corpus here for later runs on the same files and vocabulary settings "
                   "[default: .w2v-cache beside the output].")
@click.option("--cache/--no-cache", default=True, show_default=True,
              help="Reuse (and store) the encoded corpus; --no-cache reads the corpus every time.")
@vocab_options
@click.option("-q", "--quiet", is_flag=True, help="No log lines on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object on stdout.")
def cooccur(corpus, output, window, asymmetric, memory, threads, vocab_path, tmp_dir, cache_dir, cache, min_count,
            max_vocab_size, max_final_vocab, lowercase, max_word_length, quiet, as_json):
    """Count GloVe co-occurrences X_ij of CORPUS within --memory, as Stanford's cooccur.

    Every pair of words at distance d <= --window in a sentence adds 1/d. The result (sorted
    row, col, value arrays and the vocabulary) feeds `train --model glove --cooccur`.

    \b
    Example:
      w2v-async cooccur corpus.txt.gz -o cooc.npz --window 10 --memory 2
    """
    from ..warmup import compile_notice

    try:
        with compile_notice("co-occurrence counting", _log(quiet)):  # a line on stderr when numba must compile
            from ..api import count_cooccurrences  # numba loads only when a command counts

            summary = count_cooccurrences(corpus, output, _log(quiet), window=window, asymmetric=asymmetric,
                                          memory=memory, threads=threads, vocab=vocab_path, tmp_dir=tmp_dir,
                                          cache_dir=cache_dir, cache=cache, min_count=min_count,
                                          max_vocab_size=max_vocab_size, max_final_vocab=max_final_vocab,
                                          lowercase=lowercase, max_word_length=max_word_length)
    except W2VError as e:
        _fail(e)
    if as_json:
        click.echo(json.dumps(summary))


def _without_init(argv):
    """train's arguments without --init and the options that go with it: a fine-tuning run resumes
    with --resume alone (its checkpoints hold its vocabulary and the rows' lock factors)."""
    out, skip = [], False
    for a in argv:
        name = a.split("=", 1)[0]
        if skip or name in ("--init", "--init-vocab", "--lock-factor", "--lock-init"):
            skip = not skip and "=" not in a and name != "--lock-init"
            continue
        out.append(a)
    return out


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def main():
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)  # `kill` stops as cleanly as Ctrl-C
    cli()

