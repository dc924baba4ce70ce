"""The public Python API: train word2vec or GloVe on a corpus (a path or token lists), evaluate vectors.

Options take the command line's names in snake_case (``--min-count`` is ``min_count``); what is not
given keeps the CLI's default, or the checkpoint's setting when resuming. Errors raise the
project's exception types (errors.py), never SystemExit.
"""

import dataclasses
import os
import time
from typing import Callable, Iterable, Optional, Sequence, Set, Tuple, Union

from .config import (ENGINES, ExperimentConfig, GloveConfig, RayConfig, SandblasterConfig, VocabConfig,
                     Word2VecConfig, default_threads, resumed_config)
from .scopes import misplaced_option, run_kind
from .data.cache import default_cache_dir
from .data.corpus import check_output_path, open_corpus
from .data.init import INIT_VOCAB, load_init
from .data.vocab import Vocab, scan_corpus
from .errors import ConfigError
from .evaluation import DEFAULT_RESTRICT_VOCAB, EvalReport, default_analogy_sets, default_similarity_sets
from .evaluation import evaluate as evaluate_sets
from .io import keyed_vectors, peek_checkpoint
from .job import JobOutcome, RunOptions, train_from_corpus
from .job_glove import train_glove_from_corpus

Corpus = Union[str, os.PathLike, Iterable[Sequence[str]]]

# option name -> (config field, how the option's value becomes the field's)
_SAME = None
VOCAB_OPTIONS = {name: (name, _SAME) for name in ("min_count", "max_vocab_size", "max_final_vocab", "lowercase",
                                                       "max_word_length")}
WORD2VEC_OPTIONS = {name: (name, _SAME) for name in ("model", "dim", "window", "negative", "ns_exponent", "sample",
                                                     "alpha", "min_alpha", "epochs", "threads", "seed", "batching",
                                                     "hs", "fixed_window", "subwords", "minn", "maxn",
                                                     "bucket")}
GLOVE_OPTIONS = {**{name: (name, _SAME) for name in ("dim", "window", "x_max", "eta", "grad_clip", "epochs",
                                                     "threads", "seed", "vectors")},
                 "glove_alpha": ("alpha", _SAME), "memory": ("memory_gb", _SAME),
                 "asymmetric": ("symmetric", lambda asymmetric: not asymmetric)}
RAY_OPTIONS = {**{name: (name, _SAME) for name in ("replicas", "ps_shards", "n_fetch", "n_push", "ps_optimizer",
                                                   "ps_eta", "batch_words")},
               "ray_address": ("address", _SAME)}
SANDBLASTER_OPTIONS = {"lbfgs_history": ("history", _SAME), "max_iter": ("max_iter", _SAME),
                       "batch_words": ("unit_entries", _SAME), "gtol": ("gtol", _SAME), "ftol": ("ftol", _SAME),
                       "push_every": ("push_every", _SAME), "precondition": ("precondition", _SAME)}
JOB_OPTIONS = ("vocab", "format", "engine", "checkpoint_dir", "checkpoint_every", "resume", "progress", "log",
               "cache", "cache_dir", "save_model", "init", "init_vocab", "lock_init", "lock_factor")


def _config(cls, table: dict, options: dict, saved: Optional[dict]):
    """cls built from the options in table (the rest at cls's defaults); with saved (a checkpoint's
    settings), the fields not given come from it and the given ones must match it."""
    given = {}
    for option, (field, convert) in table.items():
        if option in options:
            given[field] = options[option] if convert is _SAME else convert(options[option])
    cfg = cls(**given)
    if saved is not None:
        cfg = resumed_config(cfg, saved, set(given))
    return cfg


def model_options(model: str) -> Set[str]:
    """The option names that train_word2vec (model sgns or cbow) or train_glove (glove) accept; which
    of them apply to a run is scopes.OPTION_SCOPES's to say."""
    glove = {*GLOVE_OPTIONS, *SANDBLASTER_OPTIONS, "cooccur", "tmp_dir"}
    return {*VOCAB_OPTIONS, *(glove if model == "glove" else WORD2VEC_OPTIONS), *RAY_OPTIONS, *JOB_OPTIONS, "model"}


TRAIN_OPTIONS = model_options("sgns") | model_options("glove")  # run() names the misplaced ones, then the unknown


def _check_names(options: dict, allowed: Set[str], what: str, choices: Optional[Set[str]] = None) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(f"unknown option(s) for {what}: {', '.join(unknown)}; choose from: "
                          f"{', '.join(sorted(choices or allowed))}.")


def _check_tmp_dir(tmp_dir: Optional[str]) -> None:
    if tmp_dir is not None and not os.path.isdir(tmp_dir):
        raise ConfigError(f"--tmp-dir {tmp_dir!r} is not a directory; create it or choose another.")


