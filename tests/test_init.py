"""Starting from a trained model (--init, --save-model): the model file, the run's vocabulary, the
rows it starts from, fine-tuning steps, resuming a fine-tuning run, and every bad SOURCE."""

import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from gensim.models import KeyedVectors

from naive import glove_step, sgns_window_hs_step
from w2v_async import api
from w2v_async.cli.commands import _without_init, cli
from w2v_async.config import VocabConfig
from w2v_async.data.init import InitSource, StartFrom, glove_start, init_vocab
from w2v_async.data.vocab import Vocab
from w2v_async.errors import ConfigError
from w2v_async.io import checkpoint_files, read_checkpoint, unpack_words
from w2v_async.models.huffman import huffman_paths

SMALL = dict(dim=16, window=3, epochs=2, threads=1, min_count=1, progress=False)


def _train(corpus, *args):
    result = CliRunner().invoke(cli, ["train", str(corpus), "-q", "--dim", "16", "--window", "3", "--min-count", "1",
                                      "--threads", "1", *map(str, args)])
    return result


@pytest.fixture
def model_a(tmp_path, planted):
    """A model trained on the planted corpus, saved as a model file, with its vectors."""
    assert _train(planted, "-o", tmp_path / "a.bin", "--save-model", tmp_path / "a.npz", "--epochs", 2).exit_code == 0
    return tmp_path / "a.npz"


def test_save_model_holds_every_matrix_the_vocabulary_and_the_settings(model_a, tmp_path):
    meta, arrays = read_checkpoint(str(model_a))
    written = KeyedVectors.load_word2vec_format(str(tmp_path / "a.bin"), binary=True)
    words = unpack_words(arrays)
    assert words == list(written.index_to_key) and meta["model"] == "sgns" and meta["config"]["train"]["dim"] == 16
    assert np.array_equal(arrays["w_in"], written.vectors) and arrays["w_out"].shape == arrays["w_in"].shape
    assert np.abs(arrays["w_out"]).max() > 0 and len(arrays["counts"]) == len(words)
    assert (np.diff(arrays["counts"]) <= 0).all() and meta["epoch"] == meta["epochs"] == 2


def test_extend_is_the_corpus_words_then_the_source_s_sorted_by_the_corpus_counts():
    source = InitSource(["the", "cat", "rare", "gone", "the"], {"w_in": np.zeros((5, 2), np.float32)}, "s")
    counted = Vocab(["the", "dog", "cat", "new", "rare", "once"], [9, 5, 5, 2, 1, 1])  # as counted: sorted
    got = init_vocab(source, counted, "extend", VocabConfig(min_count=2))
    # corpus words with count >= 2, then source words below it (rare) or absent (gone), by count, ties in order
    assert got.words == ["the", "dog", "cat", "new", "rare", "gone"]
    assert got.counts.tolist() == [9, 5, 5, 2, 1, 0]
    keep = init_vocab(source, counted, "keep", VocabConfig(min_count=2))
    assert keep.words == ["the", "cat", "rare", "gone"] and keep.counts.tolist() == [9, 5, 1, 0]


def test_a_run_starts_from_the_source_rows_and_new_words_fresh():
    source = {"w_in": np.arange(12, dtype=np.float32).reshape(3, 4), "w_out": -np.ones((3, 4), np.float32)}
    w_in, w_out = np.full((4, 4), 7.0, np.float32), np.zeros((4, 4), np.float32)
    StartFrom(source, np.array([2, -1, 0, 1])).fill({"w_in": w_in, "w_out": w_out})
    assert np.array_equal(w_in, np.array([[8, 9, 10, 11], [7] * 4, [0, 1, 2, 3], [4, 5, 6, 7]], np.float32))
    assert np.array_equal(w_out[[0, 2, 3]], -np.ones((3, 4))) and not w_out[1].any()
    w_out = np.zeros((4, 4), np.float32)
    StartFrom({"w_in": source["w_in"]}, np.array([2, -1, 0, 1])).fill({"w_in": w_in, "w_out": w_out})  # no w_out
    assert not w_out.any()


