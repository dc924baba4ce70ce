"""fastText's subword model (--subwords): n-gram buckets equal gensim's fastText-compatible hashes on
ASCII, accented and CJK words; the n-gram rows' layout; the skip-gram and CBOW updates against
NumPy references of fastText's; planted groups learned at 1, 8 and 16 threads; the written vectors are
the mean of a word's row and its n-grams' rows; resume; option errors."""

import numpy as np
import pytest
from click.testing import CliRunner
from gensim.models.fasttext import ft_ngram_hashes
from hypothesis import given, settings
from hypothesis import strategies as st

from naive import negative_sampling_step
from test_checkpoint import Recorder
from w2v_async.cli import cli
from w2v_async.config import VocabConfig, Word2VecConfig
from w2v_async.data.corpus import CorpusReader
from w2v_async.data.subwords import subword_rows, word_buckets
from w2v_async.data.vocab import scan_corpus
from w2v_async.engines import threads
from w2v_async.engines.base import Checkpointing
from w2v_async.engines.threads import train_word2vec
from w2v_async.errors import ConfigError
from w2v_async.models import subwords

SIGMOID_TABLE_ERROR = 0.0032  # as tests/test_kernels.py: the kernels' sigmoid is word2vec.c's table


def _close(got, ref, start, lr, n_terms):
    """got equals ref within what the table's sigmoid can move n_terms gradient terms of a row (the
    rows' largest entry each), and the step moved the rows by far more than got and ref differ."""
    diff = np.abs(got - ref).max()
    return diff <= lr * SIGMOID_TABLE_ERROR * n_terms * np.abs(start).max() and np.abs(ref - start).max() > 20 * diff


WORDS = ["hello", "héllo", "naïveté", "日本語", "中", "a", "ab", "straße", "x" * 40, "über-long_word!", "ｆｕｌｌ"]


@pytest.mark.parametrize("minn, maxn, bucket", [(3, 6, 2_000_000), (1, 3, 1000), (2, 2, 7), (5, 5, 100_003)])
def test_ngram_buckets_equal_gensims_fasttext_hashes(minn, maxn, bucket):
    starts, found = word_buckets(WORDS, minn, maxn, bucket)
    for w, word in enumerate(WORDS):
        assert found[starts[w]: starts[w + 1]].tolist() == [int(h) for h in ft_ngram_hashes(word, minn, maxn, bucket)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12).filter(lambda w: not w.isspace()), min_size=1, max_size=8))
def test_ngram_buckets_equal_gensims_on_any_unicode(words):
    starts, found = word_buckets(words, 3, 6, 2_000_000)
    for w, word in enumerate(words):
        assert found[starts[w]: starts[w + 1]].tolist() == [int(h) for h in ft_ngram_hashes(word, 3, 6, 2_000_000)]


def test_maxn_zero_gives_no_ngrams():
    starts, found = word_buckets(WORDS, 3, 0, 2_000_000)
    assert found.shape == (0,) and not starts.any()


def test_ngram_rows_cover_the_used_buckets_heaviest_first():
    counts = np.array([1000, 500, 100, 50, 10, 5, 4, 3, 2, 1, 1], np.int64)
    sub = subword_rows(WORDS, counts, 3, 6, 50)  # a small bucket count: collisions share a row
    starts, found = word_buckets(WORDS, 3, 6, 50)
    assert np.array_equal(sub.starts, starts) and np.array_equal(sub.buckets[sub.rows], found)
    assert sorted(sub.buckets.tolist()) == sorted(set(found.tolist()))
    weight = np.zeros(len(sub.buckets))
    np.add.at(weight, sub.rows, counts[np.repeat(np.arange(len(WORDS)), np.diff(starts))])
    assert np.all(np.diff(weight) <= 0)  # row p is touched at least as often as row p + 1


