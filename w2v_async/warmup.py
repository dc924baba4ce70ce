"""Compiling the numba kernels: a one-line notice when a run has to, and ahead of time.

Every kernel is compiled once and then loaded from numba's cache (NUMBA_CACHE_DIR, or
``__pycache__`` beside the package when it is writable, else a user cache directory). A cold
first run spends seconds compiling; ``compile_notice`` says so on stderr, once, and only when
numba really compiles (numba's "numba:compile" event fires on a cache miss, not on a load).
``python -m w2v_async.warmup [--all]`` compiles ahead of time: for images, and for the nodes of a
Ray cluster (their replicas import the same kernels).
"""

import argparse
import contextlib
import importlib
import sys
import time
from typing import Callable, Iterator

# what a first run compiles, measured on the 2-vCPU VM (BENCHMARKS.md, issue 17)
ABOUT_S = {"skip-gram": 15, "CBOW": 15, "GloVe": 8, "co-occurrence counting": 6}
MODELS = {"sgns": "skip-gram", "cbow": "CBOW", "glove": "GloVe"}


class _FirstCompile:
    """A numba event listener that calls notify() at the first compilation it sees."""

    def __init__(self, notify: Callable[[], None]):
        import numba.core.event as ev  # numba loads only when a command needs kernels

        self.notify, self.seen = notify, False

        class Listener(ev.Listener):
            def on_start(inner, event):  # noqa: N805 -- numba's Listener interface
                if not self.seen:
                    self.seen = True
                    self.notify()

            def on_end(inner, event):  # noqa: N805
                pass

        self.listener = Listener()


@contextlib.contextmanager
def compile_notice(what: str, log: Callable[[str], None], about_s: int = 0) -> Iterator[None]:
    """Within the block, the first kernel numba has to compile prints one line through log:
    ``compiling kernels for skip-gram (first run only, about 15 s)...``."""
    import numba.core.event as ev

    about_s = about_s or ABOUT_S.get(what, 10)
    first = _FirstCompile(lambda: log(f"compiling kernels for {what} (first run only, about {about_s} s)..."))
    ev.register("numba:compile", first.listener)
    try:
        yield
    finally:
        ev.unregister("numba:compile", first.listener)


def warm_up(models=("sgns",), ray: bool = False, cooccur: bool = False, hs: bool = False,
            phrases: bool = False) -> None:
    """Import (compile, or load) every kernel the given models train with, for the threads engine
    (and the Ray replicas' batch kernels with ray; hs: with hierarchical softmax and subwords too), the corpus
    reader's, and with phrases the phrase counter's and joiner's (those a single reader uses: the
    merging and pruning kernels of several readers compile at their first use)."""
    names = ["tokens"] + ["glove"] * ("glove" in models) + ["cooccur"] * cooccur + ["glove", "word2vec_batch"] * ray
    names += ["phrases", "phrases_apply"] * phrases
    for name in names:  # a kernel module with typed signatures compiles (or loads) when imported
        importlib.import_module(f"{__package__}.models.{name}")
    updates = [u for m in models if m != "glove" for u in (("cbow",) if m == "cbow" else ("window", "pair"))]
    updates += [f"{u}-hs" for u in updates] if hs else []
    updates += [f"{m}-sub" for m in models if m != "glove"] if hs else []  # fastText's subword model too
    if hs and updates:  # and its n-gram hashing and word vectors, typed on first use: given their types here
        import numpy as np

        from .models.subwords import all_ngrams, bucket_weights, compose, renumber

        found = all_ngrams(np.zeros(1, np.uint8), np.ones(1, np.int64), 3, 6, 10, np.zeros(2, np.int64))
        bucket_weights(np.zeros(2, np.int64), found, np.ones(1), np.zeros(10), np.zeros(10, np.bool_))
        renumber(found, np.zeros(10, np.int32))
        compose(np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32), np.zeros(2, np.int64),
                np.zeros(0, np.int32), np.zeros((1, 1), np.float32))
    if updates:
        from .models.word2vec_loops import epoch_kernel

        for update in updates:
            epoch_kernel(update)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m w2v_async.warmup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", choices=sorted(MODELS), help="a model to compile (default: sgns)")
    p.add_argument("--hs", action="store_true", help="the models' hierarchical-softmax and subword kernels too")
    p.add_argument("--all", action="store_true",
                   help="every model, with --hs, co-occurrence counting, phrases and the Ray kernels")
    args = p.parse_args(argv)
    models = sorted(MODELS) if args.all else (args.model or ["sgns"])
    t0 = time.perf_counter()
    names = [MODELS[m] for m in models]
    what = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    about_s = 5 + 10 * len(names)  # the corpus reader, then each model (ABOUT_S)
    with compile_notice(what, lambda msg: print(msg, file=sys.stderr, flush=True), about_s):
        warm_up(models, ray=args.all, cooccur=args.all or "glove" in models, hs=args.all or args.hs, phrases=args.all)
    print(f"kernels ready for {', '.join(models)} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