@pytest.mark.parametrize("lock", [None, 0.5])
def test_a_fine_tuned_row_is_a_numpy_step_from_the_source(tmp_path, lock):
    """Hierarchical softmax alone, a fixed window and no subsampling make one epoch deterministic:
    on the sentence "x y" each word's window is the other word, so the run is two HogBatch steps
    from the source's w_in and syn1 (its tree is this run's: same words, same counts); with
    --lock-factor the input rows take that share of their step, the nodes all of theirs."""
    corpus = [["x", "y"]]
    settings = dict(SMALL, hs=True, negative=0, fixed_window=True, sample=0.0, epochs=1, alpha=0.5)
    api.train_word2vec(corpus, str(tmp_path / "a.txt"), save_model=str(tmp_path / "a.npz"), **settings)
    _, source = read_checkpoint(str(tmp_path / "a.npz"))
    kv, summary = api.train_word2vec(corpus, **settings, init=str(tmp_path / "a.npz"), lock_factor=lock)
    words = unpack_words(source)
    starts, nodes, codes = huffman_paths(source["counts"])
    x, y = words.index("x"), words.index("y")
    w_in, w_out, syn1 = source["w_in"], np.zeros_like(source["w_in"]), source["syn1"]
    for center, context in ((x, y), (y, x)):  # sentence positions: x then y
        path = slice(starts[center], starts[center + 1])
        before = w_in.astype(np.float64)
        w_in, w_out, syn1, _ = sgns_window_hs_step(w_in, w_out, syn1, center, [context], [], nodes[path],
                                                   codes[path], 0.5)
        w_in = before + (1.0 if lock is None else lock) * (w_in - before)
    got = np.stack([kv[w] for w in words])
    assert np.abs(got - source["w_in"]).max() > 1e-3  # the steps moved the rows
    assert np.allclose(got, w_in, atol=0.5 * 0.0032 * 2 * np.abs(syn1).max() + 1e-7), (got, w_in)


def test_source_words_the_corpus_lacks_keep_their_vectors_and_new_words_are_learned(tmp_path, planted):
    """From gensim KeyedVectors: words absent from the corpus come out bit-identical; the corpus's
    words, new or not, train."""
    kv = KeyedVectors(16)
    rng = np.random.default_rng(0)
    old = ["g0w1", "g1w2", "absent", "also_absent"]
    kv.add_vectors(old, rng.standard_normal((4, 16)).astype(np.float32))
    out, summary = api.train_word2vec(planted, init=kv, **SMALL)
    assert set(out.index_to_key) == set(old) | {f"g{g}w{w}" for g in range(4) for w in range(10)}
    assert out.index_to_key[-2:] == ["absent", "also_absent"]  # count 0 in the corpus: last
    for w in ("absent", "also_absent"):
        assert np.array_equal(out[w], kv[w])
    assert not np.allclose(out["g0w1"], kv["g0w1"]) and api.evaluate is not None
    assert summary["vocab_size"] == 42


def test_keep_trains_only_the_source_s_words(tmp_path, model_a, planted):
    small = tmp_path / "small.txt"
    with open(planted) as f, open(small, "w") as g:
        g.writelines(line.replace("g3w", "new") for line in f)
    out, _ = api.train_word2vec(str(small), init=str(model_a), init_vocab="keep", **SMALL)
    _, arrays = read_checkpoint(str(model_a))
    assert sorted(out.index_to_key) == sorted(unpack_words(arrays))  # no "new*", every g3w* kept
    extended, _ = api.train_word2vec(str(small), init=str(model_a), **SMALL)
    assert {f"new{w}" for w in range(10)} <= set(extended.index_to_key) and len(extended) == len(out) + 10


