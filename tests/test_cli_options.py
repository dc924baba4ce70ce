"""train refuses an option given where it does not apply (it used to be dropped, yet written to
OUTPUT.json as if used), with one line and exit 2, as the Python API does; and --tmp-dir, which the
disk-full message names, is an option of train too."""

import errno
import inspect
import json

import pytest
from click.testing import CliRunner

import w2v_async
from conftest import planted_corpus
from w2v_async.cli import cli
from w2v_async.errors import ConfigError

FAST = ["--dim", "8", "--epochs", "1", "--min-count", "1", "-q", "--threads", "1"]
GLOVE_ONLY = "applies to --model glove only; drop it or add --model glove."
WORD2VEC_ONLY = "applies to --model sgns or cbow only; drop it or use --model sgns or cbow."
RAY_OR_SANDBLASTER = "applies to --engine ray or sandblaster only; drop it or add --engine ray."
RAY_ONLY = "applies to --engine ray only; drop it or add --engine ray."
SANDBLASTER_ONLY = "applies to --engine sandblaster only; drop it or add --engine sandblaster."
CORPUS_ONLY = "applies to counting a CORPUS only; drop it or give a CORPUS instead of --cooccur."
CORPUS_OR_VOCAB = ("applies to a CORPUS or a --vocab FILE only; drop it or add the --vocab FILE that --cooccur "
                   "was counted with.")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A planted corpus, its vocabulary and its co-occurrences (in their own directory)."""
    d = tmp_path_factory.mktemp("inputs")
    corpus = planted_corpus(d / "p.txt", mix=0.1)
    assert invoke("vocab", corpus, "-o", d / "v.tsv", "--min-count", "1", "-q").exit_code == 0
    result = invoke("cooccur", corpus, "-o", d / "c.npz", "--vocab", d / "v.tsv", "--min-count", "1", "--window", "5",
                    "-q", "--no-cache")
    assert result.exit_code == 0, result.output
    return {"corpus": str(corpus), "vocab": str(d / "v.tsv"), "cooc": str(d / "c.npz")}


# (the run's arguments, the option refused, the line after "Error: --option ")
REFUSED = [
    (["--model", "sgns"], ["--x-max", "50"], GLOVE_ONLY),
    ([], ["--glove-alpha", "0.5"], GLOVE_ONLY),
    (["--model", "cbow"], ["--eta", "0.1"], GLOVE_ONLY),
    ([], ["--grad-clip", "10"], GLOVE_ONLY),
    ([], ["--vectors", "word"], GLOVE_ONLY),
    ([], ["--asymmetric"], GLOVE_ONLY),
    ([], ["--memory", "2"], GLOVE_ONLY),
    ([], ["--tmp-dir", "."], GLOVE_ONLY),
    ([], ["--max-iter", "5"], GLOVE_ONLY),
    ([], ["--lbfgs-history", "3"], GLOVE_ONLY),
    (["--model", "glove"], ["--negative", "3"], WORD2VEC_ONLY),
    (["--model", "glove"], ["--sample", "0"], WORD2VEC_ONLY),
    (["--model", "glove"], ["--alpha", "0.1"], WORD2VEC_ONLY),
    (["--model", "glove"], ["--min-alpha", "0.001"], WORD2VEC_ONLY),
    (["--model", "glove"], ["--batching", "pair"], WORD2VEC_ONLY),
    (["--model", "glove"], ["--ps-eta", "0.1"], WORD2VEC_ONLY),
    ([], ["--replicas", "3"], RAY_OR_SANDBLASTER),
    (["--model", "glove"], ["--ps-shards", "3"], RAY_OR_SANDBLASTER),
    ([], ["--batch-words", "1000"], RAY_OR_SANDBLASTER),
    ([], ["--ray-address", "auto"], RAY_OR_SANDBLASTER),
    ([], ["--n-fetch", "2"], RAY_ONLY),
    (["--model", "glove"], ["--n-push", "2"], RAY_ONLY),
    ([], ["--ps-optimizer", "adagrad"], RAY_ONLY),
    ([], ["--ps-eta", "0.1"], RAY_ONLY),
    (["--engine", "sandblaster", "--model", "glove"], ["--n-fetch", "2"], RAY_ONLY),
    (["--model", "glove"], ["--max-iter", "5"], SANDBLASTER_ONLY),
    (["--model", "glove", "--engine", "ray"], ["--lbfgs-history", "3"], SANDBLASTER_ONLY),
    (["--model", "glove", "--engine", "sandblaster"], ["--epochs", "3"],
     "applies to --engine threads or ray only; drop it or give --max-iter (L-BFGS iterations) instead."),
]
FROM_COOCCUR = [
    (["--window", "3"], CORPUS_ONLY),
    (["--asymmetric"], CORPUS_ONLY),
    (["--tmp-dir", "."], CORPUS_ONLY),
    (["--lowercase"], CORPUS_ONLY),
    (["--max-vocab-size", "100"], CORPUS_ONLY),
    (["--max-word-length", "50"], CORPUS_ONLY),  # every VocabConfig field but these two: scopes.OPTION_SCOPES
    (["--min-count", "1"], CORPUS_OR_VOCAB),
    (["--max-final-vocab", "10"], CORPUS_OR_VOCAB),
]


def _refused(result, option, text, tmp_path):
    assert result.exit_code == 2, result.output
    assert result.stderr == f"Error: {option} {text}\n"
    assert list(tmp_path.iterdir()) == []  # nothing written: no vectors, no OUTPUT.json, no cache


@pytest.mark.parametrize("run, option, text", REFUSED)
def test_an_option_that_does_not_apply_is_refused(inputs, tmp_path, run, option, text):
    out = tmp_path / "v.txt"
    _refused(invoke("train", inputs["corpus"], "-o", out, *run, *option, *FAST), option[0], text, tmp_path)


@pytest.mark.parametrize("option, text", FROM_COOCCUR)
def test_reading_options_are_refused_when_glove_trains_on_a_cooccurrence_file(inputs, tmp_path, option, text):
    out = tmp_path / "g.txt"
    result = invoke("train", "--model", "glove", "--cooccur", inputs["cooc"], "-o", out, *option, "--dim", "8",
                    "--epochs", "1", "-q")
    _refused(result, option[0], text, tmp_path)


@pytest.mark.parametrize("train, options, name, text", [
    ("train_word2vec", {"x_max": 50.0}, "x_max", GLOVE_ONLY),
    ("train_word2vec", {"model": "cbow", "max_iter": 5}, "max_iter", GLOVE_ONLY),
    ("train_glove", {"negative": 3}, "negative", WORD2VEC_ONLY),
    ("train_word2vec", {"replicas": 3}, "replicas", RAY_OR_SANDBLASTER),
    ("train_word2vec", {"n_fetch": 2}, "n_fetch", RAY_ONLY),
    ("train_glove", {"engine": "sandblaster", "n_push": 2}, "n_push", RAY_ONLY),
    ("train_glove", {"gtol": 1e-6}, "gtol", SANDBLASTER_ONLY),
])
def test_the_python_api_refuses_the_same_options_in_the_same_words(inputs, train, options, name, text):
    """One table decides for both (scopes.OPTION_SCOPES); the API's error names its option too."""
    with pytest.raises(ConfigError) as e:
        getattr(w2v_async, train)(inputs["corpus"], dim=8, min_count=1, progress=False, **options)
    assert str(e.value) == f"option {name}: --{name.replace('_', '-')} {text}"


