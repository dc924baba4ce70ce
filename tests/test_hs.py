"""Hierarchical softmax: the Huffman tree against word2vec.c's and against optimal codes, the
updates against NumPy references of word2vec.c's, and training, hot node rows, checkpoints and
the CLI with --hs."""

import heapq
import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import group_margin
from naive import cbow_hs_step, sgns_hs_step, sgns_window_hs_step
from test_checkpoint import Recorder
from w2v_async.cli import cli
from w2v_async.config import VocabConfig, Word2VecConfig
from w2v_async.data.corpus import CorpusReader
from w2v_async.data.vocab import scan_corpus
from w2v_async.engines import threads
from w2v_async.engines.base import Checkpointing
from w2v_async.engines.threads import train_word2vec
from w2v_async.errors import ConfigError
from w2v_async.models import hot_rows, word2vec_hs
from w2v_async.models.huffman import huffman_paths

V, D = 6, 4
SIGMOID_TABLE_ERROR = 0.0032  # as tests/test_kernels.py


def word2vec_c_tree(counts):
    """word2vec.c's CreateBinaryTree transcribed line by line: each word's (point, code) lists,
    point[j] the inner node (word2vec.c's numbering: the a-th node made is a, the root V - 2)."""
    n = len(counts)
    count = list(counts) + [10**15] * (n - 1)
    binary, parent = [0] * (2 * n - 1), [0] * (2 * n - 1)
    pos1, pos2 = n - 1, n
    for a in range(n - 1):
        mins = []
        for _ in range(2):
            if pos1 >= 0 and count[pos1] < count[pos2]:
                mins.append(pos1)
                pos1 -= 1
            else:
                mins.append(pos2)
                pos2 += 1
        count[n + a] = count[mins[0]] + count[mins[1]]
        parent[mins[0]] = parent[mins[1]] = n + a
        binary[mins[1]] = 1
    paths = []
    for a in range(n):
        code, point, b = [], [], a
        while b != 2 * n - 2:
            code.append(binary[b])
            point.append(b)
            b = parent[b]
        # word2vec.c: point[0] = V - 2; point[i - b] = point[b] - V; code[i - b - 1] = code[b]
        nodes = [n - 2] + [p - n for p in reversed(point[1:])]
        paths.append((nodes, code[::-1]))
    return paths


def _counts(draw_sizes):
    return np.sort(np.asarray(draw_sizes, np.int64))[::-1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 1000), min_size=2, max_size=120))
def test_huffman_paths_are_word2vec_cs_tree(sizes):
    counts = _counts(sizes)
    starts, nodes, codes = huffman_paths(counts)
    n = len(counts)
    for w, (their_nodes, their_codes) in enumerate(word2vec_c_tree(counts)):
        mine = slice(starts[w], starts[w + 1])
        assert codes[mine].tolist() == their_codes
        assert nodes[mine].tolist() == [n - 2 - p for p in their_nodes]  # ours: the root is 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 10**6), min_size=2, max_size=200))
def test_huffman_codes_are_optimal_prefix_free_and_share_their_nodes(sizes):
    """Brute force: heapq's Huffman cost is the least sum of count x code length there is."""
    counts = _counts(sizes)
    starts, nodes, codes = huffman_paths(counts)
    heap = [int(c) for c in counts]
    heapq.heapify(heap)
    best = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        best += a + b
        heapq.heappush(heap, a + b)
    lengths = np.diff(starts)
    assert int((counts * lengths).sum()) == best
    words = ["".join(map(str, codes[starts[w]:starts[w + 1]])) for w in range(len(counts))]
    assert len(set(words)) == len(words)
    assert not any(a != b and b.startswith(a) for a in words for b in words)
    assert nodes.min() == 0 and nodes.max() == len(counts) - 2 and (nodes[starts[:-1]] == 0).all()  # root first
    seen = {}  # a node is reached by one code prefix only
    for w in range(len(counts)):
        for j in range(lengths[w]):
            assert seen.setdefault(int(nodes[starts[w] + j]), words[w][:j]) == words[w][:j]


