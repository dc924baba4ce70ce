"""GloVe's shuffle in bounded memory (data/shuffle.py): a uniformly random order of the same
entries, the same for the same seed, in mapped files when the entries do not fit."""

import errno
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from w2v_async.data.cooccur import Cooccurrence
from w2v_async.data.shuffle import BYTES_PER_ENTRY, shuffled_entries
from w2v_async.data.vocab import Vocab
from w2v_async.errors import InputError


def _cooc(nnz, n_words=50, seed=0):
    rng = np.random.default_rng(seed)
    rows = rng.integers(n_words, size=nnz).astype(np.int32)
    cols = rng.integers(n_words, size=nnz).astype(np.int32)
    values = np.arange(1, nnz + 1, dtype=np.float32)  # tells every entry apart
    return Cooccurrence(rows, cols, values, Vocab([f"w{i}" for i in range(n_words)], np.ones(n_words)), 5, True)


def _memory(entries):
    return entries * BYTES_PER_ENTRY / 2**30


@pytest.mark.parametrize("chunk", [10**6, 1000, 333])
def test_the_shuffle_is_a_permutation_of_the_entries_and_repeats_with_its_seed(tmp_path, chunk):
    cooc = _cooc(5000)
    rows, cols, values = shuffled_entries(cooc, np.random.default_rng(7), _memory(chunk), str(tmp_path))
    order = values.astype(np.int64) - 1  # which entry landed at each position
    assert np.array_equal(np.sort(order), np.arange(5000))
    assert np.array_equal(rows, cooc.rows[order]) and np.array_equal(cols, cooc.cols[order])
    assert not np.array_equal(order, np.arange(5000))
    assert isinstance(values, np.memmap) == (chunk < 5000)  # beyond a chunk, the output is a mapped file
    again = shuffled_entries(cooc, np.random.default_rng(7), _memory(chunk), str(tmp_path))[2]
    other = shuffled_entries(cooc, np.random.default_rng(8), _memory(chunk), str(tmp_path))[2]
    assert np.array_equal(again, values) and not np.array_equal(other, values)
    assert list(tmp_path.iterdir()) == []  # buckets and output are unnamed files


def test_the_external_shuffle_puts_an_entry_anywhere_with_equal_chance(tmp_path):
    """Where entries 0 and 59 land, over 3,000 seeds, in 6 position bins: uniform (chi-square)."""
    cooc = _cooc(60)
    hits = np.zeros((2, 6))
    for seed in range(3000):
        values = shuffled_entries(cooc, np.random.default_rng(seed), _memory(16), str(tmp_path))[2]
        for k, entry in enumerate((1.0, 60.0)):
            hits[k, int(np.flatnonzero(values == entry)[0]) // 10] += 1
    chi2 = (((hits - 500) ** 2) / 500).sum(axis=1)
    assert (chi2 < 25).all(), hits  # 5 degrees of freedom: p < 0.0002 to fail by chance


def test_bad_entries_are_refused_in_any_chunk(tmp_path):
    cooc = _cooc(3000)
    cooc.values[2500] = 0
    with pytest.raises(InputError, match="non-positive counts"):
        shuffled_entries(cooc, np.random.default_rng(0), _memory(1000), str(tmp_path))
    cooc = _cooc(3000)
    cooc.cols[2999] = 50
    with pytest.raises(InputError, match="outside its vocabulary"):
        shuffled_entries(cooc, np.random.default_rng(0), _memory(1000), str(tmp_path))


def test_glove_learns_from_a_saved_matrix_mapped_and_shuffled_on_disk(tmp_path):
    from conftest import group_margin, planted_corpus
    from w2v_async.config import GloveConfig, VocabConfig
    from w2v_async.data.cooccur import count_cooccurrences
    from w2v_async.data.corpus import CorpusReader
    from w2v_async.data.vocab import scan_corpus
    from w2v_async.engines.threads import train_glove

    vocab, enc = scan_corpus(CorpusReader(str(planted_corpus(tmp_path / "p.txt", mix=0.1))),
                             VocabConfig(min_count=1))
    count_cooccurrences(enc, vocab, window=5, threads=2).save(str(tmp_path / "c.npz"))
    cooc = Cooccurrence.load(str(tmp_path / "c.npz"))
    assert isinstance(cooc.rows, np.memmap) and isinstance(cooc.values, np.memmap)
    cfg = GloveConfig(dim=16, epochs=25, x_max=10.0, threads=2, memory_gb=_memory(cooc.nnz // 5))
    spill = tmp_path / "spill"
    spill.mkdir()
    res = train_glove(cooc, cfg, progress=False, spill_dir=str(spill))
    assert res.epoch_cost[-1] < 0.5 * res.epoch_cost[0]
    assert group_margin(cooc.vocab.words, res.vectors()) > 0.3
    assert list(spill.iterdir()) == []


_BOUNDED = """
import os, resource, sys, types
import numpy as np
from w2v_async.data.shuffle import BYTES_PER_ENTRY, OPEN_FILES, shuffled_entries
from w2v_async.errors import InputError

nnz, n_words = 3000, 50
rng = np.random.default_rng(0)
cooc = types.SimpleNamespace(nnz=nnz, vocab=range(n_words), rows=rng.integers(n_words, size=nnz).astype(np.int32),
                             cols=rng.integers(n_words, size=nnz).astype(np.int32),
                             values=np.arange(1, nnz + 1, dtype=np.float32))
memory = 5 * BYTES_PER_ENTRY / 2**30  # chunks of 5 entries: 1,200 buckets
shuffled_entries(cooc, np.random.default_rng(1), 1000 * BYTES_PER_ENTRY / 2**30, sys.argv[1])  # imports done


def allow(n):
    # descriptors are numbered from the lowest free one, below the limit: exactly n of them are free
    used = {int(fd) for fd in os.listdir("/proc/self/fd")}
    limit, free = 0, 0
    while free < n:
        free += limit not in used
        limit += 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


allow(OPEN_FILES)
rows, cols, values = shuffled_entries(cooc, np.random.default_rng(2), memory, sys.argv[1])
order = values.astype(np.int64) - 1
assert np.array_equal(np.sort(order), np.arange(nnz)) and np.array_equal(rows, cooc.rows[order])
assert np.array_equal(cols, cooc.cols[order])
del rows, cols, values
allow(0)
try:
    shuffled_entries(cooc, np.random.default_rng(2), memory, sys.argv[1])
except InputError as e:
    print(e)
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_the_external_shuffle_opens_a_few_files_however_many_buckets(tmp_path):
    """1,200 buckets (3 files each before), under a limit of OPEN_FILES more descriptors: a
    permutation still; with none free, one line naming the fix, not a traceback."""
    done = subprocess.run([sys.executable, "-c", _BOUNDED, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "too many open files" in done.stdout and "ulimit -n" in done.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["creating", "reserving"])
def test_a_full_disk_while_shuffling_is_one_line_naming_the_fix(tmp_path, monkeypatch, where):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(*((tempfile, "TemporaryFile") if where == "creating" else (os, "posix_fallocate")), full)
    with pytest.raises(InputError, match=r"is full: GloVe's shuffle needs .* GB there .*--memory") as e:
        shuffled_entries(_cooc(3000), np.random.default_rng(0), _memory(100), str(tmp_path))
    assert "\n" not in str(e.value) and str(tmp_path) in str(e.value)
    assert list(tmp_path.iterdir()) == []