def test_ngram_rows_are_the_sorting_references_layout():
    """The rows built by counting into --bucket slots are the layout np.unique's sort gives (the
    reference, about 49 bytes an n-gram where the kernels take 4): used buckets by summed count,
    heaviest first, ties by bucket; a word of count 0 (an --init source word) keeps its n-grams."""
    rng = np.random.default_rng(4)
    words = ["".join(rng.choice(list("abcdé"), rng.integers(1, 9))) for _ in range(300)]
    words = sorted(set(words))
    counts = rng.integers(0, 6, len(words))  # many ties, and zeros
    sub = subword_rows(words, counts, 2, 5, 997)
    starts, found = word_buckets(words, 2, 5, 997)
    used, inverse = np.unique(found, return_inverse=True)
    weight = np.bincount(inverse, weights=np.repeat(counts.astype(np.float64), np.diff(starts)))
    order = np.lexsort((used, -weight))
    row_of = np.empty(used.shape[0], np.int32)
    row_of[order] = np.arange(used.shape[0])
    assert np.array_equal(sub.starts, starts) and sub.rows.dtype == np.int32
    assert np.array_equal(sub.rows, row_of[inverse]) and np.array_equal(sub.buckets, used[order])
    assert (weight == 0).any() and len(sub.buckets) == len(used)  # the zero-count words' buckets are rows too


def _setup(seed=0, n_words=6, n_rows=9, dim=5):
    rng = np.random.default_rng(seed)
    w_in = rng.normal(0, 0.3, (n_words, dim)).astype(np.float32)
    w_out = rng.normal(0, 0.3, (n_words, dim)).astype(np.float32)
    w_sub = rng.normal(0, 0.3, (n_rows, dim)).astype(np.float32)
    return w_in, w_out, w_sub


def test_skipgram_window_equals_fasttexts_update_at_the_old_hidden_vector():
    """h = mean(center's row, its n-gram rows); each context and its own negatives take
    word2vec.c's sequential output step at that h; every input row (a repeated n-gram twice)
    takes the summed gradient."""
    w_in, w_out, w_sub = _setup()
    center, rows = 2, np.array([4, 1, 4, 7], np.int32)
    contexts = np.array([0, 3, 5], np.int32)
    negatives = np.array([1, 4, 0, 2, 5, 3], np.int32)  # k = 2 per context (context 0's first is itself)
    lr = np.float32(0.05)
    ref_in, ref_out, ref_sub = w_in.astype(np.float64), w_out.astype(np.float64), w_sub.astype(np.float64)
    h = (ref_in[center] + ref_sub[rows].sum(axis=0)) / (1 + len(rows))
    acc, ref_loss = np.zeros_like(h), 0.0
    for c, ctx in enumerate(contexts):
        grad, loss = negative_sampling_step(ref_out, h, ctx, negatives[2 * c: 2 * c + 2], lr)
        acc += grad
        ref_loss += loss
    ref_in[center] += acc
    np.add.at(ref_sub, rows, acc)
    dim = w_in.shape[1]
    loss = subwords.sgns_sub_update(w_in, w_out, w_sub, np.array([center], np.int32), rows, contexts, negatives, 2, lr,
                                    np.zeros(dim, np.float32), np.zeros(dim, np.float32), np.zeros(64, np.int32))
    start_in, start_out, start_sub = _setup()
    assert _close(w_in, ref_in, start_in, lr, 9) and _close(w_sub, ref_sub, start_sub, lr, 18)
    assert _close(w_out, ref_out, start_out, lr, 3) and loss == pytest.approx(ref_loss, rel=0.01)


def test_cbow_equals_fasttexts_update():
    """h = the mean over the contexts' rows and all their n-gram rows; each takes the gradient."""
    w_in, w_out, w_sub = _setup(seed=1)
    contexts, rows = np.array([0, 3], np.int32), np.array([2, 2, 5, 8, 0], np.int32)
    negatives, lr = np.array([1, 4, 5], np.int32), np.float32(0.05)
    ref_in, ref_out, ref_sub = w_in.astype(np.float64), w_out.astype(np.float64), w_sub.astype(np.float64)
    h = (ref_in[contexts].sum(axis=0) + ref_sub[rows].sum(axis=0)) / (len(contexts) + len(rows))
    grad, ref_loss = negative_sampling_step(ref_out, h, 4, negatives, lr)  # center 4, also a negative: skipped
    ref_in[contexts] += grad
    np.add.at(ref_sub, rows, grad)
    dim = w_in.shape[1]
    loss = subwords.cbow_sub_update(w_in, w_out, w_sub, 4, contexts, rows, negatives, lr, np.zeros(dim, np.float32),
                                    np.zeros(dim, np.float32))
    start_in, start_out, start_sub = _setup(seed=1)
    assert _close(w_in, ref_in, start_in, lr, 3) and _close(w_sub, ref_sub, start_sub, lr, 6)
    assert _close(w_out, ref_out, start_out, lr, 1) and loss == pytest.approx(ref_loss, rel=0.01)


