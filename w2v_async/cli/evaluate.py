"""`w2v-async eval` and `w2v-async similar`: score vectors on analogy and similarity sets, and query
their nearest neighbours."""

import json

import click

from ..errors import W2VError
from .commands import CONTEXT, RuntimeFailure, UsageFailure, _fail, cli


@cli.command(name="eval", context_settings=CONTEXT)
@click.argument("vectors")
@click.option("--analogies", multiple=True,
              help="Extra analogy file in questions-words.txt format (repeatable).")
@click.option("--similarities", multiple=True,
              help="Extra word-pair file, 'word1<TAB>word2<TAB>score' lines (repeatable).")
@click.option("--defaults/--no-defaults", default=True, show_default=True,
              help="Also run gensim's questions-words, WordSim353 and SimLex-999.")
@click.option("--restrict-vocab", default=300_000, show_default=True, type=int,
              help="Only the most frequent words take part (gensim 4 default).")
@click.option("--oov", is_flag=True,
              help="A subword model (fastText .bin): also answer the analogy questions with words outside the "
                   "vocabulary, their vectors composed from n-grams, and report how many and how well.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
def evaluate_cmd(vectors, analogies, similarities, defaults, restrict_vocab, oov, as_json):
    """Evaluate VECTORS (word2vec text or binary, or a fastText .bin) on analogy and word-similarity
    sets (through gensim).

    \b
    Example:
      w2v-async eval vectors.bin
      w2v-async eval vectors.txt --json --analogies my-analogies.txt
      w2v-async eval model.bin --oov
    """
    from ..api import evaluate  # gensim loads only when a command evaluates
    from ..evaluation import default_analogy_sets, default_similarity_sets, format_report
    from ..io import load_vectors

    if restrict_vocab <= 0:
        raise UsageFailure(f"--restrict-vocab must be positive, got {restrict_vocab}; gensim uses 300000.")
    analogy_sets = (default_analogy_sets() if defaults else []) + list(analogies)
    similarity_sets = (default_similarity_sets() if defaults else []) + list(similarities)
    if not analogy_sets and not similarity_sets:
        raise UsageFailure("nothing to evaluate with --no-defaults; add --analogies or --similarities FILE.")
    try:
        kv = load_vectors(vectors)
        report = evaluate(kv, analogy_sets, similarity_sets, restrict_vocab, name=vectors, oov=oov)
    except W2VError as e:
        _fail(e)
    click.echo(json.dumps(report.to_dict()) if as_json else format_report(report))


class WordLists(click.Command):
    """A command whose --positive and --negative take every word that follows them, as gensim's lists:
    `--positive king woman` is read as `--positive king --positive woman`."""

    LISTS = ("--positive", "--negative")

    def parse_args(self, ctx, args):
        spread, option, first = [], None, False
        for i, arg in enumerate(args):
            if arg == "--":
                spread += args[i:]
                break
            if first:  # the option's own value, whatever it looks like
                first = False
            elif option is not None and not arg.startswith("-"):
                spread.append(option)
            else:
                option = next((o for o in self.LISTS if arg == o or arg.startswith(o + "=")), None)
                first = arg in self.LISTS
            spread.append(arg)
        return super().parse_args(ctx, spread)


@cli.command(cls=WordLists, context_settings=CONTEXT)
@click.argument("vectors")
@click.argument("word", required=False)
@click.option("--positive", multiple=True, metavar="WORD...",
              help="Words the answers should be like (with WORD, if given), as gensim's most_similar.")
@click.option("--negative", multiple=True, metavar="WORD...", help="Words the answers should be unlike.")
@click.option("-n", "--topn", default=10, show_default=True, type=int, help="How many neighbours.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of [word, cosine] pairs.")
def similar(vectors, word, positive, negative, topn, as_json):
    """Print the nearest neighbours of WORD by cosine similarity in VECTORS, or answer an analogy:
    the words nearest the mean of the --positive unit vectors minus the --negative ones (gensim's
    most_similar; the query's words are never answers). Give VECTORS first. A subword model's
    fastText .bin composes a vector for a word it never saw from its n-grams.

    \b
    Example:
      w2v-async similar vectors.bin king -n 5
      w2v-async similar vectors.bin --positive king woman --negative man
    """
    from ..evaluation import can_compose
    from ..io import load_vectors  # gensim loads only when a command reads vectors

    if topn <= 0:
        raise UsageFailure(f"-n must be positive, got {topn}.")
    positive = ([word] if word is not None else []) + list(positive)
    if not positive and not negative:
        raise UsageFailure("give a WORD, or --positive and/or --negative words.")
    try:
        kv = load_vectors(vectors)
    except W2VError as e:
        _fail(e)
    missing = list(dict.fromkeys(w for w in positive + list(negative) if w not in kv.key_to_index))
    if missing and can_compose(kv):  # a subword model: unseen words are composed from their n-grams
        composed = [w for w in missing if kv.get_vector(w).any()]  # none of a word's n-grams trained: zeros
        if composed:
            click.echo(f"composed from n-grams: {', '.join(composed)}", err=True)
        missing = [w for w in missing if w not in composed]
    if len(missing) == 1:
        raise RuntimeFailure(f"{missing[0]!r} is not in the vocabulary of {vectors}; try another word.")
    if missing:
        raise RuntimeFailure(f"{', '.join(map(repr, missing))} are not in the vocabulary of {vectors}; try other "
                             "words.")
    pairs = [(w, float(s)) for w, s in kv.most_similar(positive=positive, negative=list(negative), topn=topn)]
    if as_json:
        click.echo(json.dumps(pairs))
    else:
        for w, s in pairs:
            click.echo(f"{w}\t{s:.4f}")


@cli.command(name="vectors", context_settings=CONTEXT)
@click.argument("model")
def word_vectors(model):
    """Print a vector for every word read from stdin (separated by whitespace), one line each: the
    word and its values, as fastText's print-word-vectors. MODEL is vectors (word2vec text or
    binary) or a fastText .bin, which composes a vector for a word it never saw from its n-grams; a
    word with no vector prints zeros, and how many did is said on stderr.

    \b
    Example:
      echo unbelievably misspeling | w2v-async vectors model.bin
    """
    import io
    import sys

    from ..evaluation import can_compose
    from ..io import load_vectors  # gensim loads only when a command reads vectors

    try:
        kv = load_vectors(model)
    except W2VError as e:
        _fail(e)
    compose, zeros, missed = can_compose(kv), "0" + " 0" * (kv.vector_size - 1), 0
    fmt = " ".join(["{:.5g}"] * kv.vector_size)
    for line in io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace"):  # as the corpus reader
        out = []
        for word in line.split():
            if word in kv.key_to_index or compose:
                out.append(f"{word} {fmt.format(*kv.get_vector(word).tolist())}")
            else:
                missed += 1
                out.append(f"{word} {zeros}")
        if out:
            click.echo("\n".join(out))
    if missed:
        click.echo(f"{missed} words are not in the vocabulary of {model} (printed as zeros); a subword model "
                   "(train --subwords -o MODEL.bin) composes them.", err=True)