def test_the_python_api_refuses_reading_options_with_a_cooccurrence_file(inputs):
    with pytest.raises(ConfigError, match="^option window: --window applies to counting a CORPUS only"):
        w2v_async.train_glove(cooccur=inputs["cooc"], window=3, dim=8, epochs=1, progress=False)
    with pytest.raises(ConfigError, match="^option min_count: --min-count applies to a CORPUS or a --vocab FILE"):
        w2v_async.train_glove(cooccur=inputs["cooc"], min_count=1, dim=8, epochs=1, progress=False)


def test_options_that_apply_are_used_and_recorded(inputs, tmp_path):
    out = tmp_path / "v.txt"
    result = invoke("train", inputs["corpus"], "-o", out, "--model", "cbow", "--negative", "3", "--alpha", "0.03",
                    *FAST)
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "v.txt.json").read_text())
    assert (saved["train"]["model"], saved["train"]["negative"], saved["train"]["alpha"]) == ("cbow", 3, 0.03)
    assert "x_max" not in saved["train"]

    out = tmp_path / "g.txt"
    result = invoke("train", inputs["corpus"], "-o", out, "--model", "glove", "--x-max", "10", "--window", "3",
                    "--asymmetric", "--tmp-dir", tmp_path, *FAST)
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "g.txt.json").read_text())
    assert (saved["train"]["x_max"], saved["train"]["window"], saved["train"]["symmetric"]) == (10.0, 3, False)
    assert "negative" not in saved["train"]