def run(corpus: Optional[Corpus], output: Optional[str] = None, **options) -> JobOutcome:
    """Train the model named by options["model"] (sgns, cbow or glove; when resuming, the
    checkpoint's); returns the job's outcome (words, vectors, summary). The command line's train."""
    resume = options.get("resume")
    saved = None
    if resume is not None:
        if not os.path.isdir(resume):
            raise ConfigError(f"checkpoint directory {resume!r} does not exist; check the --resume path.")
        saved = peek_checkpoint(resume)
    model = options.get("model", saved["model"] if saved else "sgns")
    glove = model == "glove"
    if saved is not None and (saved["model"] == "glove") != glove:  # before its settings fill another config in
        raise ConfigError(f"the checkpoint trains --model {saved['model']}, not {model}; resume with --model "
                          f"{saved['model']}.")
    if not glove and (corpus is None or options.get("cooccur") is not None):
        raise ConfigError(f"--model {model} trains on a CORPUS; --cooccur is for --model glove.")
    engine = options.get("engine", "threads")
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}.")
    if engine == "sandblaster" and not glove:
        raise ConfigError(f"--engine sandblaster trains --model glove (L-BFGS on its batch objective); train "
                          f"--model {model} with --engine threads or ray.")
    misplaced = misplaced_option(options, run_kind(model, options, saved), saved)  # the command line asks the same before it calls run
    if misplaced is not None:
        raise ConfigError(f"option {misplaced[0]}: {misplaced[1]}")
    _check_names(options, TRAIN_OPTIONS, f"--model {model}", model_options(model))
    _check_tmp_dir(options.get("tmp_dir"))
    vocab_cfg = _config(VocabConfig, VOCAB_OPTIONS, options, saved and saved["config"]["vocab"]).validate()
    ray = sandblaster = None
    if engine in ("ray", "sandblaster"):
        ray = _config(RayConfig, RAY_OPTIONS, options, None)
        ray = dataclasses.replace(ray, job_words=max(200_000, ray.batch_words)).validate()
    if engine == "sandblaster":
        sandblaster = _config(SandblasterConfig, SANDBLASTER_OPTIONS, options, None).validate()
    job = RunOptions(vocab_path=options.get("vocab"), fmt=options.get("format", "auto"),
                     progress=options.get("progress", True), log=options.get("log") or RunOptions.log,
                     checkpoint_dir=options.get("checkpoint_dir"), checkpoint_every=options.get("checkpoint_every"),
                     resume=resume, ray=ray, sandblaster=sandblaster, cache=options.get("cache", True),
                     cache_dir=options.get("cache_dir"), tmp_dir=options.get("tmp_dir"),
                     save_model=options.get("save_model"), gpu=engine == "gpu")
    if options.get("init") is not None:  # read first: --dim defaults to the source's
        if options.get("init_vocab", "extend") not in INIT_VOCAB:
            raise ConfigError(f"init_vocab must be one of {', '.join(INIT_VOCAB)}, got {options['init_vocab']!r}.")
        if resume is not None or options.get("vocab") is not None:
            raise ConfigError(f"--init starts a new run with its own vocabulary; drop --{'resume' if resume else 'vocab'} "
                              "(a fine-tuning run resumes with --resume alone).")
        source = load_init(options["init"], job.log)
        options = {"dim": source.dim, **options}
        if options.get("lock_init") and options.get("lock_factor") not in (None, 0.0):
            raise ConfigError("--lock-init freezes the source's rows (--lock-factor 0); give one of the two.")
        lock = 0.0 if options.get("lock_init") else options.get("lock_factor")
        job = dataclasses.replace(job, init=source, init_vocab=options.get("init_vocab", "extend"), lock_factor=lock)
    if glove:
        cfg = _config(GloveConfig, GLOVE_OPTIONS, options, saved and saved["config"]["train"]).validate()
        return train_glove_from_corpus(corpus, output, vocab_cfg, cfg, cooccur_path=options.get("cooccur"),
                                       options=job)
    if job.fmt == "glove":
        raise ConfigError("--format glove is for --model glove; use bin or txt.")
    options = {**options, "model": model}
    cfg = _config(Word2VecConfig, WORD2VEC_OPTIONS, options, saved and saved["config"]["train"]).validate()
    return train_from_corpus(corpus, output, vocab_cfg, cfg, options=job)


