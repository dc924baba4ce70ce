"""The Wikipedia recipe (corpora/wiki.py, make wiki) on the shortened dump that ships with gensim."""

import os
import re
import shutil
import subprocess
import sys

import pytest
from gensim.test.utils import datapath

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DUMP = datapath("enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
sys.path.insert(0, os.path.join(ROOT, "corpora"))
import wiki  # noqa: E402  (corpora/ is not a package)


def test_parallel_cleaning_writes_the_same_text_as_one_process(tmp_path):
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    n_one = wiki.convert(DUMP, str(one), processes=1)
    n_two = wiki.convert(DUMP, str(two), processes=3)
    assert n_one == n_two > 100_000
    assert one.read_bytes() == two.read_bytes()
    lines = one.read_text().splitlines()
    assert all(re.fullmatch(r"[a-z]+( [a-z]+){2,}", line) for line in lines)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".wiki.")]  # no temporary file left


def test_a_missing_dump_is_one_error_line(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "corpora", "wiki.py"), str(tmp_path / "o.txt"),
                             "--dump", str(tmp_path / "nope.xml.bz2")], capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.startswith("Error: dump") and not (tmp_path / "o.txt").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_wiki_cleans_trains_and_evaluates(tmp_path):
    venv = os.path.join(ROOT, ".venv")
    if not os.path.exists(os.path.join(venv, "bin", "w2v-async")):
        pytest.skip("make wiki uses the project's .venv (make test creates it)")
    result = subprocess.run(["make", "-s", "wiki", f"WIKI={DUMP}", f"DATA={tmp_path}", "THREADS=2",
                             "TRAIN_FLAGS=--dim 20 --epochs 1"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "wiki.txt").stat().st_size > 1_000_000 and (tmp_path / "wiki.sgns.bin").exists()
    assert "questions-words" in result.stdout