def test_glove_on_a_cooccurrence_file_takes_its_training_options_and_a_vocab_check(inputs, tmp_path):
    out = tmp_path / "g.txt"
    result = invoke("train", "--model", "glove", "--cooccur", inputs["cooc"], "--vocab", inputs["vocab"],
                    "--min-count", "1", "-o", out, "--x-max", "10", "--eta", "0.1", "--memory", "0.5", "--dim", "8",
                    "--epochs", "2", "-q")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "g.txt.json").read_text())
    assert (saved["train"]["x_max"], saved["train"]["eta"], saved["train"]["epochs"]) == (10.0, 0.1, 2)
    assert saved["vocab"]["min_count"] == 1  # used: the --vocab file, read at min count 1, is checked against it


def test_a_checkpoint_that_cannot_continue_is_named_before_the_options(inputs, tmp_path):
    """Resuming a word2vec checkpoint with --model glove: the checkpoint's error (it names the
    model to resume with) comes first, as the job gives it."""
    ck = tmp_path / "ck"
    assert invoke("train", inputs["corpus"], "-o", tmp_path / "a.txt", "--checkpoint-dir", ck, *FAST).exit_code == 0
    result = invoke("train", inputs["corpus"], "-o", tmp_path / "b.txt", "--model", "glove", "--negative", "3",
                    "--resume", ck, *FAST)
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: the checkpoint trains --model sgns, not glove; resume with --model sgns."


def test_train_has_the_tmp_dir_the_disk_full_message_names(inputs, tmp_path, monkeypatch):
    from w2v_async.data import cooccur, runs

    with pytest.raises(Exception) as e:
        with runs.disk_errors(str(tmp_path)):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert "--tmp-dir" in str(e.value)
    for command in ("cooccur", "train"):
        assert "--tmp-dir" in [opt for p in cli.commands[command].params for opt in p.opts], command

    seen = []
    count = cooccur.count_cooccurrences

    def spy(*args, **kwargs):
        seen.append(inspect.signature(count).bind(*args, **kwargs).arguments.get("tmp_dir"))
        return count(*args, **kwargs)

    monkeypatch.setattr(cooccur, "count_cooccurrences", spy)
    spill = tmp_path / "spill"
    spill.mkdir()
    result = invoke("train", inputs["corpus"], "-o", tmp_path / "g.txt", "--model", "glove", "--tmp-dir",
                    spill, *FAST)
    assert result.exit_code == 0, result.output
    assert seen == [str(spill)] and list(spill.iterdir()) == []  # the runs went there, and are gone

    result = invoke("train", inputs["corpus"], "-o", tmp_path / "h.txt", "--model", "glove", "--tmp-dir",
                    tmp_path / "missing", *FAST)
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"Error: --tmp-dir {str(tmp_path / 'missing')!r} is not a directory; create it "
                                     "or choose another.")