def train_word2vec(corpus: Corpus, output: Optional[str] = None, **options):
    """Train skip-gram (model="sgns", the default) or CBOW (model="cbow") with negative sampling.

    corpus: a text file (.gz, .bz2), a directory of them, or an iterable of token lists (gensim's
    ``sentences``); output: also write the vectors there (word2vec text, or binary for .bin).
    options: train's command-line options, e.g. dim=100, window=5, epochs=5, threads=8,
    min_count=5, batching="window", ns_exponent=0.75, hs=True, negative=0, fixed_window=True, engine="ray",
    subwords=True (fastText's model, with minn=3, maxn=6, bucket=2000000), checkpoint_dir="ck", progress=False.
    Returns (the vectors, the run's summary dict as ``train --json`` prints it): gensim KeyedVectors,
    or FastTextKeyedVectors with subwords.
    """
    if options.get("model", "sgns") == "glove":
        raise ConfigError("model glove is trained by train_glove(); train_word2vec takes sgns or cbow.")
    outcome = run(corpus, output, **options)
    if outcome.keyed_vectors is not None:  # subwords: FastTextKeyedVectors, which compose unseen words
        return outcome.keyed_vectors(), outcome.summary
    return keyed_vectors(outcome.words, outcome.vectors), outcome.summary


def train_glove(corpus: Optional[Corpus] = None, output: Optional[str] = None, **options):
    """Train GloVe (Stanford glove.c semantics) on a corpus, or on cooccur="cooc.npz" from
    ``w2v-async cooccur``. Options as train_word2vec's, plus x_max, glove_alpha, eta, grad_clip, vectors,
    asymmetric, memory and tmp_dir (where co-occurrence runs spill). An option that does not apply
    (window with cooccur, n_fetch without engine="ray", ...) raises ConfigError, as the command line
    refuses it. Returns (gensim KeyedVectors of W + W~ or W, the run's summary)."""
    outcome = run(corpus, output, **{**options, "model": "glove"})
    return keyed_vectors(outcome.words, outcome.vectors), outcome.summary


def build_vocab(corpus: Corpus, output: Optional[str] = None, log: Optional[Callable[[str], None]] = None,
                **options) -> Tuple[Vocab, dict]:
    """Count a vocabulary (options: min_count, max_vocab_size, max_final_vocab, lowercase, threads:
    reading workers, default all cores) and write it to output in word2vec.c's -save-vocab format.
    Returns (the Vocab, a JSON-ready summary)."""
    _check_names(options, {*VOCAB_OPTIONS, "threads"}, "vocab")
    threads = options.pop("threads", default_threads())
    if not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"--threads must be a positive number, got {threads!r}; the default is all cores "
                          f"({default_threads()}).")
    cfg = _config(VocabConfig, VOCAB_OPTIONS, options, None).validate()
    if output is not None:
        check_output_path(output)
    reader = open_corpus(corpus, cfg.lowercase)
    t0 = time.perf_counter()
    vocab, _ = scan_corpus(reader, cfg, encode=False, threads=threads)
    seconds = time.perf_counter() - t0
    if output is not None:
        vocab.save(output)
    for warning in reader.warnings():
        (log or RunOptions.log)("warning: " + warning)
    return vocab, {"vocab_size": len(vocab), "tokens": reader.stats.n_tokens,
                   "long_tokens_skipped": reader.stats.n_long_tokens, "words_pruned": reader.stats.n_pruned,
                   "reading_workers": reader.stats.n_readers, "seconds": seconds, "threads": threads,
                   "output": output}


COOCCUR_OPTIONS = ("window", "asymmetric", "memory", "threads", "vocab", "tmp_dir", "cache", "cache_dir")


def count_cooccurrences(corpus: Corpus, output: str, log: Optional[Callable[[str], None]] = None, **options) -> dict:
    """Count GloVe co-occurrences into output (.npz) for train_glove(cooccur=...): options window
    (10), asymmetric, memory (GB, 1), threads, vocab (a file), tmp_dir, cache (True) and cache_dir
    (default: .w2v-cache beside the output), and the vocabulary's.
    Returns the JSON-ready summary ``w2v-async cooccur --json`` prints."""
    _check_names(options, {*VOCAB_OPTIONS, *COOCCUR_OPTIONS}, "cooccur")
    _check_tmp_dir(options.get("tmp_dir"))
    cfg = _config(VocabConfig, VOCAB_OPTIONS, options, None).validate()
    from .data.cooccur import count_cooccurrences_from_corpus  # its kernels: compiled only when counting

    return count_cooccurrences_from_corpus(
        corpus, output, cfg, window=options.get("window", 10), symmetric=not options.get("asymmetric", False),
        memory_gb=options.get("memory", 1.0), threads=options.get("threads", default_threads()),
        vocab_path=options.get("vocab"), tmp_dir=options.get("tmp_dir"), log=log or RunOptions.log,
        cache_dir=(options.get("cache_dir") or default_cache_dir(output)) if options.get("cache", True) else None)