def test_a_one_word_vocabulary_has_empty_paths_and_unsorted_counts_are_refused():
    starts, nodes, codes = huffman_paths(np.array([7]))
    assert starts.tolist() == [0, 0] and len(nodes) == len(codes) == 0
    with pytest.raises(ValueError, match="sorted"):
        huffman_paths(np.array([1, 5, 3]))


def _arrays(seed):
    rng = np.random.default_rng(seed)
    w_in, w_out, syn1 = (rng.uniform(-0.5, 0.5, (V, D)).astype(np.float32) for _ in range(3))
    syn1[4] = 20.0  # |v . syn1[4]| > 6 for most v: word2vec.c leaves a saturated node alone
    return w_in, w_out, syn1


PATH = ([0, 2, 4, 1], [1, 0, 1, 0])


@pytest.mark.parametrize("negatives", [[], [2, 3, 4], [0, 1, 0]])
def test_skip_gram_pair_with_hs_matches_word2vec_c(negatives):
    w_in, w_out, syn1 = _arrays(0)
    center, context, lr = 0, 1, 0.5
    ref = sgns_hs_step(w_in, w_out, syn1, center, context, negatives, *PATH, lr)
    nodes, codes = np.array(PATH[0], np.int32), np.array(PATH[1], np.int8)
    loss = word2vec_hs.sgns_hs_update(w_in, w_out, syn1, center, context, np.array(negatives, np.int32), nodes,
                                      codes, np.float32(lr), np.zeros(D, np.float32))
    tol = lr * SIGMOID_TABLE_ERROR * 4 * D * 2
    for mine, theirs in zip((w_in, w_out, syn1), ref[:3]):
        np.testing.assert_allclose(mine, theirs, atol=tol)
    assert loss == pytest.approx(ref[3], abs=0.02 * (len(negatives) + 4))
    assert np.array_equal(syn1[4], np.full(D, 20.0, np.float32)) and not np.array_equal(syn1[0], _arrays(0)[2][0])


@pytest.mark.parametrize("negatives", [[], [2, 3]])
def test_cbow_with_hs_matches_word2vec_c(negatives):
    w_in, w_out, syn1 = _arrays(1)
    center, contexts, lr = 3, [0, 1, 5], 0.5
    ref = cbow_hs_step(w_in, w_out, syn1, center, contexts, negatives, *PATH, lr)
    loss = word2vec_hs.cbow_hs_update(w_in, w_out, syn1, center, np.array(contexts, np.int32),
                                      np.array(negatives, np.int32), np.array(PATH[0], np.int32),
                                      np.array(PATH[1], np.int8), np.float32(lr), np.zeros(D, np.float32),
                                      np.zeros(D, np.float32))
    tol = lr * SIGMOID_TABLE_ERROR * 4 * D * 2
    for mine, theirs in zip((w_in, w_out, syn1), ref[:3]):
        np.testing.assert_allclose(mine, theirs, atol=tol)
    assert loss == pytest.approx(ref[3], abs=0.02 * (len(negatives) + 4))


@pytest.mark.parametrize("contexts, negatives", [([1, 2, 5], []), ([1, 1, 5], [3, 3, 4]), ([4], [0, 2])])
def test_a_hogbatch_window_with_hs_is_one_minibatch_step_on_the_path(contexts, negatives):
    """Contexts x path nodes (and negatives), every gradient at the old rows."""
    w_in, w_out, syn1 = _arrays(3)
    center, lr = 0, 0.5
    ref = sgns_window_hs_step(w_in, w_out, syn1, center, contexts, negatives, *PATH, lr)
    n_in = len(contexts)
    loss = word2vec_hs.sgns_window_hs_update(
        w_in, w_out, syn1, center, np.array(contexts, np.int32), np.array(negatives, np.int32),
        np.array(PATH[0], np.int32), np.array(PATH[1], np.int8), np.float32(lr), np.zeros((n_in, D), np.float32),
        np.zeros((n_in, max(len(negatives) + 1, 4)), np.float32))
    tol = lr * SIGMOID_TABLE_ERROR * 4 * D * n_in * 2
    for mine, theirs in zip((w_in, w_out, syn1), ref[:3]):
        np.testing.assert_allclose(mine, theirs, atol=tol)
    assert loss == pytest.approx(ref[3], abs=0.02 * n_in * (len(negatives) + 5))


