"""A command compiles only the kernels it runs (issue 17): each check runs in a fresh interpreter
and looks at which kernel modules were imported (a kernel module with typed signatures compiles,
or loads from numba's cache, when imported) and which lazily typed kernels got a signature."""

import json
import subprocess
import sys

import pytest

from conftest import planted_corpus

KERNEL_MODULES = ("tokens", "sampling", "hot_rows", "word2vec", "word2vec_loops", "word2vec_batch", "cooccur", "glove",
                  "locks", "word2vec_guarded", "glove_guarded", "sparsity", "huffman")

PROBE = """
import json, sys
from click.testing import CliRunner
from w2v_async.cli import cli
args = json.loads(sys.argv[1])
before = sorted(m.rsplit(".", 1)[1] for m in sys.modules if m.startswith("w2v_async.models."))
if args:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
loaded = sorted(m.rsplit(".", 1)[1] for m in sys.modules if m.startswith("w2v_async.models."))
epoch = {}
if "word2vec_loops" in loaded:
    from w2v_async.models import word2vec_loops
    epoch = {name: len(kernel.overloads) for name, (kernel, _) in word2vec_loops.EPOCH_KERNELS.items()}
print(json.dumps({"before": before, "loaded": loaded, "epoch": epoch}))
"""


def _probe(args):
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _kernels(names):
    return sorted(set(names) & set(KERNEL_MODULES))


def test_importing_the_command_line_compiles_nothing():
    assert _kernels(_probe([])["loaded"]) == []


@pytest.mark.parametrize("model, batching, epoch", [("sgns", "window", "window"), ("sgns", "pair", "pair"),
                                                    ("cbow", None, "cbow"), ("cbow", None, "cbow-hs"),
                                                    ("sgns", None, "sgns-sub")])
def test_training_word2vec_compiles_its_model_only(tmp_path, model, batching, epoch):
    corpus = planted_corpus(tmp_path / "c.txt", n_sentences=200)
    hs = epoch.endswith("-hs")
    args = ["train", str(corpus), "-o", str(tmp_path / "v.bin"), "--model", model, "--min-count", "1", "--epochs",
            "1", "--dim", "8", "-q", "--no-cache"] + (["--batching", batching] if batching else []) + ["--hs"] * hs \
        + ["--subwords"] * epoch.endswith("-sub")
    seen = _probe(args)
    assert _kernels(seen["loaded"]) == ["hot_rows"] + ["huffman"] * hs + ["sampling", "tokens", "word2vec",
                                                                          "word2vec_loops"]
    # the experiment's guarded skip-gram kernels (pair-global, pair-rows, pair-count) stay untyped too,
    # as do the other models' and the hierarchical-softmax ones
    assert len(seen["epoch"]) == 11 and seen["epoch"] == {name: int(name == epoch) for name in seen["epoch"]}


def test_counting_cooccurrences_and_training_glove_compile_no_word2vec(tmp_path):
    corpus = planted_corpus(tmp_path / "c.txt", n_sentences=200)
    seen = _probe(["cooccur", str(corpus), "-o", str(tmp_path / "c.npz"), "--min-count", "1", "-q", "--no-cache"])
    assert _kernels(seen["loaded"]) == ["cooccur", "tokens"]
    seen = _probe(["train", str(corpus), "-o", str(tmp_path / "g.txt"), "--model", "glove", "--min-count", "1",
                   "--epochs", "1", "--dim", "8", "-q", "--no-cache"])
    assert _kernels(seen["loaded"]) == ["cooccur", "glove", "tokens"]


def _cli(args, env, cwd):
    cmd = [sys.executable, "-c", "import sys; from w2v_async.cli import main; sys.exit(main())", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def test_a_read_only_install_compiles_into_the_user_cache_once_and_says_so_once(tmp_path):
    """A copy of the package (as a system or container install) with NUMBA_CACHE_DIR set: the first
    run says it compiles, writes the cache there and nothing into the package; `python -m
    w2v_async.warmup` had compiled CBOW ahead, so CBOW says nothing; the second skip-gram run
    neither."""
    import os
    import shutil

    import w2v_async

    site = tmp_path / "site"
    shutil.copytree(os.path.dirname(w2v_async.__file__), site / "w2v_async",
                    ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "numba-cache"
    env = dict(os.environ, PYTHONPATH=str(site), NUMBA_CACHE_DIR=str(cache))
    corpus = planted_corpus(tmp_path / "c.txt", n_sentences=200)
    warm = subprocess.run([sys.executable, "-m", "w2v_async.warmup", "--model", "cbow"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=600)
    assert warm.returncode == 0, warm.stderr
    assert warm.stderr.startswith("compiling kernels for CBOW (first run only, about ")
    train = ["train", str(corpus), "-o", str(tmp_path / "v.bin"), "--min-count", "1", "--epochs", "1", "--dim", "8",
             "--no-cache"]
    runs = [_cli(train + extra, env, tmp_path) for extra in (["--model", "cbow"], [], [])]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    notices = [[line for line in r.stderr.splitlines() if line.startswith("compiling kernels")] for r in runs]
    assert notices == [[], ["compiling kernels for skip-gram (first run only, about 15 s)..."], []]
    assert any(cache.rglob("*.nbi")) and not any(site.rglob("*.nbi"))


def test_warmup_all_readies_the_hs_and_phrase_kernels():
    """`python -m w2v_async.warmup --all` leaves no model's kernel to compile at its first run:
    the hierarchical-softmax and subword epoch kernels and the phrase counter's and joiner's included."""
    probe = ("import json; from w2v_async import warmup; warmup.main(['--all']); import sys; "
             "from w2v_async.models import word2vec_loops as w; "
             "from w2v_async.models import subwords as s; "
             "print(json.dumps({'epoch': {n: len(k.overloads) for n, (k, _) in w.EPOCH_KERNELS.items()}, "
             "'subwords': [len(k.overloads) for k in (s.all_ngrams, s.compose, s.bucket_weights, s.renumber)], "
             "'loaded': sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('w2v_async.models.'))}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"phrases", "phrases_apply"} <= set(seen["loaded"])
    ready = sorted(name for name, n in seen["epoch"].items() if n)
    assert seen["subwords"] == [1, 1, 1, 1]  # the n-gram hashing, its rows and the word vectors' kernels too
    assert ready == ["cbow", "cbow-hs", "cbow-sub", "pair", "pair-hs", "sgns-sub", "window", "window-hs"], seen["epoch"]
