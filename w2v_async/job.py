"""One run's life, the same for every engine and model: read the input, check before training,
checkpoint and resume, turn signals into a clean stop, refuse divergence, write outputs atomically."""

import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .config import RUN_SETTINGS, RayConfig, SandblasterConfig, VocabConfig, Word2VecConfig, to_json
from .data.corpus import check_output_path
from .data.cache import default_cache_dir, read_corpus_cached
from .data.init import InitSource, check_init, read_for_init, start_from
from .data.vocab import Vocab
from .engines.base import Checkpointing, RunState, check_finite, import_ray
from .engines.threads import train_word2vec
from .errors import ConfigError, DivergedError, InputError, Interrupted
from .io import (check_directory, check_free_space, load_checkpoint, pack_words, partial_path,
                 resolve_format, save_checkpoint, save_model_file, unpack_words, write_outputs)
from .io_fasttext import check_fasttext_path, fasttext_keyed_vectors, n_buckets, save_fasttext
from .signals import Interrupts  # noqa: F401 -- also w2v_async.job.Interrupts, as before
from .testhooks import HOLD, hold


def _silent(msg: str) -> None:
    pass


@dataclass(frozen=True)
class RunOptions:
    """How a training job runs, apart from the model's settings: a --vocab file, the output format,
    the progress bar and log lines, checkpoints and resume (see _Job), and the Ray engine (None:
    threads; with sandblaster, Sandblaster L-BFGS on Ray, else Downpour)."""

    vocab_path: Optional[str] = None
    fmt: str = "auto"
    progress: bool = True
    log: Callable[[str], None] = _silent
    checkpoint_dir: Optional[str] = None
    checkpoint_every: Optional[float] = None
    resume: Optional[str] = None
    ray: Optional[RayConfig] = None
    sandblaster: Optional[SandblasterConfig] = None  # with ray: GloVe by Sandblaster L-BFGS instead of Downpour
    cache: bool = True
    cache_dir: Optional[str] = None  # None: beside the output (data/cache.py)
    tmp_dir: Optional[str] = None  # GloVe from a corpus: where co-occurrence runs spill (None: beside the output)
    save_model: Optional[str] = None  # --save-model: a checkpoint file of the finished run, for --init
    init: Optional[InitSource] = None  # --init: the trained model to start from (data/init.load_init)
    init_vocab: str = "extend"
    lock_factor: Optional[float] = None  # --init: the source rows' update factor (--lock-init: 0)
    gpu: bool = False  # --engine gpu (engines/gpu.py)


DEFAULT_CHECKPOINT_MINUTES = 10.0


def _cache_dir(options: RunOptions, output: Optional[str]) -> Optional[str]:
    """Where the encoded corpus is cached (None: not cached)."""
    return (options.cache_dir or default_cache_dir(output)) if options.cache else None


def spill_directory(output: Optional[str]) -> str:
    """Where a run builds its encoded corpus (files mapped, then unlinked; data/cache.check_room): beside the output."""
    return os.path.dirname(os.path.abspath(output)) if output is not None else tempfile.gettempdir()