def evaluate(kv, analogies: Optional[Sequence[str]] = None, similarities: Optional[Sequence[str]] = None,
             restrict_vocab: int = DEFAULT_RESTRICT_VOCAB, name: str = "vectors", oov: bool = False) -> EvalReport:
    """Score KeyedVectors on analogy and word-similarity sets (files; None: gensim's questions-words,
    and WordSim353 and SimLex-999). oov: a subword model's FastTextKeyedVectors also answer the
    questions with unseen words (``composed`` in each analogy result). Returns an EvalReport
    (``.to_dict()`` for JSON)."""
    analogies = default_analogy_sets() if analogies is None else list(analogies)
    similarities = default_similarity_sets() if similarities is None else list(similarities)
    return evaluate_sets(kv, name, analogies, similarities, restrict_vocab, oov)


EXPERIMENT_OPTIONS = {**{name: (name, _SAME) for name in ("model", "threads", "snapshots", "downpour", "epochs", "dim",
                                                         "min_count", "sparsity_words", "max_iter", "seed")},
                      "budget": ("budget_s", _SAME), "scaling_seconds": ("scaling_s", _SAME)}


def run_experiment(corpus: Union[str, os.PathLike], output: str, log: Optional[Callable[[str], None]] = None,
                   command: str = "", **options) -> dict:
    """``w2v-async experiment``: train options["model"] (sgns or glove) on corpus (a path) under
    every update scheme, and write output/report.md, results.json and the PNG plots (matplotlib:
    the [plots] extra; without it the tables are written, then ConfigError). Options: model,
    threads (a tuple of thread counts), budget and scaling_seconds (s), snapshots, downpour
    ((n_fetch, n_push) pairs), epochs, dim, min_count, sparsity_words, max_iter, seed.
    Returns the results as results.json holds them."""
    _check_names(options, set(EXPERIMENT_OPTIONS), "experiment")
    cfg = _config(ExperimentConfig, EXPERIMENT_OPTIONS, options, None).validate()
    from .experiment.run import run_experiment as run  # its kernels: compiled only when it runs

    return run(str(corpus), output, cfg, command=command, log=log or RunOptions.log)


PHRASES_OPTIONS = ("scoring", "threshold", "min_count", "passes", "delimiter", "connector_words", "max_vocab_size",
                   "lowercase", "max_word_length", "threads")


def phrases(corpus: Union[str, os.PathLike], output: Optional[str] = None, log: Optional[Callable[[str], None]] = None,
            save: Optional[str] = None, apply: Optional[str] = None, **options):
    """``w2v-async phrases``: detect phrases in corpus (a path, or "-" for stdin) as gensim's Phrases
    (or word2vec.c's word2phrase) does, and write the corpus to output with them joined ("new york" ->
    "new_york"); output None: learn the phrases only (one pass). Options: scoring ("default",
    "word2phrase", "npmi"), threshold (a number, one per pass, or "200,100"), min_count (5), passes (1),
    delimiter ("_"), connector_words ("none", "english" or a file), max_vocab_size, lowercase,
    max_word_length, threads. save: also write the phrase table there; apply: join the phrases of
    that table instead of learning them (threads the only option). Returns (the PhraseTable, its
    ``.passes`` the {phrase: (score, count)} of each pass, and the summary ``phrases --json`` prints).
    """
    from .data import phrases as phrase_detection  # its kernels: compiled only when detecting phrases

    _check_names(options, set(PHRASES_OPTIONS), "phrases")
    log = log or RunOptions.log
    if apply is not None:
        misplaced = sorted(set(options) - {"threads"})
        if misplaced or save is not None:
            name = misplaced[0] if misplaced else "save"
            raise ConfigError(f"--{name.replace('_', '-')} does not apply with --apply: the table brings its settings "
                              "and phrases; drop it, or learn a new table without --apply.")
        if output is None:
            raise ConfigError("--apply writes the corpus with the table's phrases joined; give an output.")
        if os.path.abspath(os.fspath(output)) == os.path.abspath(os.fspath(apply)):
            raise ConfigError(f"-o and --apply are the same file {os.fspath(output)!r}; the output would replace the "
                              "table: write to another file.")
        cfg = phrase_detection.PhrasesConfig(threads=options.get("threads", default_threads())).validate()
        table = phrase_detection.PhraseTable.load(os.fspath(apply))
        return table, phrase_detection.apply_phrases(os.fspath(corpus), output, table, cfg.threads, log)
    threshold = options.pop("threshold", None)
    if isinstance(threshold, str):
        threshold = phrase_detection.parse_thresholds(threshold)
    elif isinstance(threshold, (int, float)):
        threshold = (float(threshold),)
    elif threshold is not None:
        threshold = tuple(float(t) for t in threshold)
    cfg = phrase_detection.PhrasesConfig(threshold=threshold, **options)
    return phrase_detection.detect_phrases(os.fspath(corpus), output, cfg, save=save, log=log)
