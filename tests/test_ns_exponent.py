"""--ns-exponent (gensim's ns_exponent): the noise distribution counts^x, on every engine that draws
negatives, recorded and compared on --resume like --negative, refused for GloVe, validated."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import w2v_async
from conftest import planted_corpus, zipf_corpus
from w2v_async.cli import cli
from w2v_async.config import RayConfig, VocabConfig, Word2VecConfig
from w2v_async.data.corpus import CorpusReader
from w2v_async.data.vocab import Vocab, scan_corpus
from w2v_async.errors import ConfigError
from w2v_async.models import sampling

FAST = ["--dim", "8", "--epochs", "1", "--min-count", "1", "-q", "--threads", "1"]
COUNTS = np.array([5000, 900, 300, 120, 40, 7, 3, 1, 1])


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _drawn(prob, alias):
    """The distribution an alias table draws from: column j kept with prob[j], else alias[j]."""
    n = len(prob)
    q = prob.astype(np.float64) / n
    np.add.at(q, alias, (1.0 - prob.astype(np.float64)) / n)
    return q


@pytest.mark.parametrize("x", [0.75, 1.0, 0.5, 0.0, -0.5, 2.0])
def test_the_alias_table_draws_from_counts_to_the_exponent(x):
    vocab = Vocab([f"w{i}" for i in range(len(COUNTS))], COUNTS)
    expected = COUNTS.astype(np.float64) ** x / (COUNTS.astype(np.float64) ** x).sum()
    q = _drawn(*sampling.build_alias_table(vocab.noise_distribution(x)))
    np.testing.assert_allclose(q, expected, rtol=1e-6, atol=1e-9)
    if x == 0.0:
        np.testing.assert_allclose(q, np.full(len(COUNTS), 1 / len(COUNTS)), rtol=1e-6)
    if x < 0:
        assert q[-1] > q[0]  # a negative exponent favours the rare words


@pytest.mark.parametrize("x", [400.0, -400.0])
def test_a_large_exponent_does_not_overflow(x):
    """1e3^400 is beyond float64: the distribution is still counts^x normalised."""
    counts = np.array([1000, 999, 500, 1])
    p = Vocab(["a", "b", "c", "d"], counts).noise_distribution(x)
    ref = counts if x > 0 else 1.0 / counts  # (c / max)^|x| cannot overflow
    expected = (ref / ref.max()) ** abs(x)
    np.testing.assert_allclose(p, expected / expected.sum(), rtol=1e-9, atol=1e-300)
    assert np.isfinite(p).all() and p.sum() == pytest.approx(1.0)


def _recording(monkeypatch, module):
    """Record the distributions module.build_alias_table is given."""
    seen, real = [], sampling.build_alias_table

    def record(p):
        seen.append(np.array(p))
        return real(p)

    monkeypatch.setattr(module, "build_alias_table", record)
    return seen


@pytest.mark.parametrize("model", ["sgns", "cbow"])
def test_the_threads_engine_draws_negatives_from_the_exponent(tmp_path, monkeypatch, model):
    corpus = str(zipf_corpus(tmp_path / "z.txt", n_words=200, n_tokens=4000))
    seen = _recording(monkeypatch, sampling)  # engines/threads imports it when it runs
    vocab, _ = w2v_async.build_vocab(corpus, min_count=1, threads=1)
    for x, expected in ((0.0, np.full(len(vocab), 1 / len(vocab))), (-0.5, vocab.noise_distribution(-0.5))):
        seen.clear()
        w2v_async.train_word2vec(corpus, model=model, ns_exponent=x, dim=8, epochs=1, min_count=1, threads=1,
                                 progress=False, cache=False)
        assert len(seen) == 1
        np.testing.assert_allclose(seen[0], expected, rtol=1e-12)


def test_the_ray_engine_draws_negatives_from_the_exponent(tmp_path, monkeypatch):
    """Up to the table only: Ray is not started (connect is replaced, the run stops at the table)."""
    from w2v_async.engines import ray as ray_engine

    class Stop(Exception):
        pass

    def stop(p):
        seen.append(np.array(p))
        raise Stop

    seen = []
    monkeypatch.setattr(ray_engine, "connect", lambda rcfg: None)
    monkeypatch.setattr(ray_engine, "build_alias_table", stop)
    vocab, enc = scan_corpus(CorpusReader(str(planted_corpus(tmp_path / "p.txt", n_sentences=50))),
                             VocabConfig(min_count=1))
    with pytest.raises(Stop):
        ray_engine.train_word2vec_ray(enc, vocab, Word2VecConfig(ns_exponent=0.25, threads=1), RayConfig(),
                                      progress=False)
    np.testing.assert_allclose(seen[0], vocab.noise_distribution(0.25), rtol=1e-12)
    assert not np.allclose(seen[0], vocab.noise_distribution(0.75))


def test_recorded_in_output_json_and_checkpoints_and_a_different_one_is_refused_on_resume(tmp_path):
    corpus = planted_corpus(tmp_path / "p.txt", n_sentences=200)
    ck, out = tmp_path / "ck", tmp_path / "v.txt"
    result = invoke("train", corpus, "-o", out, "--ns-exponent", "0.5", "--checkpoint-dir", ck, "--json", *FAST)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["config"]["train"]["ns_exponent"] == 0.5
    assert json.loads((tmp_path / "v.txt.json").read_text())["train"]["ns_exponent"] == 0.5

    result = invoke("train", corpus, "-o", tmp_path / "r.txt", "--resume", ck, "--ns-exponent", "0.75", "-q")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: these settings differ from the checkpoint's: ns_exponent 0.75 "
                                    "(checkpoint: 0.5)")
    assert len(result.stderr.splitlines()) == 1
    again = tmp_path / "again.txt"  # not given: the checkpoint's
    assert invoke("train", corpus, "-o", again, "--resume", ck, "-q").exit_code == 0
    assert json.loads((tmp_path / "again.txt.json").read_text())["train"]["ns_exponent"] == 0.5
    assert again.read_bytes() == out.read_bytes()


def test_an_old_checkpoint_without_the_setting_resumes_at_the_default():
    from w2v_async.config import resumed_config

    saved = {k: v for k, v in Word2VecConfig(threads=1).__dict__.items() if k != "ns_exponent"}
    assert resumed_config(Word2VecConfig(), saved, set()).ns_exponent == 0.75
    with pytest.raises(ConfigError, match="ns_exponent 0.5 \\(checkpoint: 0.75\\)"):
        resumed_config(Word2VecConfig(ns_exponent=0.5), saved, {"ns_exponent"})


def test_glove_refuses_it(tmp_path):
    corpus = planted_corpus(tmp_path / "p.txt", n_sentences=50)
    result = invoke("train", corpus, "-o", tmp_path / "g.txt", "--model", "glove", "--ns-exponent", "0.5", *FAST)
    assert result.exit_code == 2
    assert result.stderr == ("Error: --ns-exponent applies to --model sgns or cbow only; drop it or use --model "
                             "sgns or cbow.\n")
    with pytest.raises(ConfigError, match="^option ns_exponent: --ns-exponent applies to --model sgns or cbow"):
        w2v_async.train_glove(str(corpus), ns_exponent=0.5, dim=8, progress=False)
    assert list(tmp_path.iterdir()) == [corpus]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_it_must_be_finite(tmp_path, value):
    corpus = planted_corpus(tmp_path / "p.txt", n_sentences=50)
    result = invoke("train", corpus, "-o", tmp_path / "v.txt", "--ns-exponent", value, *FAST)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --ns-exponent must be a finite number") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("value", [float("nan"), "0.5", None])
def test_the_config_refuses_what_is_not_a_finite_number(value):
    with pytest.raises(ConfigError, match="--ns-exponent must be a finite number"):
        Word2VecConfig(ns_exponent=value).validate()
    for ok in (0, 0.0, -1.5, 3):
        assert Word2VecConfig(ns_exponent=ok).validate().ns_exponent == ok