class _Job:
    """What train_from_corpus and train_glove_from_corpus share: the checkpoint directory, resuming,
    checks before training, and what happens on a signal or divergence."""

    def __init__(self, model: str, output: Optional[str], vocab_cfg: VocabConfig, cfg, options: RunOptions):
        checkpoint_dir, checkpoint_every, resume, log = (options.checkpoint_dir, options.checkpoint_every,
                                                         options.resume, options.log)
        self.model, self.output, self.vocab_cfg, self.cfg, self.log = model, output, vocab_cfg, cfg, log
        self.model_path, self.init = options.save_model, options.init
        if self.model_path is not None:
            check_output_path(self.model_path)
            if output is not None and os.path.abspath(output) == os.path.abspath(self.model_path):
                raise ConfigError(f"--save-model {self.model_path!r} is also -o; give the model file another name.")
        if self.init is not None and (resume is not None or options.vocab_path is not None):
            raise ConfigError(f"--init starts a new run with its own vocabulary; drop --{'resume' if resume else 'vocab'} "
                              "(a fine-tuning run resumes with --resume alone).")
        self.init_meta = None if self.init is None else {"source": self.init.name, "vocab": options.init_vocab,
                                                         "lock_factor": options.lock_factor}
        if options.lock_factor is not None and not 0.0 <= options.lock_factor <= 1.0:
            raise ConfigError(f"--lock-factor must be in [0, 1] (0: frozen, as --lock-init), got {options.lock_factor}.")
        self.engine = ("gpu" if options.gpu else "threads") if options.ray is None else \
            "sandblaster" if options.sandblaster else "ray"
        self.pass_name = "iteration" if self.engine == "sandblaster" else "epoch"  # what a checkpoint counts
        if checkpoint_every is not None and checkpoint_every < 0:
            raise ConfigError(
                f"--checkpoint-every must be >= 0 minutes (0: only at epoch ends), got {checkpoint_every}.")
        if checkpoint_every is not None and checkpoint_dir is None and resume is None:
            raise ConfigError("--checkpoint-every needs --checkpoint-dir DIR (where the checkpoints go).")
        self.directory = checkpoint_dir or resume
        self.every_s = None if checkpoint_every is None else checkpoint_every * 60.0
        if self.directory is not None and self.every_s is None:
            self.every_s = DEFAULT_CHECKPOINT_MINUTES * 60.0
        self.meta: Optional[dict] = None
        self.start = None  # --init: data/init.StartFrom, set once the vocabulary is known
        self.lockf: Optional[np.ndarray] = None  # its input rows' update factors, saved with each checkpoint
        self.arrays: Optional[Dict[str, np.ndarray]] = None
        self.save_model: Optional[Callable] = None  # (path, result, vectors): a model file instead of vectors
        self.last_checkpoint: Optional[str] = None
        self.checkpoint_seconds: List[float] = []
        if resume is not None:
            self.meta, self.arrays, path = load_checkpoint(resume, log)
            self.last_checkpoint = path
            self._check_config()
            self.init_meta, self.lockf = self.meta.get("init"), self.arrays.get("lockf")
            log(f"resuming from {path} ({self.pass_name} {self.meta['epoch']}/{self.meta['epochs']}, "
                f"{self.meta['progress']:.0%} done)")
        if self.directory is not None:
            check_directory(self.directory)

    def _check_config(self) -> None:
        saved = self.meta["config"]
        mine = {"vocab": dataclasses.asdict(self.vocab_cfg), "train": dataclasses.asdict(self.cfg)}
        if self.meta["model"] != self.model:
            raise ConfigError(f"the checkpoint trains --model {self.meta['model']}, not {self.model}; "
                              f"resume with --model {self.meta['model']}.")
        saved_engine = self.meta.get("engine", "threads")
        if (saved_engine == "sandblaster") != (self.engine == "sandblaster"):  # L-BFGS's state, or AdaGrad's
            raise ConfigError(f"the checkpoint was trained with --engine {saved_engine}, whose state --engine "
                              f"{self.engine} cannot continue; resume with --engine {saved_engine}.")
        diffs = [f"{k} {mine[part][k]!r} (checkpoint: {v!r})" for part in ("vocab", "train")
                 for k, v in saved[part].items() if mine[part].get(k) != v and k not in RUN_SETTINGS]
        if diffs:
            raise ConfigError(f"these settings differ from the checkpoint's: {', '.join(diffs)}; resume with the "
                              "checkpoint's settings or start a new --checkpoint-dir.")

    def check_data(self, words: List[str], fingerprint: str, what: str, pruned: bool = False,
                   tree_counts: Optional[np.ndarray] = None) -> None:
        """Refuse to resume on another vocabulary, counts (tree_counts: what lays out --hs's and
        --subwords' rows) or training data than the checkpoint's (pruned: the vocabulary depends on
        the reading threads)."""
        self.words, self.fingerprint = words, fingerprint
        if self.arrays is None:
            return
        saved_words = unpack_words(self.arrays)
        if saved_words != words:
            fix = (f"--threads {self.meta['config']['train'].get('threads')} (words were pruned while counting, so "
                   "the vocabulary depends on how many threads read the corpus), or train with --vocab FILE") \
                if pruned else "the same corpus, --vocab and --min-count"
            raise InputError(f"this {what} gives another vocabulary ({len(words)} words) than the checkpoint's "
                             f"({len(saved_words)} words); resume with {fix}.")
        if tree_counts is not None and not np.array_equal(self.arrays.get("counts", tree_counts), tree_counts):
            raise InputError("the vocabulary's counts differ from the checkpoint's, which lay out its --hs tree or "
                             "--subwords rows; resume with the same --vocab file or corpus.")
        if self.meta["data"] != fingerprint:
            raise InputError(f"this {what} differs from the one the checkpoint was trained on; resume with the "
                             "same input.")

    def check_space(self, n_words: int, dim: int, fmt: str, n_param_floats: int, n_model_floats: int = 0) -> None:
        per_vector = dim * 4 if fmt == "bin" else dim * 12  # fasttext: a .vec, and the .bin's n_model_floats
        needs = {}
        if self.output is not None:
            needs[os.path.dirname(os.path.abspath(self.output))] = n_words * (per_vector + 32) + 4 * n_model_floats
        checkpoint = n_param_floats * 4 + n_words * 64
        for where, copies in ((self.directory, 2), (self.model_path and os.path.dirname(os.path.abspath(self.model_path)), 1)):
            if where is not None:
                needs[os.path.abspath(where)] = needs.get(os.path.abspath(where), 0) + copies * checkpoint
        check_free_space(needs)

    def save(self, params: Dict[str, np.ndarray], state: RunState, model_file: bool = False) -> None:
        """Write a checkpoint of params and state into the directory, or (model_file) the
        --save-model file (never a non-finite one)."""
        check_finite(params, state)
        t0 = time.perf_counter()
        epochs = state.loss.shape[1]
        meta = {
            "model": self.model, "engine": self.engine, "init": self.init_meta,
            "config": {"vocab": dataclasses.asdict(self.vocab_cfg), "train": dataclasses.asdict(self.cfg)},
            "data": self.fingerprint, "epoch": int(min(state.epoch.min() + 1, epochs)), "epochs": epochs,
            "progress": float(state.counters[1:].sum() / max(self.total_units, 1)), "seconds": state.seconds,
        }
        arrays = dict(params, **state.to_arrays(), **pack_words(self.words), counts=self.counts)
        if self.lockf is not None:
            arrays["lockf"] = self.lockf
        where = self.model_path if model_file else self.directory
        try:
            if model_file:
                return save_model_file(self.model_path, meta, arrays)
            self.last_checkpoint = save_checkpoint(self.directory, meta, arrays)
        except OSError as e:
            raise InputError(f"could not write {'--save-model' if model_file else 'a checkpoint in'} {where!r}: "
                             f"{e.strerror or e}; free some space or write elsewhere.") from e
        self.checkpoint_seconds.append(time.perf_counter() - t0)
        if HOLD is not None:  # test hook: a signal sent once a checkpoint is saved (tests/test_signals.py)
            hold(f"checkpoint-{len(self.checkpoint_seconds)}-saved", lambda: self.interrupts.signal is not None)

    def checkpointing(self, interrupts: Interrupts, counts: np.ndarray, total_units: int) -> Checkpointing:
        """How the trainer should checkpoint and resume; counts : the vocabulary's, total_units :
        the words (or entries) of the whole run, for the progress a checkpoint records."""
        self.counts, self.total_units, self.interrupts = counts, total_units, interrupts
        return Checkpointing(save=self.save if self.directory is not None else None, every_s=self.every_s,
                             resume=self.arrays, interrupts=interrupts, init=self.start, lockf=self.lockf)

    def train_and_write(self, run: Callable[[Checkpointing], object], counts: np.ndarray, total_units: int,
                        vectors: Callable[[object], np.ndarray], fmt: str, rate: Tuple[str, float]):
        """run(checkpointing) -> result under Interrupts, then the vectors (or save_model's file) and
        config, atomically. A signal writes a checkpoint and the vectors so far and raises Interrupted;
        divergence raises an error naming rate = (flag, value). Returns (result, the vectors, config
        path or None when there is no output file, seconds writing)."""
        config_json = to_json(vocab=self.vocab_cfg, train=self.cfg)
        with Interrupts() as interrupts:
            try:
                result = run(self.checkpointing(interrupts, counts, total_units))
                if result.state.stopped:
                    raise self.interrupted(result, interrupts.signal, lambda path: self.write(
                        path, result, vectors(result), fmt, config_json))
                check_finite(result.params, result.state)
            except DivergedError as e:
                raise self.diverged(e, *rate) from e
            t0 = time.perf_counter()
            final = vectors(result)
            config_path = None if self.output is None else self.write(self.output, result, final, fmt, config_json)
            if self.model_path is not None:
                self.save(result.params, result.state, model_file=True)
        return result, final, config_path, time.perf_counter() - t0

    def write(self, path: str, result, vectors: np.ndarray, fmt: str, config_json: str) -> str:
        save = None if self.save_model is None else (lambda p: self.save_model(p, result, vectors))
        return write_outputs(path, self.words, vectors, fmt, config_json, save)

    def diverged(self, e: DivergedError, rate_flag: str, rate: float) -> InputError:
        kept = (f" The last good checkpoint, {self.last_checkpoint}, is kept." if self.last_checkpoint else "")
        return InputError(f"{e} No vectors were written. Lower {rate_flag} (it was {rate:g}; try {rate / 10:g}).{kept}")

    def interrupted(self, result, signal_name: str, write_partial: Callable[[str], None]) -> Interrupted:
        """Write a checkpoint and the vectors so far after a signal; returns the exception to raise."""
        state = result.state
        epochs = state.loss.shape[1]
        done = (f"in {self.pass_name} {int(min(state.epoch.min() + 1, epochs))}/{epochs} "
                f"({state.counters[1:].sum() / max(self.total_units, 1):.0%} done)")
        if self.directory is None and self.output is None:
            return Interrupted(signal_name, None, None, None, done)
        if self.directory is None:
            self.directory = self.output + ".checkpoint"
            check_directory(self.directory)
        self.save(result.params, state)
        partial = None
        if self.output is not None:
            partial = partial_path(self.output)
            write_partial(partial)
        return Interrupted(signal_name, self.directory, self.last_checkpoint, partial, done)


