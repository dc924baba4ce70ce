"""Corpus streaming: compression, directories, long lines, bad UTF-8, shards."""

import bz2
import gzip

import numpy as np
import pytest

from w2v_async.data.corpus import MAX_SENTENCE_TOKENS, CorpusReader
from w2v_async.data.encoded import EncodedCorpus
from w2v_async.errors import ConfigError, InputError

TEXT = "the cat sat\non the mat\n"
SENTENCES = [["the", "cat", "sat"], ["on", "the", "mat"]]


def test_plain_gz_bz2_and_directory_read_the_same(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "a.txt").write_text(TEXT)
    with gzip.open(tmp_path / "a.txt.gz", "wt") as f:
        f.write(TEXT)
    with bz2.open(tmp_path / "a.txt.bz2", "wt") as f:
        f.write(TEXT)
    (tmp_path / "d" / "1.txt").write_text("the cat sat\n")
    with gzip.open(tmp_path / "d" / "2.gz", "wt") as f:
        f.write("on the mat\n")
    (tmp_path / "d" / ".hidden").write_text("ignored words\n")
    for name in ("a.txt", "a.txt.gz", "a.txt.bz2", "d"):
        assert list(CorpusReader(str(tmp_path / name))) == SENTENCES, name


def test_long_line_is_split_not_cut(tmp_path):
    n = 2 * MAX_SENTENCE_TOKENS + 123
    (tmp_path / "long.txt").write_text(" ".join(f"w{i}" for i in range(n)) + "\n")
    reader = CorpusReader(str(tmp_path / "long.txt"))
    chunks = list(reader)
    assert [len(c) for c in chunks] == [MAX_SENTENCE_TOKENS, MAX_SENTENCE_TOKENS, 123]
    assert sum(chunks, [])[-1] == f"w{n - 1}"
    assert reader.stats.n_split_lines == 1


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"good line\nbad \xff\xfe byte\nfine\n")
    reader = CorpusReader(str(tmp_path / "bad.txt"))
    assert list(reader) == [["good", "line"], ["bad", "\ufffd\ufffd", "byte"], ["fine"]]
    assert reader.stats.n_bad_utf8_lines == 1
    assert "1 line(s) had invalid UTF-8" in reader.warnings()[0]


def test_lowercase_option(tmp_path):
    (tmp_path / "c.txt").write_text("The CAT\n")
    assert list(CorpusReader(str(tmp_path / "c.txt"), lowercase=True)) == [["the", "cat"]]
    assert list(CorpusReader(str(tmp_path / "c.txt"))) == [["The", "CAT"]]


