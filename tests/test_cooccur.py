"""Co-occurrence counts against a brute-force count, with and without spilling; the cooc file."""

import collections
import errno
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from w2v_async.config import VocabConfig
from w2v_async.data import runs
from w2v_async.data.cooccur import Cooccurrence, count_cooccurrences
from w2v_async.data.corpus import CorpusReader
from w2v_async.errors import ConfigError, InputError
from w2v_async.io import unpack_words
from w2v_async.data.vocab import scan_corpus

runs_write = runs.write_array


def brute_force(sentences, window, symmetric):
    x = collections.defaultdict(float)
    for sent in sentences:
        for p, w in enumerate(sent):
            for d in range(1, min(window, p) + 1):
                x[(w, sent[p - d])] += 1.0 / d
                if symmetric:
                    x[(sent[p - d], w)] += 1.0 / d
    return x


def _encode(tmp_path, lines, min_count, name="c.txt"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    vocab, enc = scan_corpus(CorpusReader(str(path)), VocabConfig(min_count=min_count))
    sentences = [enc.ids[a:b].tolist() for a, b in zip(enc.sent_starts[:-1], enc.sent_starts[1:])]
    return vocab, enc, sentences


def _corpus(tmp_path, n_sentences=300, seed=0):
    rng = np.random.default_rng(seed)
    lines = [" ".join(f"w{int(z)}" for z in rng.zipf(1.5, size=rng.integers(1, 30)) % 60)
             for _ in range(n_sentences)]
    return _encode(tmp_path, lines, min_count=2)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("memory_gb, threads", [(1.0, 1), (1e-5, 1), (2e-5, 2)])  # tiny memory forces spills
def test_counts_match_brute_force(tmp_path, symmetric, memory_gb, threads):
    vocab, enc, sentences = _corpus(tmp_path)
    window = 4
    cooc = count_cooccurrences(enc, vocab, window, symmetric, memory_gb, threads, tmp_dir=str(tmp_path))
    expected = brute_force(sentences, window, symmetric)
    got = {(r, c): v for r, c, v in zip(cooc.rows.tolist(), cooc.cols.tolist(), cooc.values.tolist())}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-5)
    keys = cooc.rows.astype(np.int64) * len(vocab) + cooc.cols
    assert (np.diff(keys) > 0).all()  # sorted by (row, col), no duplicates
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]  # temporary runs removed
    if memory_gb < 1e-3:
        assert cooc.n_runs > 20  # the tiny buffer really spilled many runs
        # runs are compacted while counting once they reach 4 x --memory on disk
        assert (cooc.compactions > 0) == (cooc.run_entries >= 4 * memory_gb * 2**30 // 12)
    else:
        assert cooc.n_runs == threads


@pytest.mark.parametrize("memory_gb", [1.0, 2e-5])
def test_sentences_handed_over_in_chunks(tmp_path, monkeypatch, memory_gb):
    from w2v_async.data import cooccur as cooccur_module

    monkeypatch.setattr(cooccur_module, "SENTENCE_CHUNK", 7)  # 300 sentences: 43 chunks per thread pair
    vocab, enc, sentences = _corpus(tmp_path)
    cooc = count_cooccurrences(enc, vocab, 4, True, memory_gb, 2, tmp_dir=str(tmp_path))
    expected = brute_force(sentences, 4, True)
    got = {(r, c): v for r, c, v in zip(cooc.rows.tolist(), cooc.cols.tolist(), cooc.values.tolist())}
    assert got.keys() == expected.keys()
    assert all(got[k] == pytest.approx(v, rel=1e-5) for k, v in expected.items())
    if memory_gb == 1.0:
        assert cooc.n_runs == 2  # a partly filled buffer carries over to the next chunk: one run per thread


def _repetitive_corpus(tmp_path, n_sentences=4000, n_types=20, seed=0):
    """Many short sentences over a few words: spilled runs repeat the same few hundred pairs."""
    rng = np.random.default_rng(seed)
    lines = [" ".join(f"w{int(z)}" for z in rng.integers(n_types, size=rng.integers(2, 20)))
             for _ in range(n_sentences)]
    return _encode(tmp_path, lines, min_count=1, name="r.txt")


def _watch_disk(monkeypatch):
    """Record the bytes of temporary files after every file the runs write."""
    seen = []

    def write(array, path, append=False):
        runs_write(array, path, append)
        total = 0
        for entry in os.scandir(os.path.dirname(path)):
            try:
                total += entry.stat().st_size
            except FileNotFoundError:  # removed meanwhile by the merge
                pass
        seen.append(total)

    monkeypatch.setattr(runs, "write_array", write)
    return seen


def test_spilled_runs_take_about_the_distinct_pairs_on_disk(tmp_path, monkeypatch):
    vocab, enc, sentences = _repetitive_corpus(tmp_path)
    seen = _watch_disk(monkeypatch)
    memory_gb = 1e-5
    cooc = count_cooccurrences(enc, vocab, 4, True, memory_gb, 1, tmp_dir=str(tmp_path))
    assert cooc.nnz == len(brute_force(sentences, 4, True)) <= 400
    assert cooc.n_runs > 100 and cooc.compactions > 5
    # the compacted run and the one being written, runs being compacted and runs since (each at
    # most the first compaction point, 4 x memory, or the compacted run, plus a run per thread)
    bound = runs.ENTRY_BYTES * 4 * cooc.nnz + 2 * 4 * memory_gb * 2**30 + 2 * 1024
    assert max(seen) <= bound < runs.ENTRY_BYTES * cooc.run_entries / 10  # keeping every run is 10x more


def test_a_short_disk_compacts_sooner(tmp_path, monkeypatch):
    vocab, enc, sentences = _repetitive_corpus(tmp_path)
    plenty = count_cooccurrences(enc, vocab, 4, True, 1e-4, 1, tmp_dir=str(tmp_path))
    monkeypatch.setattr(runs.RunStore, "_free_bytes", lambda self: 0)
    short = count_cooccurrences(enc, vocab, 4, True, 1e-4, 1, tmp_dir=str(tmp_path))
    assert short.compactions > 2 * plenty.compactions
    np.testing.assert_array_equal(short.rows, plenty.rows)
    np.testing.assert_array_equal(short.cols, plenty.cols)
    np.testing.assert_allclose(short.values, plenty.values, rtol=1e-6)


@pytest.mark.parametrize("fail_at", [3, 200, 10**6])  # a spilled run, a compaction, the output's columns
def test_a_full_disk_is_one_error_and_keeps_the_old_output(tmp_path, monkeypatch, fail_at):
    vocab, enc, _ = _repetitive_corpus(tmp_path, n_sentences=1000)
    out = tmp_path / "out" / "cooc.npz"
    out.parent.mkdir()
    out.write_bytes(b"a good file from an earlier run")
    calls = []

    def write(array, path, append=False):
        calls.append(path)
        if len(calls) >= fail_at if fail_at < 10**6 else path.endswith(".rows"):
            raise OSError(errno.ENOSPC, "No space left on device")
        runs_write(array, path, append)

    monkeypatch.setattr(runs, "write_array", write)
    with pytest.raises(InputError, match="the disk under .* is full while spilling co-occurrence runs; free space"):
        count_cooccurrences(enc, vocab, 4, True, 1e-5, 2, tmp_dir=str(tmp_path / "out"), output=str(out))
    assert out.read_bytes() == b"a good file from an earlier run"
    assert sorted(p.name for p in out.parent.iterdir()) == ["cooc.npz"]  # no runs, no half-written output


def test_output_written_from_the_merge_loads_with_checksums(tmp_path):
    vocab, enc, sentences = _corpus(tmp_path)
    out = tmp_path / "cooc.npz"
    cooc = count_cooccurrences(enc, vocab, 4, True, 2e-5, 2, tmp_dir=str(tmp_path), output=str(out))
    assert isinstance(cooc.rows, np.memmap)  # the result is mapped from the file, not held in memory
    with np.load(out) as z:  # reads every member through zipfile, which checks its CRC-32
        assert z["rows"].dtype == np.int32 and z["values"].dtype == np.float32
        got = {(r, c): v for r, c, v in zip(z["rows"].tolist(), z["cols"].tolist(), z["values"].tolist())}
        assert unpack_words(z) == vocab.words
    expected = brute_force(sentences, 4, True)
    assert got.keys() == expected.keys()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt", "cooc.npz"]


def test_file_round_trip(tmp_path):
    vocab, enc, _ = _corpus(tmp_path)
    cooc = count_cooccurrences(enc, vocab, 5, True, 1.0, 1)
    path = str(tmp_path / "cooc.npz")
    cooc.save(path)
    back = Cooccurrence.load(path)
    assert back.vocab.words == vocab.words and back.window == 5 and back.symmetric
    for name in ("rows", "cols", "values"):
        np.testing.assert_array_equal(getattr(back, name), getattr(cooc, name))


def test_errors(tmp_path):
    vocab, enc, _ = _corpus(tmp_path)
    with pytest.raises(ConfigError, match="cannot hold one sentence"):
        count_cooccurrences(enc, vocab, 10, True, 1e-9, 1)
    with pytest.raises(ConfigError, match="--window must be a positive number"):
        count_cooccurrences(enc, vocab, 0)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="is not a w2v-async co-occurrence file"):
        Cooccurrence.load(str(tmp_path / "bad.npz"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2**40), max_size=300), st.integers(0, 3))
def test_radix_sort_reduce_matches_numpy(keys, extra_bits):
    from w2v_async.models import cooccur as cooc_kernels

    max_key = max(keys, default=0) << extra_bits  # any upper bound works
    k = np.asarray([x << extra_bits for x in keys], np.int64)
    v = np.arange(k.shape[0], dtype=np.float32)
    expected_keys, inverse = np.unique(k, return_inverse=True)
    expected_sums = np.bincount(inverse.ravel(), weights=v, minlength=expected_keys.shape[0])
    tmp_k, tmp_v = np.empty_like(k), np.empty_like(v)
    m, in_tmp = cooc_kernels.sort_reduce(k, v, tmp_k, tmp_v, max_key)
    got_k, got_v = (tmp_k, tmp_v) if in_tmp else (k, v)
    np.testing.assert_array_equal(got_k[:m], expected_keys)
    np.testing.assert_allclose(got_v[:m], expected_sums, rtol=1e-6)
