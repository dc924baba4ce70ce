"""`w2v-async phrases`: detect phrases in a corpus and write it with them joined (new york -> new_york)."""

import json

import click

from ..config import default_threads
from ..errors import W2VError
from .commands import CONTEXT, UsageFailure, _fail, _log, cli
from .options import given

SCORINGS = ("default", "word2phrase", "npmi")  # data/phrases_table.SCORINGS, spelled here so that --help loads no numpy
LEARNING = ("scoring", "threshold", "min_count", "passes", "delimiter", "connector_words", "max_vocab_size",
            "lowercase", "max_word_length", "save")


@cli.command(context_settings=CONTEXT)
@click.argument("corpus")
@click.option("-o", "--output", required=True,
              help="Text file to write: the corpus with its phrases joined, tokens separated by single spaces, a "
                   "line per line.")
@click.option("--scoring", type=click.Choice(SCORINGS), default="default", show_default=True,
              help="default: gensim's (n_ab - min_count) / (n_a n_b) x keys counted; word2phrase: word2vec.c's, "
                   "x tokens; npmi: normalized PMI, in [-1, 1].")
@click.option("--threshold", default=None,
              help="A bigram scoring above it is a phrase; one value per pass (200,100) or one for every pass "
                   "[default: 10; 100 for word2phrase; 0.5 for npmi].")
@click.option("--min-count", default=5, show_default=True, type=int,
              help="Subtracted from a bigram's count (default, word2phrase); npmi needs at least this count.")
@click.option("--passes", default=1, show_default=True, type=int,
              help="Passes, each counting the one before's output: phrases of up to 2^passes words (word2vec.c's "
                   "demo runs word2phrase twice).")
@click.option("--delimiter", default="_", show_default=True, help="Joins a phrase's words into one token.")
@click.option("--connector-words", default="none", show_default=True,
              help="none (word2vec.c, gensim's default), english (gensim's ENGLISH_CONNECTOR_WORDS: "
                   "bank_of_america) or a file of words: words that may stand inside a phrase, never at its ends.")
@click.option("--save", default=None, help="Also write the phrase table here (TSV: phrase, score, count, pass).")
@click.option("--apply", "apply_path", default=None,
              help="Join the phrases of this table (from --save) instead of learning them: no counting.")
@click.option("--max-vocab-size", default=40_000_000, show_default=True, type=int,
              help="Prune rare words and bigrams while counting when more are held together (word2vec.c, gensim); "
                   "bounds memory (about 80 bytes a key).")
@click.option("--lowercase/--no-lowercase", default=False, show_default=True, help="Lowercase the text first.")
@click.option("--max-word-length", default=100, show_default=True, type=int,
              help="A token longer than this many UTF-8 bytes is never part of a phrase; 0: no limit (gensim).")
@click.option("--threads", default=default_threads(), show_default=True, type=int,
              help="Reading threads: a large file is cut at line ends, a directory by files.")
@click.option("-q", "--quiet", is_flag=True, help="No log lines on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object on stdout.")
@click.pass_context
def phrases(ctx, corpus, output, scoring, threshold, min_count, passes, delimiter, connector_words, save, apply_path,
            max_vocab_size, lowercase, max_word_length, threads, quiet, as_json):
    """Join the phrases of CORPUS (file, directory, .gz, .bz2 or - for stdin) into single tokens.

    Counts words and bigrams (nogil threads over the corpus's spans), scores each bigram as gensim's
    Phrases or word2vec.c's word2phrase does, and writes the corpus with every phrase joined by
    --delimiter, left to right: `new york` becomes `new_york`. Feed the output to `vocab` and
    `train` as any corpus.

    \b
    Example:
      w2v-async phrases corpus.txt.gz -o phrased.txt
      w2v-async phrases corpus.txt -o phrased.txt --scoring word2phrase --passes 2 --threshold 200,100
      w2v-async phrases corpus.txt -o phrased.txt --connector-words english --save phrases.tsv
      w2v-async phrases other.txt -o other-phrased.txt --apply phrases.tsv
    """
    from ..warmup import compile_notice

    log = _log(quiet)
    options = {name: value for name, value in ctx.params.items() if name in LEARNING and given(ctx, name)}
    if apply_path is not None and options:
        name = next(iter(options))
        raise UsageFailure(f"--{name.replace('_', '-')} does not apply with --apply: the table brings its settings "
                           "and phrases; drop it, or learn a new table without --apply.")
    save = options.pop("save", None)
    try:
        with compile_notice("phrase detection", log, about_s=40):  # a line on stderr when numba must compile
            from ..api import phrases as detect  # numba loads only when the command runs

            table, summary = detect(corpus, output, log=log, save=save, apply=apply_path, threads=threads, **options)
    except W2VError as e:
        _fail(e)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        log(f"{summary['phrases']:,} phrases, {sum(p['joined'] for p in summary['passes']):,} joined; wrote {output}"
            + (f" and the phrase table {save}" if save else ""))
