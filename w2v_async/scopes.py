"""Which train option applies to which run: the command line and the Python API both ask.

An option given where it does not apply would be dropped, yet written to OUTPUT.json as if used:
both refuse it instead, the command line before anything loads."""

import dataclasses
from dataclasses import dataclass
from typing import Optional, Tuple

from .config import ENGINES, VocabConfig

# Names are the API's (the command line's
# --flags with _ for -). Each row: the options, the runs they apply to (as the error names
# them), the test, the fix. An option in no row applies to every run; one in several rows must pass
# each, and the first it fails is named.
_INIT_OPTIONS = ("init", "init_vocab", "lock_init", "lock_factor")
_LBFGS_OPTIONS = ("max_iter", "lbfgs_history", "gtol", "ftol", "push_every", "precondition")
# what only reading a corpus uses: with --cooccur nothing is read (the vocabulary options but
# min_count and max_final_vocab, which read a --vocab file to check the matrix's against)
_READING_OPTIONS = ("window", "asymmetric", "tmp_dir", *(f.name for f in dataclasses.fields(VocabConfig)
                                                        if f.name not in ("min_count", "max_final_vocab")))


@dataclass(frozen=True)
class RunKind:
    """What decides which train options apply."""

    model: str = "sgns"
    engine: str = "threads"
    cooccur: bool = False  # GloVe trained on a --cooccur file (counted already)
    vocab: bool = False  # a --vocab file given
    subwords: bool = False  # --subwords: fastText's model
    init: bool = False  # --init: starting from a trained model


def run_kind(model: str, options: dict, checkpoint: Optional[dict] = None) -> RunKind:
    """The run that options (API names) ask for; a setting not given comes from the checkpoint's
    metadata when resuming, as the run will take it."""
    saved = ((checkpoint or {}).get("config") or {}).get("train") or {}
    return RunKind(model, options.get("engine", "threads"), options.get("cooccur") is not None,
                   options.get("vocab") is not None, bool(options.get("subwords", saved.get("subwords", False))),
                   options.get("init") is not None)


OPTION_SCOPES = (
    (("x_max", "glove_alpha", "eta", "grad_clip", "vectors", "asymmetric", "memory", "tmp_dir", *_LBFGS_OPTIONS),
     "--model glove", lambda r: r.model == "glove", "add --model glove"),
    (("negative", "ns_exponent", "sample", "alpha", "min_alpha", "batching", "ps_eta", "hs", "fixed_window",
      "subwords"),
     "--model sgns or cbow", lambda r: r.model != "glove", "use --model sgns or cbow"),
    (("hs", "subwords"), "--engine threads", lambda r: r.engine == "threads",
     "drop --engine (Downpour trains word2vec's models)"),
    (("minn", "maxn", "bucket"), "--subwords", lambda r: r.subwords, "add --subwords"),
    (("lock_init", "lock_factor"), "--model sgns or cbow", lambda r: r.model != "glove", "use --model sgns or cbow"),
    (_INIT_OPTIONS, "--engine threads or ray", lambda r: r.engine != "sandblaster", "use --engine threads or ray"),
    (("lock_init", "lock_factor"), "runs without --subwords", lambda r: not r.subwords, "drop --subwords"),
    (("lock_init", "lock_factor"), "--engine threads or ray", lambda r: r.engine in ("threads", "ray"),
     "use --engine threads or ray"),
    (("save_model",), "--engine threads or ray", lambda r: r.engine != "sandblaster",
     "keep the vectors (-o) to start a later run from"),
    (_INIT_OPTIONS[1:], "--init", lambda r: r.init, "add --init SOURCE"),
    (("replicas", "ps_shards", "batch_words", "ray_address"),
     "--engine ray or sandblaster", lambda r: r.engine in ("ray", "sandblaster"), "add --engine ray"),
    (("n_fetch", "n_push", "ps_optimizer", "ps_eta"), "--engine ray", lambda r: r.engine == "ray", "add --engine ray"),
    (_LBFGS_OPTIONS, "--engine sandblaster", lambda r: r.engine == "sandblaster", "add --engine sandblaster"),
    (("epochs",), "--engine threads or ray", lambda r: r.engine != "sandblaster",
     "give --max-iter (L-BFGS iterations) instead"),
    (_READING_OPTIONS, "counting a CORPUS", lambda r: not r.cooccur, "give a CORPUS instead of --cooccur"),
    (("min_count", "max_final_vocab"), "a CORPUS or a --vocab FILE", lambda r: not r.cooccur or r.vocab,
     "add the --vocab FILE that --cooccur was counted with"),
)


def misplaced_option(given, run: RunKind, checkpoint: Optional[dict] = None) -> Optional[Tuple[str, str]]:
    """The first of the given option names that does not apply to run, with the error's words
    ("--x-max applies to --model glove only; drop it or add --model glove."); None when all apply.

    None too when the run itself will be refused (an unknown engine; --engine sandblaster or
    --cooccur with word2vec; a checkpoint, given as peek_checkpoint's metadata, of another model or
    of the other kind of engine state): that error, which names what to run instead, comes first.
    """
    if run.engine not in ENGINES or (run.model != "glove" and (run.engine == "sandblaster" or run.cooccur)):
        return None
    if checkpoint is not None:
        lbfgs = checkpoint.get("engine", "threads") == "sandblaster"
        if checkpoint.get("model") != run.model or lbfgs != (run.engine == "sandblaster"):
            return None
    for name in given:
        for names, where, applies, fix in OPTION_SCOPES:
            if name in names and not applies(run):
                return name, f"--{name.replace('_', '-')} applies to {where} only; drop it or {fix}."
    return None