def random_word_corpus(path, n_groups=4, group_size=10, n_sentences=1500, length=20, seed=0):
    """Sentences drawing from one topic group each, the words random letter strings (so their
    n-grams say nothing of their group). Returns {word: group}."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    groups = [["".join(rng.choice(letters, 7)) for _ in range(group_size)] for _ in range(n_groups)]
    with open(path, "w") as f:
        for _ in range(n_sentences):
            g = rng.integers(n_groups)
            f.write(" ".join(rng.choice(groups[g], length)) + "\n")
    return {w: g for g, words in enumerate(groups) for w in words}


def _margin(words, vectors, group_of):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = unit @ unit.T
    group = np.array([group_of[w] for w in words])
    same = (group[:, None] == group[None, :]) & ~np.eye(len(group), dtype=bool)
    return cos[same].mean() - cos[group[:, None] != group[None, :]].mean()


SMALL = dict(dim=16, window=3, sample=0.0, epochs=3, subwords=True, minn=2, maxn=4, bucket=5000)


@pytest.mark.parametrize("model", ["sgns", "cbow"])
@pytest.mark.parametrize("n_threads, min_margin", [(1, 0.4), (8, 0.25), (16, 0.25)])
def test_planted_groups_are_learned_with_subwords(tmp_path, model, n_threads, min_margin):
    group_of = random_word_corpus(tmp_path / "c.txt")
    vocab, enc = scan_corpus(CorpusReader(str(tmp_path / "c.txt")), VocabConfig(min_count=1))
    cfg = Word2VecConfig(model=model, threads=n_threads, **SMALL)
    res = train_word2vec(enc, vocab, cfg, progress=False)
    assert _margin(vocab.words, res.w_in, group_of) > min_margin
    assert res.params["w_sub"].shape[0] > len(vocab) and np.isfinite(res.epoch_loss).all()


def test_written_vectors_are_the_mean_of_a_word_s_rows(tmp_path):
    """What a run writes for word w: (w_in[w] + the sum of its n-gram rows) / (1 + their number),
    fastText's getWordVector, from the raw rows a checkpoint holds."""
    group_of = random_word_corpus(tmp_path / "c.txt", n_sentences=300)
    vocab, enc = scan_corpus(CorpusReader(str(tmp_path / "c.txt")), VocabConfig(min_count=1))
    cfg = Word2VecConfig(threads=1, **SMALL)
    res = train_word2vec(enc, vocab, cfg, progress=False)
    sub = subword_rows(vocab.words, vocab.counts, cfg.minn, cfg.maxn, cfg.bucket)
    w_in, w_sub = res.params["w_in"], res.params["w_sub"]
    for w in (0, len(group_of) // 2, len(group_of) - 1):
        rows = sub.rows[sub.starts[w]: sub.starts[w + 1]]
        expected = (w_in[w].astype(np.float64) + w_sub[rows].sum(axis=0)) / (1 + len(rows))
        assert np.allclose(res.w_in[w], expected, atol=1e-6) and len(rows) > 0


@pytest.mark.parametrize("model", ["sgns", "cbow"])
def test_resume_with_subwords_is_bit_identical(tmp_path, monkeypatch, model):
    monkeypatch.setattr(threads, "PROGRESS_REFRESH_S", 0.001)
    random_word_corpus(tmp_path / "c.txt", n_sentences=600)
    vocab, enc = scan_corpus(CorpusReader(str(tmp_path / "c.txt")), VocabConfig(min_count=1))
    cfg = Word2VecConfig(model=model, threads=1, seed=3, **SMALL)
    plain = train_word2vec(enc, vocab, cfg, progress=False)
    rec = Recorder()
    train_word2vec(enc, vocab, cfg, progress=False, checkpointing=Checkpointing(rec, 1e-6))
    arrays = rec.mid_epoch()[len(rec.mid_epoch()) // 2]
    assert "w_sub" in arrays
    resumed = train_word2vec(enc, vocab, cfg, progress=False, checkpointing=Checkpointing(resume=arrays))
    assert np.array_equal(resumed.w_in, plain.w_in) and np.array_equal(resumed.params["w_sub"], plain.params["w_sub"])


@pytest.mark.parametrize("args, message", [
    (["--minn", "2"], "--minn applies to --subwords only"),
    (["--subwords", "--hs"], "drop --hs"),
    (["--subwords", "--engine", "ray"], "--subwords applies to --engine threads only"),
    (["--subwords", "--maxn", "2"], "--maxn (2) is below --minn (3)"),
    (["--subwords", "--bucket", "0"], "--bucket must be a positive number"),
    (["--subwords", "--batching", "pair"], "--batching does not apply to --subwords"),
    (["--subwords", "--model", "glove"], "--subwords applies to --model sgns or cbow only"),
])
def test_subword_misuse_is_one_line_error(tmp_path, args, message):
    random_word_corpus(tmp_path / "c.txt", n_sentences=50)
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "c.txt"), "-o", str(tmp_path / "v.txt"), "--min-count",
                                      "1", *args])
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output, result.output
    assert not (tmp_path / "v.txt").exists()