def test_a_fine_tuning_run_resumes_bit_identical(tmp_path, model_a, planted):
    """Its checkpoints hold the run's vocabulary (the corpus's and the source's words): --resume alone
    continues it."""
    full = _train(planted, "-o", tmp_path / "full.txt", "--init", model_a, "--epochs", 2, "--checkpoint-dir",
                  tmp_path / "ck")
    assert full.exit_code == 0, full.output
    newest = checkpoint_files(str(tmp_path / "ck"))[0][1]
    os.unlink(newest)  # back to the end of epoch 1
    resumed = _train(planted, "-o", tmp_path / "resumed.txt", "--resume", tmp_path / "ck")
    assert resumed.exit_code == 0, resumed.output
    a = KeyedVectors.load_word2vec_format(str(tmp_path / "full.txt"))
    b = KeyedVectors.load_word2vec_format(str(tmp_path / "resumed.txt"))
    assert a.index_to_key == b.index_to_key and np.array_equal(a.vectors, b.vectors)


def _damaged(tmp_path, model_a):
    path = tmp_path / "damaged.npz"
    data = open(model_a, "rb").read()
    open(path, "wb").write(data[: len(data) // 2] + bytes(100) + data[len(data) // 2 + 100:])
    return path


@pytest.mark.parametrize("args, message", [
    (["--init", "{tmp}/missing.npz"], "does not exist"),
    (["--init", "{damaged}"], "cannot be used"),
    (["--init", "{planted}"], "is not a word2vec vectors file"),
    (["--init", "{model}", "--dim", "8"], "has 16-dimensional vectors but --dim is 8"),
    (["--init", "{model}", "--resume", "{tmp}/ck"], "drop --resume"),
    (["--init", "{model}", "--vocab", "{tmp}/v.txt"], "drop --vocab"),
    (["--init-vocab", "keep"], "--init-vocab applies to --init only"),
    (["--init", "{model}", "--model", "glove", "--engine", "sandblaster"], "--init applies to --engine threads or ray"),
    (["--init", "{model}", "--lock-factor", "0.5", "--subwords"], "--lock-factor applies to runs without --subwords"),
    (["--init", "{model}", "--lock-factor", "2"], "--lock-factor must be in [0, 1]"),
    (["--init", "{model}", "--save-model", "{tmp}/out.bin"], "is also -o"),
    (["--model", "glove", "--engine", "sandblaster", "--save-model", "{tmp}/m.npz"],
     "--save-model applies to --engine threads or ray"),
    (["--init", "{model}", "--lock-factor", "0.5", "--lock-init"], "give one of the two"),
    (["--lock-init", "--init", "{model}", "--model", "glove"], "--lock-init applies to --model sgns or cbow only"),
])
def test_every_bad_source_is_one_line_and_writes_nothing(tmp_path, planted, model_a, args, message):
    os.makedirs(tmp_path / "ck")
    shutil.copy(tmp_path / "a.bin", tmp_path / "out.bin")  # a good file that must survive
    good = open(tmp_path / "out.bin", "rb").read()
    Vocab(["g0w0"], [5]).save(str(tmp_path / "v.txt"))
    fill = dict(tmp=tmp_path, damaged=_damaged(tmp_path, model_a), planted=planted, model=model_a)
    result = _train(planted, "-o", tmp_path / "out.bin", *[a.format(**fill) for a in args])
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output, result.output
    assert open(tmp_path / "out.bin", "rb").read() == good and not os.path.exists(tmp_path / "out.bin.json")


@pytest.mark.parametrize("threads", [1, 4])
@pytest.mark.parametrize("extra", [[], ["--model", "cbow"], ["--batching", "pair"], ["--hs"]])
def test_locked_rows_are_bit_identical_and_new_words_train(tmp_path, planted, threads, extra):
    """--lock-init: every input row that came from the source is exactly as it was, the hottest words'
    (trained in each thread's private copies from 2 threads on) included; new words learn."""
    half = tmp_path / "half.txt"
    with open(planted) as f, open(half, "w") as g:
        g.writelines(line for line in f if "g3w" not in line)  # the source never sees group 3
    assert _train(half, "-o", tmp_path / "s.txt", "--save-model", tmp_path / "s.npz", "--epochs", 1,
                  *extra).exit_code == 0
    _, source = read_checkpoint(str(tmp_path / "s.npz"))
    result = _train(planted, "-o", tmp_path / "t.txt", "--init", tmp_path / "s.npz", "--lock-init", "--epochs", 1,
                    "--threads", threads, "--save-model", tmp_path / "t.npz", *extra)
    assert result.exit_code == 0, result.output
    _, tuned = read_checkpoint(str(tmp_path / "t.npz"))
    old, new = unpack_words(source), unpack_words(tuned)
    rows = np.array([new.index(w) for w in old])
    assert np.array_equal(tuned["w_in"][rows], source["w_in"])
    fresh = [i for i, w in enumerate(new) if w.startswith("g3w")]
    assert len(fresh) == 10 and tuned["lockf"][fresh].tolist() == [1.0] * 10 and not tuned["lockf"][rows].any()
    output = "syn1" if "--hs" in extra else "w_out"
    assert not np.array_equal(tuned[output][rows[:5]], source[output][:5])  # the output rows still train


def test_glove_continues_w_w_tilde_the_biases_and_adagrad_s_sums(tmp_path):
    """On the sentence "x y" with window 1 the matrix has two entries, (x, y) and (y, x), touching
    disjoint rows: one epoch from the source is two AdaGrad steps from all its arrays, whatever
    the shuffle's order."""
    corpus = [["x", "y"]]
    settings = dict(window=1, threads=1, min_count=1, epochs=1, dim=8, progress=False)
    api.train_glove(corpus, save_model=str(tmp_path / "g.npz"), **settings)
    _, source = read_checkpoint(str(tmp_path / "g.npz"))
    api.train_glove(corpus, init=str(tmp_path / "g.npz"), save_model=str(tmp_path / "h.npz"), **settings)
    _, tuned = read_checkpoint(str(tmp_path / "h.npz"))
    names = ("w_word", "w_ctx", "b_word", "b_ctx"), ("gradsq_word", "gradsq_ctx", "gradsq_b_word", "gradsq_b_ctx")
    params, gradsq = [source[n] for n in names[0]], [source[n] for n in names[1]]
    assert unpack_words(source) == unpack_words(tuned) and (np.concatenate([g.ravel() for g in gradsq]) > 1).any()
    for i, j in ((0, 1), (1, 0)):
        params, gradsq, _ = glove_step(params, gradsq, i, j, 1.0, 100.0, 0.75, 0.05)
    for name, ref in zip(names[0] + names[1], params + gradsq):
        assert np.allclose(tuned[name], ref, rtol=1e-5, atol=1e-7), name
    assert not np.allclose(tuned["w_word"], source["w_word"])


def test_glove_from_word_vectors_starts_w_and_w_tilde_at_half_of_them():
    source = InitSource(["a", "b"], {"w_in": np.array([[2.0, 4.0], [6.0, 8.0]], np.float32)}, "v")
    start = glove_start(source, Vocab(["b", "new", "a"], [3, 2, 1]))
    fresh = {n: np.full((3, 2), 9.0, np.float32) for n in ("w_word", "w_ctx")}
    fresh.update({n: np.full(3, 9.0, np.float32) for n in ("b_word", "b_ctx")})
    start.fill(fresh)
    assert np.array_equal(fresh["w_word"], [[3, 4], [9, 9], [1, 2]]) and np.array_equal(fresh["w_ctx"], fresh["w_word"])
    assert fresh["b_word"].tolist() == [0, 9, 0] and fresh["b_ctx"].tolist() == [0, 9, 0]


def test_glove_on_a_cooccur_file_keeps_the_source_words_it_lacks(tmp_path, planted):
    half = tmp_path / "half.txt"
    with open(planted) as f, open(half, "w") as g:
        g.writelines(line for line in f if "g3w" not in line)
    settings = dict(threads=2, min_count=1, epochs=2, dim=8, progress=False)
    api.train_glove(planted, save_model=str(tmp_path / "g.npz"), **settings)
    api.count_cooccurrences(str(half), str(tmp_path / "c.npz"), threads=1)
    del settings["min_count"]
    api.train_glove(cooccur=str(tmp_path / "c.npz"), init=str(tmp_path / "g.npz"),
                    save_model=str(tmp_path / "h.npz"), **settings)
    _, source = read_checkpoint(str(tmp_path / "g.npz"))
    _, tuned = read_checkpoint(str(tmp_path / "h.npz"))
    old, new = unpack_words(source), unpack_words(tuned)
    lacking = [w for w in old if w.startswith("g3w")]
    assert new[-10:] == lacking and sorted(new) == sorted(old)  # after the matrix's words
    for name in ("w_word", "w_ctx", "b_word", "b_ctx", "gradsq_word"):
        assert np.array_equal(tuned[name][-10:], source[name][[old.index(w) for w in lacking]])
    assert not np.array_equal(tuned["w_word"][0], source["w_word"][old.index(new[0])])


SUBWORDS = dict(subwords=True, minn=2, maxn=4, bucket=5000)


@pytest.mark.parametrize("kind", ["model", "fasttext_bin"])
def test_a_subword_run_starts_from_a_subword_model_s_rows_n_grams_included(tmp_path, planted, kind):
    """With the learning rate near zero a run ends where it starts: a subword run from our model file
    or its fastText .bin (read by gensim) gives the source's vectors for every shared word and for
    unseen words (composed from the same n-gram rows), and new words start from their n-grams."""
    half = tmp_path / "half.txt"
    with open(planted) as f, open(half, "w") as g:
        g.writelines(line for line in f if "g3w" not in line)
    source, _ = api.train_word2vec(str(half), str(tmp_path / "s.bin"), save_model=str(tmp_path / "s.npz"),
                                   **SMALL, **SUBWORDS)
    init = str(tmp_path / ("s.npz" if kind == "model" else "s.bin"))
    tuned, _ = api.train_word2vec(planted, init=init, alpha=1e-9, min_alpha=1e-9, **SMALL, **SUBWORDS)
    shared = [w for w in source.index_to_key if w in tuned.key_to_index]
    assert len(shared) == len(source) and len(tuned) == len(source) + 10
    assert np.allclose(np.stack([tuned[w] for w in shared]), np.stack([source[w] for w in shared]), atol=1e-5)
    for unseen in ("g0w1x", "zzg2w"):
        assert np.allclose(tuned[unseen], source[unseen], atol=1e-5) and np.abs(source[unseen]).max() > 0


def test_n_gram_rows_are_copied_by_bucket():
    start = StartFrom({"w_sub": np.arange(8, dtype=np.float32).reshape(4, 2)}, np.zeros(0, np.int64),
                      ngram_buckets=np.array([70, 3, 900, 41]))
    w_sub = np.full((5, 2), -1.0, np.float32)
    start.fill_ngrams(w_sub, np.array([41, 5, 70, 900, 1000]))
    assert w_sub.tolist() == [[6, 7], [-1, -1], [0, 1], [4, 5], [-1, -1]]


def test_a_subword_source_with_other_n_gram_settings_is_refused(tmp_path, planted):
    api.train_word2vec(planted, save_model=str(tmp_path / "s.npz"), **SMALL, **SUBWORDS)
    with pytest.raises(ConfigError, match="give the same"):
        api.train_word2vec(planted, init=str(tmp_path / "s.npz"), **{**SMALL, **SUBWORDS, "maxn": 5})


def test_the_printed_resume_command_drops_init_and_its_options():
    argv = ["c.txt", "-o", "v.bin", "--init", "a.npz", "--init-vocab=keep", "--lock-init", "--lock-factor", "0.5",
            "--epochs", "2", "--init-vocab", "extend"]
    assert _without_init(argv) == ["c.txt", "-o", "v.bin", "--epochs", "2"]


def test_init_from_a_checkpoint_directory_leaves_its_writer_s_files(tmp_path, planted):
    """Another run may be writing a checkpoint there: --init only reads (only --resume cleans up)."""
    assert _train(planted, "-o", tmp_path / "a.txt", "--checkpoint-dir", tmp_path / "ck", "--epochs", 1).exit_code == 0
    writing = tmp_path / "ck" / ".checkpoint-000009.npz.tmp"
    writing.write_bytes(b"half a checkpoint")
    result = _train(planted, "-o", tmp_path / "b.txt", "--init", tmp_path / "ck", "--epochs", 1)
    assert result.exit_code == 0, result.output
    assert writing.exists()