def test_missing_and_empty_directory_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        CorpusReader(str(tmp_path / "nope.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="has no text files"):
        CorpusReader(str(tmp_path / "empty"))


@pytest.mark.parametrize("n_shards", [1, 2, 3, 7])
def test_shards_deal_every_sentence_once_and_balance_words(n_shards):
    rng = np.random.default_rng(n_shards)
    lengths = rng.integers(1, 500, size=2000)
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    enc = EncodedCorpus(np.zeros(starts[-1], np.int32), starts)
    shards = enc.shards(n_shards, block_words=1000)
    assert len(shards) == n_shards
    assert all((np.diff(s) > 0).all() for s in shards)  # corpus order within a thread
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(len(lengths)))
    sizes = [lengths[s].sum() for s in shards]
    assert max(sizes) - min(sizes) <= 0.1 * lengths.sum() / n_shards + 1500
    if n_shards > 1:  # threads interleave: each one's sentences span the whole corpus
        assert all(s[0] < len(lengths) * 0.1 and s[-1] > len(lengths) * 0.9 for s in shards)


def test_a_line_longer_than_the_read_limit_comes_in_pieces_cut_at_whitespace(tmp_path, monkeypatch):
    from w2v_async.data import corpus

    monkeypatch.setattr(corpus, "MAX_LINE_BYTES", 4096)
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefghij"), size=rng.integers(1, 30))) for _ in range(30_000)]
    text = " ".join(words[:20_000]) + "\nshort line\n" + "\t".join(words[20_000:])  # no final newline
    path = tmp_path / "long.txt"
    path.write_text(text)
    tokens = [t for sent in CorpusReader(str(path)) for t in sent]
    assert tokens == text.split()
    (tmp_path / "blob.txt").write_text("ok\n" + "x" * 10_000 + "\n")
    with pytest.raises(InputError, match="has a 'word' of over .* MiB with no space in it"):
        list(CorpusReader(str(tmp_path / "blob.txt")))


def test_an_encoded_corpus_built_on_disk_equals_the_one_in_memory_and_leaves_no_file(tmp_path, monkeypatch):
    """In pieces much smaller than the corpus (as a corpus larger than the buffers is built); the
    ids are a file mapping that kernels can read, and the files are unlinked at once."""
    import numpy as np

    from conftest import zipf_corpus
    from w2v_async.config import VocabConfig
    from w2v_async.data import encoded as encoded_module
    from w2v_async.data import scan as scan_module
    from w2v_async.data.corpus import CorpusReader
    from w2v_async.data.vocab import scan_corpus

    path = zipf_corpus(tmp_path / "z.txt", n_words=3000, n_tokens=50_000, length=7)
    cfg = VocabConfig(min_count=5)
    vocab, in_memory = scan_corpus(CorpusReader(str(path)), cfg)
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(encoded_module, "BUILD_TOKENS", 1000)
    monkeypatch.setattr(scan_module, "CHUNK_BYTES", 3000)
    monkeypatch.setattr(scan_module, "MIN_SPAN_BYTES", 10_000)
    vocab2, on_disk = scan_corpus(CorpusReader(str(path)), cfg, directory=str(spill), threads=3)
    assert vocab2.words == vocab.words and np.array_equal(vocab2.counts, vocab.counts)
    assert isinstance(on_disk.ids, np.memmap) and on_disk.ids.flags.writeable
    assert np.array_equal(on_disk.ids, in_memory.ids) and np.array_equal(on_disk.sent_starts, in_memory.sent_starts)
    assert in_memory.n_words < 49_000  # tokens were dropped (count < 5), across piece boundaries
    assert list(spill.iterdir()) == []


def test_no_space_for_the_encoded_corpus_is_one_clear_error(tmp_path, monkeypatch):
    import pytest

    from conftest import planted_corpus
    from w2v_async.config import VocabConfig
    from w2v_async.data.corpus import CorpusReader
    from w2v_async.data.vocab import scan_corpus
    from w2v_async.errors import InputError

    from w2v_async.data import encoded as encoded_module

    def full(f, array):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(encoded_module, "_append", full)
    with pytest.raises(InputError, match="cannot write the encoded corpus .*No space left on device"):
        scan_corpus(CorpusReader(str(planted_corpus(tmp_path / "p.txt"))), VocabConfig(min_count=1),
                    directory=str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["p.txt"]


def test_no_space_for_the_encoded_corpus_of_several_readers_is_one_clear_error(tmp_path, monkeypatch):
    """With several reading threads the output is reserved before it is mapped and filled: a full
    disk must be this error, not a SIGBUS while writing a mapping."""
    import pytest

    from conftest import planted_corpus
    from w2v_async.config import VocabConfig
    from w2v_async.data import encoded as encoded_module
    from w2v_async.data import scan as scan_module
    from w2v_async.data.corpus import CorpusReader
    from w2v_async.data.vocab import scan_corpus
    from w2v_async.errors import InputError

    def full(fd, offset, length):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(encoded_module.os, "posix_fallocate", full)
    monkeypatch.setattr(scan_module, "MIN_SPAN_BYTES", 10_000)
    with pytest.raises(InputError, match="cannot write the encoded corpus .*No space left on device"):
        scan_corpus(CorpusReader(str(planted_corpus(tmp_path / "p.txt"))), VocabConfig(min_count=1),
                    directory=str(tmp_path), threads=3)
    assert [p.name for p in tmp_path.iterdir()] == ["p.txt"]
