"""The byte reader (data/scan.py, models/tokens.py) against the Python reader it replaces.

The reference is CorpusReader's line-by-line Python (decode, str.split) counted as token lists:
the byte reader must give the same vocabulary, counts, ties, encoded corpus and statistics, for
any text, any number of reading threads and any buffer size.
"""

import bz2
import functools
import gzip
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import zipf_corpus
from w2v_async.config import VocabConfig
from w2v_async.data import corpus as corpus_module
from w2v_async.data import scan as scan_module
from w2v_async.data.corpus import MAX_SENTENCE_TOKENS, CorpusReader, SentenceReader
from w2v_async.data.vocab import scan_corpus
from w2v_async.data.words import WordTable
from w2v_async.errors import InputError

# every kind of byte the reader treats specially: ASCII and Unicode whitespace (str.split's), upper
# case, multi-byte letters (some that lowercase to longer strings), and bytes that are not UTF-8
PIECES = ["a", "b", "c", "ab", "Ab", "B", " ", " ", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\u00a0", "\u0085", "\u2003", "\u3000", "\u2028", "\u200b", "\u00e9", "\u00c9", "\u00df", "\u0130",
          "\u6f22", "\U0001f600", "\ufeff"]
BAD_BYTES = [b"\xff", b"\xc3", b"\xe2\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"]
clean_line = st.lists(st.sampled_from(PIECES), max_size=25).map(lambda p: "".join(p).encode())


@st.composite
def line(draw):
    text = draw(clean_line)
    if draw(st.integers(0, 3)) == 0:  # a line in four has bytes that are not UTF-8
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(BAD_BYTES)) + text[at:]
    return text


texts = st.tuples(st.lists(line(), max_size=8), st.sampled_from([b"", b"\n"])).map(
    lambda t: b"\n".join(t[0]) + t[1])


def _reference(path, cfg):
    reader = CorpusReader(str(path), lowercase=cfg.lowercase)
    vocab, enc = scan_corpus(SentenceReader(list(reader)), cfg)
    return vocab, enc, reader.stats


def _assert_same(path, cfg, threads):
    vocab, enc, stats = _reference(path, cfg)
    reader = CorpusReader(str(path), lowercase=cfg.lowercase)
    vocab2, enc2 = scan_corpus(reader, cfg, threads=threads)
    assert vocab2.words == vocab.words
    assert vocab2.counts.tolist() == vocab.counts.tolist()
    assert enc2.ids.tolist() == enc.ids.tolist()
    assert enc2.sent_starts.tolist() == enc.sent_starts.tolist()
    got = reader.stats
    assert (got.n_lines, got.n_tokens, got.n_bad_utf8_lines, got.n_split_lines) == \
        (stats.n_lines, stats.n_tokens, stats.n_bad_utf8_lines, stats.n_split_lines)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, lowercase=st.booleans(), threads=st.integers(1, 3), chunk=st.sampled_from([64, 1 << 20]))