@dataclass
class JobOutcome:
    """A finished run: words[i]'s vector is vectors[i] (float32[V, d]); summary is JSON-ready."""

    words: List[str]
    vectors: np.ndarray
    summary: dict
    keyed_vectors: Optional[Callable[[], object]] = None  # --subwords: gensim FastTextKeyedVectors, made on demand


def train_from_corpus(
    source: Union[str, os.PathLike, Iterable[Sequence[str]]],
    output: Optional[str],
    vocab_cfg: VocabConfig,
    cfg: Word2VecConfig,
    options: Optional[RunOptions] = None,
) -> JobOutcome:
    """The whole ``w2v-async train`` job: read, encode, train, write vectors and config atomically.

    With ray (a RayConfig), training runs as Downpour SGD on Ray (engines/ray.py) instead of threads.

    With checkpoint_dir, the state is saved there every checkpoint_every minutes (default 10) and
    at every epoch end; resume continues from the newest good checkpoint in that directory (and
    keeps checkpointing there). SIGINT / SIGTERM save a checkpoint and the vectors so far, then
    raise Interrupted. source: a path (file, directory, .gz, .bz2, "-") or an iterable of token
    lists; output None writes no vectors file. Returns the words, their vectors and a JSON-ready
    summary (config, vocabulary size, words trained, words/s, loss per epoch, timings, output
    paths). Final outputs are written only when training finishes, and never with non-finite values.
    """
    options = options or RunOptions()
    vocab_path, fmt, progress, log, ray = options.vocab_path, options.fmt, options.progress, options.log, options.ray
    vocab_cfg.validate()
    cfg.validate()
    if output is not None:
        check_output_path(output)
        fmt = resolve_format(output, fmt)
    if ray is not None:
        from .engines.ray import train_word2vec_ray  # Ray is optional: imported only with --engine ray

        ray.validate()
        import_ray()
    if options.gpu:
        from .engines.gpu import check_block, cuda_or_error, train_word2vec_gpu  # numba.cuda: only with --engine gpu

        cuda_or_error()  # before the corpus is read
        check_block(cfg)
    job = _Job(cfg.model, output, vocab_cfg, cfg, options)
    t0 = time.perf_counter()
    reading = (source, vocab_cfg, vocab_path, log, spill_directory(output), cfg.threads, _cache_dir(options, output))
    if options.init is not None:
        check_init(options.init, cfg.dim, (cfg.minn, cfg.maxn, cfg.bucket) if cfg.subwords else None)
        reader, vocab, encoded, store = read_for_init(*reading[:2], options.init, options.init_vocab, *reading[3:])
    else:  # resuming an --init run: its vocabulary, as saved
        given = Vocab(unpack_words(job.arrays), job.arrays["counts"]) if job.init_meta else None
        reader, vocab, encoded, store = read_corpus_cached(*reading, given)
    job.check_data(vocab.words, encoded.fingerprint(), "corpus", reader.stats.n_pruned > 0,
                   vocab.counts if cfg.hs or cfg.subwords else None)
    matrices = 1 + (cfg.negative > 0) + cfg.hs  # w_in, w_out, syn1: what a checkpoint holds
    ngram_rows = min(n_buckets(cfg), 64 * len(vocab)) if cfg.subwords else 0  # at most: the buckets used
    if cfg.subwords and fmt == "bin":  # fastText's MODEL.bin, and MODEL.vec beside it
        check_fasttext_path(output)
        job.save_model, fmt = (lambda path, res, vecs: save_fasttext(path, vocab.words, vocab.counts, cfg, res.params,
                               res.ngram_buckets, vecs, vocab_cfg.min_count)), "fasttext"
    job.check_space(len(vocab), cfg.dim, fmt, (matrices * len(vocab) + ngram_rows) * cfg.dim,
                    (2 * len(vocab) + n_buckets(cfg)) * cfg.dim if fmt == "fasttext" else 0)
    scan_s = time.perf_counter() - t0
    if options.init is not None:
        job.start = start_from(options.init, vocab, cfg.negative, cfg.hs, options.lock_factor, cfg.subwords)
        job.lockf = job.start.lockf
    run = (lambda ckpt: train_word2vec(encoded, vocab, cfg, progress=progress, checkpointing=ckpt)) if ray is None \
        else (lambda ckpt: train_word2vec_ray(encoded, vocab, cfg, ray, progress=progress, checkpointing=ckpt))
    if options.gpu:
        run = lambda ckpt: train_word2vec_gpu(encoded, vocab, cfg, progress, ckpt)  # noqa: E731
    result, final, config_path, write_s = job.train_and_write(
        run, vocab.counts, encoded.n_words * cfg.epochs, lambda res: res.w_in, fmt, ("--alpha", cfg.start_alpha))
    store()
    extra = {"engine": "ray", "ray": dataclasses.asdict(ray), "downpour": result.downpour} if ray else {}
    if options.gpu:
        extra = {"engine": "gpu", "gpu": result.downpour}
    composed = None if not cfg.subwords else lambda: fasttext_keyed_vectors(
        vocab.words, vocab.counts, cfg, result.params, result.ngram_buckets, final)
    return JobOutcome(vocab.words, final, keyed_vectors=composed, summary={
        "model": cfg.model,
        **extra,
        "config": {"vocab": dataclasses.asdict(vocab_cfg), "train": dataclasses.asdict(cfg)},
        "corpus": {
            "source": reader.source,
            "tokens": reader.stats.n_tokens,
            "words_in_vocab": encoded.n_words,
            "sentences": encoded.n_sentences,
            "long_lines_split": reader.stats.n_split_lines,
            "long_tokens_skipped": reader.stats.n_long_tokens,
            "bad_utf8_lines": reader.stats.n_bad_utf8_lines,
        },
        "vocab_size": len(vocab),
        "words_trained": result.words_trained,
        "words_per_sec": result.words_per_sec,
        "epoch_loss": result.epoch_loss,
        "epoch_examples": result.epoch_examples,
        "seconds": {"scan": scan_s, "train": result.seconds, "write": write_s,
                    "checkpoints": job.checkpoint_seconds},
        "outputs": {"vectors": output, "format": fmt, "config": config_path, "checkpoint": job.last_checkpoint},
    })