@pytest.mark.parametrize("bad", [dict(hs=True), dict(maxn=2), dict(minn=0), dict(bucket=0), dict(batching="pair")])
def test_the_api_refuses_the_same_subword_settings(bad):
    Word2VecConfig(subwords=True).validate()
    with pytest.raises(ConfigError):
        Word2VecConfig(subwords=True, **bad).validate()


def test_a_bin_output_is_fasttexts_format_with_the_same_vectors_for_seen_and_unseen_words(tmp_path):
    """-o MODEL.bin with --subwords writes fastText's binary format (and MODEL.vec): gensim's
    load_facebook_model reads it back with the run's arrays, its vector for a seen word is the
    written one, and for an unseen word the mean of its n-gram rows (unused buckets zero)."""
    from gensim.models.fasttext import ft_ngram_hashes, load_facebook_model

    from w2v_async.io import load_checkpoint, load_vectors

    random_word_corpus(tmp_path / "c.txt", n_sentences=300)
    args = ["train", str(tmp_path / "c.txt"), "-o", str(tmp_path / "m.bin"), "--subwords", "--min-count", "1",
            "--dim", "8", "--epochs", "1", "--threads", "1", "--minn", "2", "--maxn", "4", "--bucket", "5000",
            "--checkpoint-dir", str(tmp_path / "ck"), "-q", "--no-cache"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    _, arrays, _ = load_checkpoint(str(tmp_path / "ck"))
    model = load_facebook_model(str(tmp_path / "m.bin"))
    vec = load_vectors(str(tmp_path / "m.vec"))
    words = vec.index_to_key
    assert model.wv.index_to_key == words and model.wv.bucket == 5000 and (model.wv.min_n, model.wv.max_n) == (2, 4)
    assert np.array_equal(model.wv.vectors_vocab, arrays["w_in"]) and np.array_equal(model.syn1neg, arrays["w_out"])
    assert np.allclose(model.wv.vectors, vec.vectors, atol=1e-6)
    sub = subword_rows(words, np.array([model.wv.get_vecattr(w, "count") for w in words]), 2, 4, 5000)
    full = np.zeros((5000, 8), np.float32)
    full[sub.buckets] = arrays["w_sub"]
    assert np.array_equal(model.wv.vectors_ngrams, full)
    for unseen in ("zzqxv", "日本語", words[0] + "s"):
        hashes = ft_ngram_hashes(unseen, 2, 4, 5000)
        assert np.allclose(model.wv[unseen], full[hashes].sum(axis=0) / len(hashes), atol=1e-6)
    assert isinstance(load_vectors(str(tmp_path / "m.bin")), type(model.wv))  # what eval and similar read


@pytest.fixture
def subword_bin(tmp_path):
    group_of = random_word_corpus(tmp_path / "c.txt", n_sentences=400)
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "c.txt"), "-o", str(tmp_path / "m.bin"), "--subwords",
                                      "--min-count", "1", "--dim", "8", "--epochs", "2", "--threads", "1", "--minn",
                                      "2", "--maxn", "4", "--bucket", "5000", "-q", "--no-cache"])
    assert result.exit_code == 0, result.output
    return str(tmp_path / "m.bin"), sorted(group_of)