def test_any_text_reads_as_python_reads_it(tmp_path, monkeypatch, text, lowercase, threads, chunk):
    monkeypatch.setattr(scan_module, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(scan_module, "MIN_SPAN_BYTES", 16)  # cut even small files between threads
    line = max((len(x) for x in text.split(b"\n")), default=0)
    if chunk < line + 8:  # a line longer than a chunk is split at whitespace: compare tokens only
        chunk = 1 << 20
        monkeypatch.setattr(scan_module, "CHUNK_BYTES", chunk)
    path = tmp_path / "t.txt"
    path.write_bytes(text)
    if not text.split():
        return  # an empty corpus: both refuse it (test_vocab)
    try:
        _reference(path, VocabConfig(min_count=1, lowercase=lowercase))
    except InputError:
        with pytest.raises(InputError):
            scan_corpus(CorpusReader(str(path), lowercase=lowercase), VocabConfig(min_count=1, lowercase=lowercase),
                        threads=threads)
        return
    _assert_same(path, VocabConfig(min_count=1, lowercase=lowercase), threads)


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_a_corpus_larger_than_the_buffers_reads_the_same_with_any_threads(tmp_path, monkeypatch, threads):
    path = zipf_corpus(tmp_path / "z.txt", n_words=4000, n_tokens=120_000, length=9)
    monkeypatch.setattr(scan_module, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(scan_module, "MIN_SPAN_BYTES", 20_000)
    monkeypatch.setattr(scan_module, "WordTable", functools.partial(WordTable, words=4, pool=8))  # grows often
    assert len(scan_module.plan_spans([str(path)], threads)) == threads
    _assert_same(path, VocabConfig(min_count=3), threads)


def test_directories_compressed_files_and_stdin_read_the_same(tmp_path, monkeypatch):
    monkeypatch.setattr(scan_module, "CHUNK_BYTES", 1000)
    path = zipf_corpus(tmp_path / "z.txt", n_words=500, n_tokens=20_000, length=6)
    lines = path.read_bytes().splitlines(keepends=True)
    d = tmp_path / "d"
    d.mkdir()
    (d / "1.txt").write_bytes(b"".join(lines[:700]))
    with gzip.open(d / "2.gz", "wb") as f:
        f.write(b"".join(lines[700:1500]))
    with bz2.open(d / "3.bz2", "wb") as f:
        f.write(b"".join(lines[1500:]))
    cfg = VocabConfig(min_count=2)
    vocab, enc, _ = _reference(path, cfg)
    for threads in (1, 2, 4):
        vocab2, enc2 = scan_corpus(CorpusReader(str(d)), cfg, threads=threads)
        assert vocab2.words == vocab.words and vocab2.counts.tolist() == vocab.counts.tolist()
        assert enc2.ids.tolist() == enc.ids.tolist()
    script = ("import sys; from w2v_async.config import VocabConfig; from w2v_async.data.corpus import CorpusReader;"
              "from w2v_async.data.vocab import scan_corpus;"
              "v, e = scan_corpus(CorpusReader('-'), VocabConfig(min_count=2), threads=3);"
              "print(len(v), v.counts.sum(), e.n_words)")
    out = subprocess.run([sys.executable, "-c", script], input=path.read_bytes(), capture_output=True, check=True)
    assert out.stdout.split() == [str(len(vocab)).encode(), str(vocab.counts.sum()).encode(),
                                  str(enc.n_words).encode()]


def test_long_lines_are_split_into_sentences_and_cut_only_at_whitespace(tmp_path, monkeypatch):
    monkeypatch.setattr(scan_module, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(corpus_module, "MAX_LINE_BYTES", 50_000)
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefghij"), size=rng.integers(1, 12))) for _ in range(30_000)]
    text = " ".join(words[:2 * MAX_SENTENCE_TOKENS + 5]) + "\nshort line\n" + "\t".join(words[25_000:])
    path = tmp_path / "long.txt"
    path.write_text(text)
    reader = CorpusReader(str(path))
    vocab, enc = scan_corpus(reader, VocabConfig(min_count=1), threads=2)
    lengths = np.diff(enc.sent_starts).tolist()
    assert lengths == [MAX_SENTENCE_TOKENS, MAX_SENTENCE_TOKENS, 5, 2, 5000]
    assert [vocab.words[i] for i in enc.ids] == text.split()
    assert reader.stats.n_split_lines == 1 and reader.stats.n_lines == 3
    (tmp_path / "blob.txt").write_text("ok\n" + "x" * 60_000 + "\n")
    with pytest.raises(InputError, match="has a 'word' of over .* MiB with no space in it"):
        scan_corpus(CorpusReader(str(tmp_path / "blob.txt")), VocabConfig(min_count=1))


def test_pruning_bounds_the_table_while_reading_and_keeps_frequent_words(tmp_path):
    rng = np.random.default_rng(1)
    lines = [" ".join(["the", "of", "and"] * 5 + [f"r{x}" for x in rng.integers(0, 50_000, 20)]) for _ in range(3000)]
    path = tmp_path / "p.txt"
    path.write_text("\n".join(lines) + "\n")
    vocab, _ = scan_corpus(CorpusReader(str(path)), VocabConfig(min_count=1, max_vocab_size=500), threads=1)
    assert vocab.words[:3] == ["the", "of", "and"] and vocab.counts[0] == 15_000
    assert len(vocab) <= 500
    unpruned, _ = scan_corpus(CorpusReader(str(path)), VocabConfig(min_count=1), threads=1)
    assert len(unpruned) > 20_000


def test_a_file_that_is_not_utf8_is_refused_after_its_first_lines(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\u00e9 na\u00efve\n".encode("latin-1") * 2000)
    with pytest.raises(InputError, match="is not UTF-8"):
        scan_corpus(CorpusReader(str(path)), VocabConfig(min_count=1))
    short = tmp_path / "short.txt"
    short.write_bytes("caf\u00e9\n".encode("latin-1") * 3 + b"fine\n")
    with pytest.raises(InputError, match="is not UTF-8"):
        scan_corpus(CorpusReader(str(short)), VocabConfig(min_count=1))


def test_a_failing_worker_stops_the_others_at_once(tmp_path, monkeypatch):
    """One span of a directory is not text: the error comes out without the other workers reading
    their (large) spans to the end. The text worker's first chunk waits until the failure has
    set the workers' stop, so that it cannot finish first however the threads are scheduled."""
    monkeypatch.setattr(scan_module, "CHUNK_BYTES", 1 << 12)
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.bin").write_bytes(b"\0" * 1000)  # first in order: refused at its first chunk
    (d / "b.txt").write_text("the quick brown fox\n" * 400_000)  # 8 MB: 2,000 chunks
    calls, stopped = [], []
    real = scan_module._Worker._scan

    def held_scan(self, *args, **kwargs):
        calls.append(1)
        if not stopped:  # the timeout only guards against a hang: a working run sets stop at once
            stopped.append(self.stop is not None and self.stop.wait(timeout=120))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(scan_module._Worker, "_scan", held_scan)
    monkeypatch.setattr(scan_module, "MIN_SPAN_BYTES", 1000)
    with pytest.raises(InputError, match="is not text"):
        scan_corpus(CorpusReader(str(d)), VocabConfig(min_count=1), threads=2)
    # the other worker saw the stop before its first chunk, or held there until the failure set
    # it, and then read no more: not its 2,000 chunks
    assert len(calls) <= 1 and stopped == [True] * len(calls)
