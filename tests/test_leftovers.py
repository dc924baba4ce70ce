"""What kill -9 leaves behind goes at a later run, and a live run's files are never touched: the
co-occurrence runs' folder, half-written cache entries, outputs' temporary files (their names carry
the writer's pid@host: io.remove_dead_leftovers). And a corpus that cannot fit where it is encoded
(without an output: the system's temporary directory, often memory) is refused before it is read.

A killed writer is a child process stopped at the stage in question (it prints "ready" there and
waits on stdin), then sent SIGKILL: no cleanup of its own runs."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from w2v_async.config import VocabConfig
from w2v_async.data.cache import CorpusCache, corpus_key
from w2v_async.data.corpus import CorpusStats
from w2v_async.data.encoded import EncodedCorpus
from w2v_async.data.vocab import Vocab
from w2v_async.errors import InputError
from w2v_async.io import atomic_write

STOP = """
import sys

def stop(*args, **kwargs):
    print("ready", flush=True)
    sys.stdin.read()  # until the test kills this process (or closes the pipe)

"""


@pytest.fixture
def children():
    """start(code, *args): a child process stopped at its stop(); kill9(child) kills it (-9);
    started: the children so far."""
    started = []

    class Children:
        @staticmethod
        def start(code, *args):
            child = subprocess.Popen([sys.executable, "-c", STOP + code, *map(str, args)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            started.append(child)
            if child.stdout.readline() != "ready\n":
                child.stdin.close()
                pytest.fail(child.stderr.read())
            return child

        @staticmethod
        def kill9(child):
            os.kill(child.pid, signal.SIGKILL)
            assert child.wait() == -signal.SIGKILL  # reaped: its pid is free

    Children.started = started
    yield Children
    for child in started:
        if child.poll() is None:
            child.kill()
            child.wait()
        for pipe in (child.stdin, child.stdout, child.stderr):
            pipe.close()


def _left(directory, prefix):
    return {p.name for p in directory.iterdir() if p.name.startswith(prefix)} if directory.is_dir() else set()


def _live_and_killed(children, directory, prefix, code, *args):
    """The names under prefix in directory that a live child and a killed one made (the live one
    first: a writer that starts removes what dead ones left)."""
    before = _left(directory, prefix)
    children.start(code, *args)
    live = _left(directory, prefix) - before
    children.kill9(children.start(code, *args))
    killed = _left(directory, prefix) - before - live
    assert len(live) == 1 and len(killed) == 1
    return live, killed


ATOMIC = """
from w2v_async.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "w") as f:
        f.write("half")
    stop()
"""


def test_a_killed_writers_temporary_file_goes_at_the_next_write_of_the_same_output(tmp_path, children):
    out = tmp_path / "v.txt"
    live, killed = _live_and_killed(children, tmp_path, ".v.txt.", ATOMIC, out)
    with atomic_write(str(out)) as f:
        f.write("whole")
    assert out.read_text() == "whole"
    assert {p.name for p in tmp_path.iterdir()} == {"v.txt", *live}  # the killed writer's is gone


CACHE = """
import numpy as np
from w2v_async.config import VocabConfig
from w2v_async.data import cache
from w2v_async.data.corpus import CorpusStats
from w2v_async.data.encoded import EncodedCorpus
from w2v_async.data.vocab import Vocab

cache.CorpusCache._remove_entries_of = stop  # the entry is written in its hidden folder, not yet renamed
key = cache.corpus_key([sys.argv[1]], VocabConfig(min_count=1), None)
cache.CorpusCache(sys.argv[2]).store(key, Vocab(["a", "b"], [2, 1]),
                                     EncodedCorpus(np.array([0, 1, 0], np.int32), np.array([0, 3])), CorpusStats())
"""


def test_a_killed_runs_half_written_cache_entry_goes_at_the_next_look_in_the_cache(tmp_path, children):
    corpus, directory = tmp_path / "c.txt", tmp_path / "cache"
    corpus.write_text("a b a\n")
    live, killed = _live_and_killed(children, directory, ".tmp-", CACHE, corpus, directory)
    assert (directory / next(iter(killed)) / "ids.i32").is_file()
    key = corpus_key([str(corpus)], VocabConfig(min_count=1), None)
    cache = CorpusCache(str(directory))
    assert cache.load(key) is None
    assert _left(directory, ".tmp-") == live
    children.kill9(children.started[0])
    cache.store(key, Vocab(["a", "b"], [2, 1]), EncodedCorpus(np.array([0, 1, 0], np.int32), np.array([0, 3])),
                CorpusStats())
    assert [p.name for p in directory.iterdir() if p.name.startswith(".")] == []
    assert cache.load(key) is not None


COOCCUR = """
import numpy as np
from w2v_async.data import runs
from w2v_async.data.cooccur import count_cooccurrences
from w2v_async.data.encoded import EncodedCorpus
from w2v_async.data.vocab import Vocab

runs.RunStore.finish = stop  # every run spilled, none merged yet
ids = np.random.default_rng(0).integers(200, size=20000).astype(np.int32)
count_cooccurrences(EncodedCorpus(ids, np.arange(0, 20001, 20)), Vocab([f"w{i}" for i in range(200)], np.ones(200)),
                    window=5, memory_gb=2**-10, tmp_dir=sys.argv[1])
"""


def test_a_killed_counts_spilled_runs_go_at_the_next_count_in_the_same_directory(tmp_path, children):
    from w2v_async.data.cooccur import count_cooccurrences

    live, killed = _live_and_killed(children, tmp_path, ".w2v-cooccur-", COOCCUR, tmp_path)
    assert list((tmp_path / next(iter(killed))).iterdir())  # runs on disk
    ids = np.random.default_rng(1).integers(50, size=2000).astype(np.int32)
    cooc = count_cooccurrences(EncodedCorpus(ids, np.arange(0, 2001, 20)), Vocab([f"w{i}" for i in range(50)],
                               np.ones(50)), window=5, tmp_dir=str(tmp_path))
    assert cooc.nnz > 0
    assert _left(tmp_path, ".w2v-cooccur-") == live  # its count is alive
    assert list((tmp_path / next(iter(live))).iterdir())


def _short_of_space(monkeypatch, directory, free=1000):
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=free)
                        if os.path.abspath(path) == os.path.abspath(directory) else real(path))


def test_a_corpus_that_cannot_fit_in_the_temporary_directory_is_refused_before_reading(tmp_path, monkeypatch):
    """The Python API without an output builds the encoded corpus in the system's temporary
    directory: 6 kB of text does not fit in 1 kB there."""
    import w2v_async

    corpus, tmp = tmp_path / "c.txt", tmp_path / "tmp"
    corpus.write_text("a b c\n" * 1000)
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    _short_of_space(monkeypatch, tmp)
    with pytest.raises(InputError, match="set TMPDIR to a larger disk, or give an output path") as e:
        w2v_async.train_word2vec(str(corpus), min_count=1, dim=8, epochs=1, threads=1, progress=False)
    assert "\n" not in str(e.value) and str(tmp) in str(e.value)
    out = tmp_path / "out"
    out.mkdir()
    _short_of_space(monkeypatch, out)  # with an output, the corpus is built beside it
    with pytest.raises(InputError, match="free some space there or write the output on a larger disk"):
        w2v_async.train_word2vec(str(corpus), str(out / "v.txt"), min_count=1, dim=8, epochs=1, threads=1,
                                 progress=False)
