"""The GloVe training job (``w2v-async train --model glove``): count co-occurrences or load them,
train on any engine, write; checkpoints, resume, signals and outputs are job.py's."""

import dataclasses
import os
import time
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from .config import GloveConfig, VocabConfig
from .data.cache import read_corpus_cached
from .data.corpus import check_output_path
from .data.vocab import Vocab
from .engines.base import import_ray
from .engines.threads import train_glove
from .errors import ConfigError, InputError
from .data.init import check_init, glove_start, read_for_init, with_source_words
from .io import fingerprint, resolve_format, unpack_words
from .job import JobOutcome, RunOptions, _cache_dir, _Job, spill_directory


def train_glove_from_corpus(
    source: Union[None, str, os.PathLike, Iterable[Sequence[str]]],
    output: Optional[str],
    vocab_cfg: VocabConfig,
    cfg: GloveConfig,
    cooccur_path: Optional[str] = None,
    options: Optional[RunOptions] = None,
) -> JobOutcome:
    """The ``w2v-async train --model glove`` job: count co-occurrences (or load them), train, write.

    With ray (a RayConfig), training runs as Downpour on Ray (engines/ray.py), or, with
    options.sandblaster too, as Sandblaster L-BFGS (engines/sandblaster.py).

    Exactly one of source and cooccur_path is given. Checkpoints, resume and signals as
    train_from_corpus (a checkpoint holds the AdaGrad sums too). Nothing is written unless
    training finishes.
    """
    from .data.cooccur import Cooccurrence, count_cooccurrences  # its kernels: compiled only by a GloVe run

    options = options or RunOptions()
    vocab_path, fmt, progress, log, ray = options.vocab_path, options.fmt, options.progress, options.log, options.ray
    vocab_cfg.validate()
    cfg.validate()
    if (source is None) == (cooccur_path is None):
        raise ConfigError("give a CORPUS or --cooccur FILE (not both) to train GloVe.")
    if output is not None:
        check_output_path(output)
        fmt = resolve_format(output, fmt)
    sandblaster = options.sandblaster
    if ray is not None and sandblaster is not None:
        from .engines.sandblaster import train_glove_sandblaster  # Ray is optional: only with --engine sandblaster

        ray.validate()
        sandblaster.validate()
        import_ray("sandblaster")
    elif ray is not None:
        from .engines.ray import train_glove_ray  # Ray is optional: imported only with --engine ray

        ray.validate()
        if ray.ps_optimizer != "sgd":
            raise ConfigError("GloVe on Ray runs its own AdaGrad in the replicas; use --ps-optimizer sgd.")
        import_ray()
    if options.gpu:
        from .engines.gpu import cuda_or_error, train_glove_gpu  # numba.cuda: imported only with --engine gpu

        cuda_or_error()  # before the co-occurrences are counted
    job = _Job("glove", output, vocab_cfg, cfg, options)
    if options.init is not None:
        check_init(options.init, cfg.dim)
    t0 = time.perf_counter()
    store = lambda: None  # noqa: E731 -- the encoded corpus is cached only once the job has succeeded
    if cooccur_path is not None:
        cooc = Cooccurrence.load(cooccur_path)
        if vocab_path is not None:
            expected = Vocab.load(vocab_path, vocab_cfg.min_count, vocab_cfg.max_final_vocab)
            if expected.words != cooc.vocab.words:
                raise InputError(
                    f"{cooccur_path} was counted with another vocabulary ({len(cooc.vocab)} words) than "
                    f"{vocab_path} ({len(expected)} words); count it again with --vocab {vocab_path}."
                )
        log(f"co-occurrences: {cooc.nnz} entries over {len(cooc.vocab)} words from {cooccur_path}")
        if options.init is not None:  # the source's other words after the matrix's
            cooc = dataclasses.replace(cooc, vocab=with_source_words(cooc.vocab, options.init, options.init_vocab))
        elif job.init_meta and unpack_words(job.arrays)[: len(cooc.vocab)] == cooc.vocab.words:
            cooc = dataclasses.replace(cooc, vocab=Vocab(unpack_words(job.arrays), job.arrays["counts"]))
        data, what, pruned = fingerprint(cooc.rows, cooc.cols, cooc.values), "co-occurrence matrix", False
    else:
        reading = (source, vocab_cfg, vocab_path, log, spill_directory(output), cfg.threads, _cache_dir(options, output))
        if options.init is not None:
            reader, vocab, encoded, store = read_for_init(*reading[:2], options.init, options.init_vocab, *reading[3:])
        else:  # resuming an --init run: its vocabulary, as saved
            given = Vocab(unpack_words(job.arrays), job.arrays["counts"]) if job.init_meta else None
            reader, vocab, encoded, store = read_corpus_cached(*reading, given)
        # the counts' float sums round by how the threads split the corpus: the data are the ids and the window
        data = fingerprint(np.frombuffer(f"{encoded.fingerprint()} {cfg.window} {cfg.symmetric}".encode(), np.uint8))
        what, pruned = "corpus", reader.stats.n_pruned > 0
        directory = options.tmp_dir or (None if output is None else os.path.dirname(os.path.abspath(output)))
        cooc = count_cooccurrences(encoded, vocab, cfg.window, cfg.symmetric, cfg.memory_gb, cfg.threads, directory)
        del encoded  # store() keeps it mapped (a file, not memory) until the job has succeeded
        log(f"co-occurrences: {cooc.nnz} entries from {cooc.n_runs} sorted run(s)")
    n_words = len(cooc.vocab)
    job.check_data(cooc.vocab.words, data, what, pruned)
    if options.init is not None:
        job.start = glove_start(options.init, cooc.vocab)
    floats = 4 * n_words * (cfg.dim + 1)  # the parameters and AdaGrad's sums, float32
    if sandblaster is not None:  # L-BFGS's point, gradient and history pairs, float64
        floats = 2 * n_words * (cfg.dim + 1) * 2 * (2 + 2 * sandblaster.history)
    job.check_space(n_words, cfg.dim, fmt, floats)
    prepare_s = time.perf_counter() - t0
    spill = spill_directory(output)
    passes = cfg.epochs
    if options.gpu:
        run = lambda ckpt: train_glove_gpu(cooc, cfg, progress, ckpt, spill)  # noqa: E731
    elif ray is None:
        run = lambda ckpt: train_glove(cooc, cfg, progress=progress, checkpointing=ckpt, spill_dir=spill)  # noqa: E731
    elif sandblaster is None:
        run = lambda ckpt: train_glove_ray(cooc, cfg, ray, progress=progress, checkpointing=ckpt,  # noqa: E731
                                           spill_dir=spill)
    else:
        run = lambda ckpt: train_glove_sandblaster(cooc, cfg, ray, sandblaster, progress, ckpt)  # noqa: E731
        passes = sandblaster.max_iter  # a checkpoint's progress counts iterations
    result, final, config_path, write_s = job.train_and_write(
        run, cooc.vocab.counts, cooc.nnz * passes, lambda res: res.vectors(cfg.vectors), fmt, ("--eta", cfg.eta))
    store()
    extra = {"engine": job.engine, "ray": dataclasses.asdict(ray), "downpour": result.downpour} if ray else {}
    if options.gpu:
        extra = {"engine": "gpu", "gpu": result.downpour}
    if sandblaster is not None:
        extra["sandblaster"] = dataclasses.asdict(sandblaster)
    return JobOutcome(cooc.vocab.words, final, {
        "model": "glove",
        **extra,
        "config": {"vocab": dataclasses.asdict(vocab_cfg), "train": dataclasses.asdict(cfg)},
        "vocab_size": n_words,
        "nnz": cooc.nnz,
        "entries_trained": result.entries_trained,
        "entries_per_sec": result.entries_trained / result.seconds if result.seconds > 0 else 0.0,
        "epoch_cost": result.epoch_cost,
        "seconds": {"cooccur": prepare_s, "train": result.seconds, "write": write_s,
                    "checkpoints": job.checkpoint_seconds},
        "outputs": {"vectors": output, "format": fmt, "config": config_path, "checkpoint": job.last_checkpoint},
    })
