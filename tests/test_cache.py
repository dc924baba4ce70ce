"""The encoded-corpus cache: reused when the files and settings match, rebuilt when stale or
damaged, never trusted otherwise."""

import os

import numpy as np
import pytest

from conftest import planted_corpus
from w2v_async import count_cooccurrences, train_word2vec
from w2v_async.data.cooccur import Cooccurrence

FAST = dict(min_count=1, dim=8, epochs=1, threads=1, seed=3, progress=False)


def _train(corpus, out, **extra):
    logs = []
    kv, summary = train_word2vec(str(corpus), str(out), log=logs.append, **{**FAST, **extra})
    return kv, summary, "\n".join(logs)


def _entries(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture
def corpus(tmp_path):
    return planted_corpus(tmp_path / "planted.txt")


def test_a_second_run_maps_the_cache_and_trains_the_same_vectors(corpus, tmp_path):
    first, s1, log1 = _train(corpus, tmp_path / "a.bin")
    assert "from the cache" not in log1 and len(_entries(tmp_path / ".w2v-cache")) == 1
    second, s2, log2 = _train(corpus, tmp_path / "b.bin")
    assert "from the cache" in log2
    assert np.array_equal(first.vectors, second.vectors)
    assert s2["corpus"] == s1["corpus"]
    fresh, _, log3 = _train(corpus, tmp_path / "c.bin", cache=False)
    assert "from the cache" not in log3 and np.array_equal(fresh.vectors, first.vectors)
    logs = []
    count_cooccurrences(str(corpus), str(tmp_path / "c.npz"), log=logs.append, min_count=1, window=3)
    assert any("from the cache" in line for line in logs)
    assert Cooccurrence.load(str(tmp_path / "c.npz")).vocab.words == first.index_to_key


def test_other_vocabulary_settings_get_their_own_entry(corpus, tmp_path):
    _train(corpus, tmp_path / "a.bin")
    _, summary, log = _train(corpus, tmp_path / "b.bin", min_count=2, lowercase=True)
    assert "from the cache" not in log
    assert len(_entries(tmp_path / ".w2v-cache")) == 2
    _, _, log = _train(corpus, tmp_path / "c.bin")
    assert "from the cache" in log


def test_a_changed_corpus_is_read_again_and_replaces_its_stale_entry(corpus, tmp_path):
    _train(corpus, tmp_path / "a.bin")
    old = _entries(tmp_path / ".w2v-cache")
    text = corpus.read_text()
    corpus.write_text(text.replace("g0w0", "zzzz", 1))  # same size, different content and mtime
    kv, _, log = _train(corpus, tmp_path / "b.bin")
    assert "from the cache" not in log and "zzzz" in kv.key_to_index
    new = _entries(tmp_path / ".w2v-cache")
    assert len(new) == 1 and new != old


def test_a_changed_file_with_the_same_size_and_mtime_is_caught_by_its_head_hash(corpus, tmp_path):
    _train(corpus, tmp_path / "a.bin")
    st = os.stat(corpus)
    corpus.write_text(corpus.read_text().replace("g0w0", "zzzz", 1))
    os.utime(corpus, ns=(st.st_atime_ns, st.st_mtime_ns))
    kv, _, log = _train(corpus, tmp_path / "b.bin")
    assert "from the cache" not in log and "zzzz" in kv.key_to_index


@pytest.mark.parametrize("damage", ["flip", "truncate", "manifest"])
def test_a_damaged_entry_is_detected_removed_and_rebuilt(corpus, tmp_path, damage):
    good, _, _ = _train(corpus, tmp_path / "a.bin")
    (entry,) = (tmp_path / ".w2v-cache").iterdir()
    ids = entry / "ids.i32"
    if damage == "flip":
        data = bytearray(ids.read_bytes())
        data[len(data) // 2] ^= 1
        ids.write_bytes(bytes(data))
    elif damage == "truncate":
        ids.write_bytes(ids.read_bytes()[:-4])
    else:
        (entry / "manifest.json").write_text("{not json")
    kv, _, log = _train(corpus, tmp_path / "b.bin")
    assert "is damaged" in log and "from the cache" not in log
    assert np.array_equal(kv.vectors, good.vectors)
    _, _, log = _train(corpus, tmp_path / "c.bin")  # stored again, whole
    assert "from the cache" in log


def test_no_cache_writes_nothing_and_a_failed_run_stores_nothing(corpus, tmp_path):
    _train(corpus, tmp_path / "a.bin", cache=False)
    assert not (tmp_path / ".w2v-cache").exists()
    with pytest.raises(Exception):
        _train(corpus, tmp_path / "b.bin", model="cbow", alpha=1e6)  # diverges
    assert not (tmp_path / ".w2v-cache").exists()
    _train(corpus, tmp_path / "c.bin", cache_dir=str(tmp_path / "elsewhere"))
    assert len(_entries(tmp_path / "elsewhere")) == 1 and not (tmp_path / ".w2v-cache").exists()


def test_a_pruned_vocabulary_is_reused_only_with_the_same_reading_split(corpus, tmp_path, monkeypatch):
    from w2v_async.data import scan

    monkeypatch.setattr(scan, "MIN_SPAN_BYTES", 1 << 10)  # the planted corpus is read in several spans
    monkeypatch.setattr(scan, "READER_MIN_WORDS", 15)  # 30 words: at most 2 readers count
    pruned = dict(max_vocab_size=30)  # 40 words: pruning happens, so the vocabulary depends on the spans
    _, s1, _ = _train(corpus, tmp_path / "a.bin", **pruned)
    _, s2, log2 = _train(corpus, tmp_path / "b.bin", **pruned)
    assert "from the cache" in log2 and s2["vocab_size"] == s1["vocab_size"]
    _, s3, log3 = _train(corpus, tmp_path / "c.bin", **{**pruned, "threads": 2})
    assert "pruned while 1 workers read the corpus; reading it again with --threads 2" in log3
    assert "from the cache" not in log3
    _, _, log4 = _train(corpus, tmp_path / "d.bin", **{**pruned, "threads": 2})
    assert "from the cache" in log4  # stored again, for the new split
    _, _, log4b = _train(corpus, tmp_path / "d3.bin", **{**pruned, "threads": 3})
    assert "from the cache" in log4b  # 3 threads, but 2 readers count 30 words: the same split
    _, _, log5 = _train(corpus, tmp_path / "e.bin", threads=2)
    _, _, log6 = _train(corpus, tmp_path / "f.bin", threads=1)
    assert "from the cache" in log6  # nothing pruned: any split gives the same vocabulary