def _encode(path):
    return scan_corpus(CorpusReader(path), VocabConfig(min_count=1))


HS_MODES = [("sgns", "window", 0), ("sgns", "pair", 0), ("cbow", None, 0), ("sgns", "window", 3), ("cbow", None, 3)]
SMALL = dict(dim=16, window=3, sample=0.0, epochs=3, hs=True)


@pytest.mark.parametrize("model, batching, negative", HS_MODES)
@pytest.mark.parametrize("threads, min_margin", [(1, 0.5), (3, 0.25)])
def test_planted_groups_are_learned_with_hs(planted, model, batching, negative, threads, min_margin):
    vocab, enc = _encode(planted)
    cfg = Word2VecConfig(model=model, batching=batching, negative=negative, threads=threads, **SMALL)
    res = train_word2vec(enc, vocab, cfg, progress=False)
    assert group_margin(vocab.words, res.w_in) > min_margin
    mean_path = float((vocab.counts * np.diff(huffman_paths(vocab.counts)[0])).sum() / vocab.counts.sum())
    at_start = np.log(2) * (mean_path + (negative + 1 if negative else 0))  # every score 0: log 2 a unit
    assert res.epoch_loss[-1] < 0.8 * at_start and res.epoch_loss[-1] < res.epoch_loss[0]
    assert sorted(res.params) == sorted(["w_in", "syn1"] + (["w_out"] if negative else []))
    assert res.params["syn1"].shape == (len(vocab) - 1, 16) and np.abs(res.params["syn1"]).sum() > 0
    if not negative:
        assert not res.w_out.any()  # hierarchical softmax alone never touches w_out


def test_the_loss_counts_both_parts():
    """HS + negative sampling: an example's loss is the path's plus the negatives' (about log 2 a
    unit at the start, when every score is 0)."""
    from conftest import planted_corpus

    import tempfile, os
    with tempfile.TemporaryDirectory() as d:
        vocab, enc = _encode(str(planted_corpus(os.path.join(d, "c.txt"), n_sentences=50)))
    losses = {}
    for negative, hs in ((5, False), (0, True), (5, True)):
        cfg = Word2VecConfig(negative=negative, hs=hs, batching="pair", dim=16, window=3, sample=0.0, epochs=1,
                             threads=1, alpha=1e-6, min_alpha=1e-6)
        losses[negative, hs] = train_word2vec(enc, vocab, cfg, progress=False).epoch_loss[0]
    assert losses[5, True] == pytest.approx(losses[5, False] + losses[0, True], rel=1e-3)
    mean_path = float((vocab.counts * np.diff(huffman_paths(vocab.counts)[0])).sum() / vocab.counts.sum())
    assert losses[0, True] == pytest.approx(np.log(2) * mean_path, rel=0.02)


def test_a_threads_hot_node_rows_are_its_own_copies_merged_every_k_uses():
    """Every node hot (copies at rows V..): the kernel trains the copies, counts a use per window
    for each node on the center's path, and merges them into syn1 at the end."""
    from w2v_async.engines.base import thread_scratch
    from w2v_async.models import sampling, word2vec_loops
    from w2v_async.models.common import RUN

    n, dim = 5, 8
    cfg = Word2VecConfig(dim=dim, window=1, negative=0, hs=True, sample=0.0, threads=1)
    w_in = np.zeros((2 * n, dim), np.float32)
    w_in[:n] = np.random.default_rng(0).uniform(-0.5, 0.5, (n, dim))
    w_out = np.zeros((2 * n, dim), np.float32)
    syn1 = np.zeros((2 * n, dim), np.float32)
    hot = hot_rows.hot_scratch(n, n, 1 << 30, dim)  # merged only at the end
    counts = np.array([5, 4, 3, 2, 1], np.int64)
    paths = huffman_paths(counts)
    scratch = word2vec_hs.hs_scratch(thread_scratch(cfg, n, hot), "window", syn1, paths, n)
    corpus = (np.arange(n, dtype=np.int32), np.array([0, n], np.int64), np.array([0], np.int64))
    noise_prob, noise_alias = sampling.build_alias_table(np.full(n, 1.0 / n))
    kernel = word2vec_loops.epoch_kernel("window-hs")
    kernel(w_in, w_out, corpus, (np.ones(n, np.float32), noise_prob, noise_alias),
           np.array([0.025, 0.0001, n], np.float64), np.array([7], np.uint64), np.array([RUN, 0], np.int64), 0,
           (1, 1), scratch)
    starts, nodes, _ = paths
    expected = np.bincount(nodes, minlength=n)  # each word is a center once: one use of each node on its path
    assert scratch[-1][4][:n].tolist() == expected.tolist()
    assert np.abs(syn1[: n - 1]).sum() > 0 and np.array_equal(syn1[: n - 1], syn1[n: 2 * n - 1])  # merged
    assert not syn1[n - 1].any() and not w_out.any()