def test_similar_and_vectors_compose_unseen_words_from_a_subword_model(subword_bin):
    from w2v_async.io import load_vectors

    path, words = subword_bin
    kv = load_vectors(path)
    unseen = words[0] + "q"
    result = CliRunner().invoke(cli, ["similar", path, unseen, "-n", "3", "--json"])
    assert result.exit_code == 0, result.output
    import json
    pairs = json.loads(result.output.strip().splitlines()[-1])
    assert [w for w, _ in pairs] == [w for w, _ in kv.most_similar(unseen, topn=3)]
    result = CliRunner().invoke(cli, ["vectors", path], input=f"{words[1]}  {unseen}\nzzzz\n")
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.strip().splitlines()]
    assert [line[0] for line in lines] == [words[1], unseen, "zzzz"]
    for line in lines:
        assert np.allclose(np.array(line[1:], float), kv.get_vector(line[0]), atol=1e-4)
    assert np.abs(np.array(lines[1][1:], float)).max() > 0


def test_vectors_of_a_plain_model_print_zeros_for_unknown_words_and_say_so(subword_bin):
    path, words = subword_bin
    vec = path[:-4] + ".vec"
    result = CliRunner().invoke(cli, ["vectors", vec], input=f"{words[0]} nosuchword\n")
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.strip().splitlines()]
    assert lines[1] == ["nosuchword"] + ["0"] * 8 and np.abs(np.array(lines[0][1:], float)).max() > 0
    assert "1 words are not in the vocabulary" in result.stderr


def test_eval_oov_answers_the_questions_with_unseen_words(subword_bin, tmp_path):
    """Questions whose words are all known are gensim's; those with an unseen word are answered
    with composed vectors, counted apart. A word2vec file refuses --oov."""
    import json

    path, words = subword_bin
    questions = tmp_path / "q.txt"
    known = [f"{words[i]} {words[i + 1]} {words[i + 2]} {words[i + 3]}" for i in range(0, 12, 4)]
    unseen = [f"{words[i]}x {words[i + 1]} {words[i + 2]} {words[i + 3]}" for i in range(0, 20, 4)]
    questions.write_text(": capital-x\n" + "\n".join(known + unseen[:2]) + "\n: gram-y\n" + "\n".join(unseen[2:]) + "\n")
    result = CliRunner().invoke(cli, ["eval", path, "--oov", "--no-defaults", "--analogies", str(questions), "--json"])
    assert result.exit_code == 0, result.output
    analogy = json.loads(result.output)["analogies"][0]
    assert analogy["evaluated"] == 3 and analogy["composed"]["answered"] == 5
    assert analogy["composed"]["unseen_words"] == 5 and 0 <= analogy["composed"]["correct"] <= 5
    plain = CliRunner().invoke(cli, ["eval", path[:-4] + ".vec", "--oov", "--no-defaults", "--analogies", str(questions)])
    assert plain.exit_code != 0 and plain.output.startswith("Error: --oov needs a subword model"), plain.output


