"""One experiment from corpus to report: read the corpus (and count co-occurrences for GloVe),
measure the sparsity and the collisions, run every scheme and the scaling runs, evaluate the
snapshots, write the report."""

import datetime
import os
import platform
import tempfile
import time
from typing import Callable, Dict, List

import numpy as np

from ..config import ExperimentConfig, VocabConfig, default_threads
from ..data.vocab import read_corpus
from ..errors import ConfigError, InputError
from ..evaluation import DEFAULT_RESTRICT_VOCAB, evaluate_analogies, evaluate_similarity, gensim_datapath
from ..io import keyed_vectors
from . import report
from .record import SchemeRun
from .schemes import Runner, schemes, scaling, warm_up
from .sparsity import collisions_by_rank, cooccurrence_hypergraph, update_hypergraphs


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ray_available() -> bool:
    try:
        import ray  # noqa: F401  (optional: the [ray] extra)
    except ImportError:
        return False
    return True


def evaluate_snapshots(runs: List[SchemeRun], words: List[str], log: Callable[[str], None]) -> None:
    """Analogy accuracy (questions-words) and WS353 Spearman of every snapshot; drops the vectors."""
    import logging

    logging.getLogger("gensim").setLevel(logging.ERROR)
    analogies, ws353 = gensim_datapath("questions-words.txt"), gensim_datapath("wordsim353.tsv")
    t0 = time.perf_counter()
    for run in runs:
        for snap in run.snapshots:
            vectors = np.load(snap.vectors, mmap_mode="r") if isinstance(snap.vectors, str) else snap.vectors
            kv = keyed_vectors(words[: len(vectors)], vectors)
            snap.analogy = evaluate_analogies(kv, analogies, DEFAULT_RESTRICT_VOCAB).accuracy
            snap.ws353 = evaluate_similarity(kv, ws353, DEFAULT_RESTRICT_VOCAB).spearman
            del vectors, kv
            if isinstance(snap.vectors, str):
                os.remove(snap.vectors)
            snap.vectors = None
    log(f"evaluated {sum(len(r.snapshots) for r in runs)} snapshots [{time.perf_counter() - t0:.1f} s]")


def run_experiment(corpus: str, out_dir: str, cfg: ExperimentConfig, command: str = "",
                   log: Callable[[str], None] = lambda msg: None) -> Dict:
    """Run the experiment of cfg on corpus (a path) and write out_dir/report.md, results.json and
    the figures. Returns the results. Without matplotlib the tables are written, then ConfigError."""
    cfg.validate()
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError(f"report directory {out_dir!r} is a file; give a directory path.")
    os.makedirs(out_dir, exist_ok=True)
    if not os.access(out_dir, os.W_OK):
        raise InputError(f"cannot write to the report directory {out_dir!r}; choose another -o.")
    threads = default_threads()
    with tempfile.TemporaryDirectory(prefix=".experiment-", dir=out_dir) as tmp:
        _, vocab, encoded = read_corpus(corpus, VocabConfig(min_count=cfg.min_count), None, log, tmp, threads)
        cooc = None
        if cfg.model == "glove":
            from ..data.cooccur import count_cooccurrences  # GloVe's counting: only for a GloVe experiment

            cooc = count_cooccurrences(encoded, vocab, 10, True, 1.0, threads, tmp)
            log(f"{cooc.nnz:,} co-occurrence entries")
        # snapshots as files in tmp, of the words an evaluation looks at (restrict_vocab)
        runner = Runner(cfg, encoded, vocab, cooc, spill_dir=tmp, snapshot_dir=tmp,
                        snapshot_rows=DEFAULT_RESTRICT_VOCAB)
        t0 = time.perf_counter()
        warm_up(cfg)
        log(f"kernels ready [{time.perf_counter() - t0:.1f} s]")
        results: Dict = {
            "command": command,
            "machine": {"cores": threads, "cpu": _cpu(), "date": datetime.date.today().isoformat()},
            "settings": {"model": cfg.model, "corpus": str(corpus), "corpus_words": int(encoded.n_words)
                         if cooc is None else cooc.nnz, "vocab_size": len(vocab), "dim": cfg.dim,
                         "epochs": cfg.n_epochs, "budget_s": cfg.budget_s, "scaling_s": cfg.scaling_s,
                         "workers": cfg.workers, "threads": list(cfg.thread_counts)},
            "skipped": {},
        }
        results["hypergraphs"] = update_hypergraphs(encoded, vocab, cfg) if cooc is None \
            else cooccurrence_hypergraph(cooc, cfg)
        results["collisions"] = []
        matrices = ("w_word", "w_ctx") if cooc is not None else ("w_in", "w_out")
        for t in sorted({cfg.workers, max(cfg.thread_counts)}):
            writes, collided, seconds = runner.collisions(t)
            results["collisions"].append({
                "threads": t, "seconds": seconds, "writes": int(writes.sum()), "collided": int(collided.sum()),
                "rate": float(collided.sum() / max(writes.sum(), 1)),
                "by_rank": collisions_by_rank(writes, collided, matrices)})
            log(f"collisions at {t} threads: {results['collisions'][-1]['rate']:.4%} of row writes")
        results["sparsity_summary"] = report.summary(results["hypergraphs"], results.get("collisions"))
        # the scaling runs first: once Ray has started, its processes share the cores
        measured = scaling(runner, cfg, log)
        results["scaling"] = {k: {str(t): max(v) for t, v in per.items()} for k, per in measured.items()}
        results["scaling_runs"] = {k: {str(t): v for t, v in per.items()} for k, per in measured.items()}
        runs = []
        ray_ok = _ray_available()
        ray_was_up = ray_ok and _ray_initialized()
        try:
            for scheme in sorted(schemes(cfg), key=lambda s: s.on_ray):  # Ray's schemes last, for the same reason
                if scheme.on_ray and not ray_ok:
                    results["skipped"][scheme.name] = "Ray is not installed (pip install 'w2v-async[ray]')"
                    continue
                runs.append(runner.compare(scheme, log))
        finally:
            if ray_ok and not ray_was_up:
                _shutdown_ray()
        evaluate_snapshots(runs, vocab.words, log)
        results["runs"] = [{"name": r.name, "label": r.label, "workers": r.workers, "words": r.words,
                            "seconds": r.seconds, **{k: v for k, v in r.extra.items()},
                            "snapshots": [{"seconds": s.seconds, "words": s.words, "loss": s.loss,
                                           "analogy": s.analogy, "ws353": s.ws353} for s in r.snapshots]}
                           for r in runs]
    try:
        figures = report.plots(out_dir, results, runs)
    except ImportError:
        report.write(out_dir, results, runs, [])
        raise ConfigError(f"the tables are in {os.path.join(out_dir, 'report.md')}, but the plots need matplotlib; "
                          f"install it with {report.PLOTS_INSTALL}.")
    path = report.write(out_dir, results, runs, figures)
    log(f"wrote {path} and {len(figures)} figures")
    return results


def _ray_initialized() -> bool:
    import ray  # optional: the [ray] extra

    return ray.is_initialized()


def _shutdown_ray() -> None:
    """Stop the local Ray the Ray schemes started (a Ray the caller had started stays up)."""
    import ray  # optional: the [ray] extra

    if ray.is_initialized():
        ray.shutdown()

