"""Vector files: gensim reads what we write to the same numbers; writes are atomic."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from w2v_async.errors import InputError
from w2v_async.io import atomic_write, load_vectors, save_vectors

word = st.text(alphabet=st.characters(blacklist_categories=("Z", "C"), blacklist_characters="\ufffd"),
               min_size=1, max_size=6)


@settings(max_examples=30, deadline=None)
@given(st.lists(word, min_size=1, max_size=12, unique=True), st.sampled_from(["bin", "txt"]), st.data())
def test_round_trip_through_gensim_is_exact(tmp_path_factory, words, fmt, data):
    vectors = data.draw(arrays(np.float32, (len(words), 3), elements=st.floats(-1e3, 1e3, width=32)))
    path = str(tmp_path_factory.mktemp("v") / f"vectors.{fmt}")
    assert save_vectors(path, words, vectors) == fmt
    kv = load_vectors(path)
    assert list(kv.index_to_key) == words
    np.testing.assert_array_equal(kv.vectors, vectors)


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("good\n")
    with pytest.raises(RuntimeError):
        with atomic_write(str(path)) as f:
            f.write("half a fi")
            raise RuntimeError("disk full")
    assert path.read_text() == "good\n"
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.txt"]


@pytest.mark.parametrize("content", [b"", b"hello world\n", b"3 x\n", b"2 3\na 1 2 3\nb 1 2\n"])
def test_non_word2vec_files_are_rejected_clearly(tmp_path, content):
    path = tmp_path / "v.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match="word2vec"):
        load_vectors(str(path))


def test_truncated_binary_is_rejected(tmp_path):
    path = str(tmp_path / "v.bin")
    save_vectors(path, ["a", "b", "c"], np.ones((3, 8), np.float32))
    with open(path, "rb+") as f:
        f.truncate(40)
    with pytest.raises(InputError, match="truncated"):
        load_vectors(path)


@pytest.mark.parametrize("fmt, name", [("bin", "v.bin"), ("txt", "v.txt"), ("glove", "v.txt")])
def test_vectors_written_in_pieces_are_the_same_file(tmp_path, monkeypatch, fmt, name):
    """save_vectors hands gensim's writer WRITE_WORDS vectors at a time (bounded memory); the file
    must not depend on it."""
    from w2v_async import io

    rng = np.random.default_rng(0)
    words = [f"w{i}\u00e9" for i in range(1234)]
    vectors = rng.standard_normal((1234, 7)).astype(np.float32)
    io.save_vectors(str(tmp_path / "whole"), words, vectors, fmt)
    monkeypatch.setattr(io, "WRITE_WORDS", 100)
    io.save_vectors(str(tmp_path / name), words, vectors, fmt)
    assert (tmp_path / name).read_bytes() == (tmp_path / "whole").read_bytes()
    kv = io.load_vectors(str(tmp_path / name))
    assert kv.index_to_key == words and np.allclose(kv.vectors, vectors, atol=1e-6)