def test_the_api_returns_fasttext_keyed_vectors_equal_to_the_bin(tmp_path):
    """train_word2vec(subwords=True) returns gensim FastTextKeyedVectors: the vectors of the .bin
    it writes, for seen and unseen words alike."""
    import w2v_async
    from w2v_async.io import load_vectors

    random_word_corpus(tmp_path / "c.txt", n_sentences=200)
    kv, summary = w2v_async.train_word2vec(str(tmp_path / "c.txt"), str(tmp_path / "m.bin"), subwords=True, min_count=1,
                                           dim=8, epochs=1, threads=1, bucket=3000, minn=2, maxn=4, progress=False)
    saved = load_vectors(str(tmp_path / "m.bin"))
    assert type(kv) is type(saved) and kv.index_to_key == saved.index_to_key and summary["outputs"]["format"] == "fasttext"
    for word in (kv.index_to_key[0], kv.index_to_key[-1], "unseenword", "日本"):
        assert np.allclose(kv[word], saved[word], atol=1e-6)


def test_downpour_refuses_subwords_before_starting_ray(tmp_path):
    from w2v_async.config import RayConfig
    from w2v_async.engines.ray import train_word2vec_ray

    random_word_corpus(tmp_path / "c.txt", n_sentences=20)
    vocab, enc = scan_corpus(CorpusReader(str(tmp_path / "c.txt")), VocabConfig(min_count=1))
    with pytest.raises(ConfigError, match="--subwords .* trains on the threads engine only; drop --engine ray"):
        train_word2vec_ray(enc, vocab, Word2VecConfig(subwords=True), RayConfig(), progress=False)


def test_a_subword_resume_refuses_other_counts(tmp_path):
    """The n-gram rows are ordered by the counts: a --vocab file with the same words and another
    count would resume them as other buckets, so the resume is refused and nothing written."""
    random_word_corpus(tmp_path / "c.txt", n_sentences=200)
    corpus, vocab = str(tmp_path / "c.txt"), tmp_path / "vocab.tsv"
    assert CliRunner().invoke(cli, ["vocab", corpus, "-o", str(vocab), "--min-count", "1"]).exit_code == 0
    common = ["--vocab", str(vocab), "--subwords", "--dim", "8", "--epochs", "1", "--threads", "1", "-q", "--no-cache",
              "--bucket", "3000"]
    first = CliRunner().invoke(cli, ["train", corpus, "-o", str(tmp_path / "v.txt"), "--checkpoint-dir",
                                     str(tmp_path / "ck"), *common])
    assert first.exit_code == 0, first.output
    lines = vocab.read_text().splitlines()
    last, count = lines[-1].split()
    vocab.write_text("\n".join(lines[:-1] + [f"{last} {int(count) + 1}"]) + "\n")  # still sorted: the rarest word
    again = CliRunner().invoke(cli, ["train", corpus, "-o", str(tmp_path / "w.txt"), "--resume", str(tmp_path / "ck"),
                                     *common])
    assert again.exit_code != 0 and again.output.startswith("Error: ") and "counts differ" in again.output, again.output
    assert not (tmp_path / "w.txt").exists()


def test_a_bin_named_like_its_vec_is_refused(tmp_path):
    random_word_corpus(tmp_path / "c.txt", n_sentences=50)
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "c.txt"), "-o", str(tmp_path / "m.vec"), "--format", "bin",
                                      "--subwords", "--min-count", "1", "-q"])
    assert result.exit_code != 0 and result.output.startswith("Error: ") and "ending in .bin" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "m.vec").exists()


def test_eval_oov_compares_words_case_insensitively_as_gensim(subword_bin, tmp_path):
    """A question whose words the vocabulary has in another case is gensim's, not a composed one."""
    import json

    path, words = subword_bin
    questions = tmp_path / "q.txt"
    questions.write_text(": capital-x\n" + f"{words[0].upper()} {words[1]} {words[2].title()} {words[3]}\n"
                         + f"{words[4]}zz {words[5]} {words[6]} {words[7]}\n")
    result = CliRunner().invoke(cli, ["eval", path, "--oov", "--no-defaults", "--analogies", str(questions), "--json"])
    assert result.exit_code == 0, result.output
    analogy = json.loads(result.output)["analogies"][0]
    assert analogy["evaluated"] == 1 and analogy["composed"]["answered"] == 1
    assert analogy["composed"]["unseen_words"] == 1