@pytest.mark.parametrize("model, batching, negative", [("sgns", "window", 0), ("cbow", None, 2), ("sgns", "pair", 0)])
def test_resume_with_hs_is_bit_identical(planted, monkeypatch, model, batching, negative):
    monkeypatch.setattr(threads, "PROGRESS_REFRESH_S", 0.001)
    vocab, enc = _encode(planted)
    cfg = Word2VecConfig(model=model, batching=batching, negative=negative, threads=1, seed=5, **SMALL)
    plain = train_word2vec(enc, vocab, cfg, progress=False)
    rec = Recorder()
    train_word2vec(enc, vocab, cfg, progress=False, checkpointing=Checkpointing(rec, 1e-6))
    arrays = rec.mid_epoch()[len(rec.mid_epoch()) // 2]
    assert "syn1" in arrays and ("w_out" in arrays) == (negative > 0)
    resumed = train_word2vec(enc, vocab, cfg, progress=False, checkpointing=Checkpointing(resume=arrays))
    assert np.array_equal(resumed.w_in, plain.w_in) and np.array_equal(resumed.params["syn1"], plain.params["syn1"])


def test_negative_zero_needs_hs_and_ray_refuses_hs():
    with pytest.raises(ConfigError, match="--negative 0 needs --hs"):
        Word2VecConfig(negative=0).validate()
    Word2VecConfig(negative=0, hs=True).validate()
    with pytest.raises(ConfigError, match="--negative must be a positive number, got -1"):
        Word2VecConfig(negative=-1, hs=True).validate()


def test_train_hs_on_the_command_line_checkpoints_and_resumes_syn1(planted, tmp_path):
    """An interrupted --hs run's checkpoint holds syn1 (and no w_out with --negative 0); resuming
    it, the settings not given come from it, and the vectors equal the uninterrupted run's."""
    from w2v_async.io import load_checkpoint, load_vectors

    ck = tmp_path / "ck"
    common = ["--min-count", "1", "--dim", "8", "--threads", "1", "-q", "--json", "--no-cache"]
    full = CliRunner().invoke(cli, ["train", planted, "-o", str(tmp_path / "full.txt"), "--hs", "--negative", "0",
                                    "--epochs", "2", *common])
    assert full.exit_code == 0, full.output
    first = CliRunner().invoke(cli, ["train", planted, "-o", str(tmp_path / "v.txt"), "--hs", "--negative", "0",
                                     "--epochs", "2", "--checkpoint-dir", str(ck), *common])
    assert first.exit_code == 0, first.output
    meta, arrays, _ = load_checkpoint(str(ck))
    assert "syn1" in arrays and "w_out" not in arrays and meta["config"]["train"]["hs"] is True
    again = CliRunner().invoke(cli, ["train", planted, "-o", str(tmp_path / "w.txt"), "--resume", str(ck), *common])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["config"]["train"]["negative"] == 0
    a, b = load_vectors(str(tmp_path / "full.txt")), load_vectors(str(tmp_path / "w.txt"))
    assert a.index_to_key == b.index_to_key and np.array_equal(a.vectors, b.vectors)


def test_an_hs_resume_refuses_other_counts(planted, tmp_path):
    """syn1's rows are the nodes of the tree the counts built: a --vocab file with the same words and
    another count would resume them as other nodes, so the resume is refused and nothing written."""
    vocab = tmp_path / "vocab.tsv"
    assert CliRunner().invoke(cli, ["vocab", planted, "-o", str(vocab), "--min-count", "1"]).exit_code == 0
    common = ["--min-count", "1", "--dim", "8", "--threads", "1", "-q", "--no-cache", "--hs", "--negative", "0",
              "--epochs", "1", "--checkpoint-dir", str(tmp_path / "ck")]
    first = CliRunner().invoke(cli, ["train", planted, "--vocab", str(vocab), "-o", str(tmp_path / "v.txt"), *common])
    assert first.exit_code == 0, first.output
    lines = vocab.read_text().splitlines()
    top, count = lines[0].split()
    vocab.write_text("\n".join([f"{top} {int(count) + 1000}", *lines[1:]]) + "\n")
    again = CliRunner().invoke(cli, ["train", planted, "--vocab", str(vocab), "-o", str(tmp_path / "w.txt"),
                                     "--resume", str(tmp_path / "ck"), *common[:-2]])
    assert again.exit_code != 0 and again.output.startswith("Error: ") and "counts differ" in again.output, again.output
    assert len(again.output.strip().splitlines()) == 1 and not (tmp_path / "w.txt").exists()


@pytest.mark.parametrize("args, message", [
    (["--negative", "0"], "--negative 0 needs --hs"),
    (["--hs", "--engine", "ray"], "--hs applies to --engine threads only"),
    (["--hs", "--model", "glove"], "--hs applies to --model sgns or cbow only"),
])
def test_hs_misuse_is_one_line_error(planted, tmp_path, args, message):
    result = CliRunner().invoke(cli, ["train", planted, "-o", str(tmp_path / "v.txt"), "--min-count", "1", *args])
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output
    assert not (tmp_path / "v.txt").exists()


@pytest.mark.parametrize("fixed", [False, True])
def test_a_fixed_window_always_reaches_window_words(planted, fixed):
    """gensim's shrink_windows=False: every word's window reaches --window words each side; by
    default word2vec.c's reduced window draws the reach in [1, window]."""
    from w2v_async.models.sampling import build_alias_table
    from w2v_async.models.word2vec_batch import sample_batch

    vocab, encoded = _encode(planted)
    cfg = Word2VecConfig(window=4, fixed_window=fixed)
    assert cfg.windows == ((4, 1) if fixed else (4, 4))
    tables = (vocab.keep_probs(0.0), *build_alias_table(vocab.noise_distribution()))
    m = encoded.n_words
    batch = (np.zeros(m, np.int32), np.zeros(encoded.n_sentences + 1, np.int64), np.zeros(m, np.int32),
             np.zeros(m + 1, np.int64), np.zeros(m * 5, np.int32))
    n_sent, n_words, _, _ = sample_batch((encoded.ids, encoded.sent_starts, np.arange(encoded.n_sentences)), tables,
                                         np.array([3], np.uint64), cfg.windows, 0, 5, batch)
    reach = batch[2][:n_words]
    if fixed:
        assert set(reach.tolist()) == {4}
    else:
        assert set(reach.tolist()) == {1, 2, 3, 4}
    result = CliRunner().invoke(cli, ["train", planted, "-o", "/dev/null", "--fixed-window", "--model", "glove"])
    assert result.exit_code != 0 and "--fixed-window applies to --model sgns or cbow only" in result.output


def test_a_one_word_vocabulary_with_hs_checkpoints(tmp_path):
    """One word: no inner node, syn1 is (0, d); its checkpoint is written and verified (the
    checksum used to fail on the empty array with a traceback)."""
    from w2v_async.io import load_checkpoint

    corpus = tmp_path / "c.txt"
    corpus.write_text("a a a a a\n" * 20)
    result = CliRunner().invoke(cli, ["train", str(corpus), "-o", str(tmp_path / "v.txt"), "--min-count", "1",
                                      "--hs", "--dim", "4", "--epochs", "1", "--threads", "1", "--checkpoint-dir",
                                      str(tmp_path / "ck"), "-q", "--no-cache"])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(str(tmp_path / "ck"))[1]["syn1"].shape == (0, 4)
