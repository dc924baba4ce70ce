"""Checkpoints: the file format, bit-identical resume, and what a run does on divergence or a full disk."""

import os

import numpy as np
import pytest

from conftest import random_cooc
from w2v_async.engines import threads
from w2v_async.config import GloveConfig, VocabConfig, Word2VecConfig
from w2v_async.data.corpus import CorpusReader
from w2v_async.errors import InputError
from w2v_async.io import checkpoint_files, load_checkpoint, read_checkpoint, save_checkpoint
from w2v_async.engines.base import Checkpointing
from w2v_async.engines.threads import train_glove, train_word2vec
from w2v_async.data.vocab import scan_corpus

SMALL = dict(dim=16, window=3, negative=5, sample=1e-3, epochs=3, threads=1, seed=5)
MODES = [("sgns", "window"), ("sgns", "pair"), ("cbow", None)]


class Recorder:
    """A Checkpointing.save that keeps a copy of every checkpoint's arrays in memory."""

    def __init__(self):
        self.saved = []

    def __call__(self, params, state):
        self.saved.append({**{k: v.copy() for k, v in params.items()},
                           **{k: v.copy() for k, v in state.to_arrays().items()}})

    def mid_epoch(self):
        return [a for a in self.saved if a["run_position"].min() > 0]


@pytest.fixture
def frequent_pauses(monkeypatch):
    """The main thread asks for a checkpoint about every millisecond: every kernel tick pauses."""
    monkeypatch.setattr(threads, "PROGRESS_REFRESH_S", 0.001)
    return 1e-6


@pytest.mark.parametrize("model, batching", MODES)
def test_resume_from_any_checkpoint_gives_bit_identical_vectors(planted, frequent_pauses, model, batching):
    vocab, enc = scan_corpus(CorpusReader(planted), VocabConfig(min_count=1))
    cfg = Word2VecConfig(model=model, batching=batching, **SMALL)
    plain = train_word2vec(enc, vocab, cfg, progress=False)
    rec = Recorder()
    paused = train_word2vec(enc, vocab, cfg, progress=False, checkpointing=Checkpointing(rec, frequent_pauses))
    assert np.array_equal(paused.w_in, plain.w_in)  # pausing at ticks does not change the training
    assert rec.mid_epoch(), "no checkpoint was taken inside an epoch"
    for arrays in [rec.mid_epoch()[0], rec.mid_epoch()[-1], rec.saved[0]]:
        resumed = train_word2vec(enc, vocab, cfg, progress=False, checkpointing=Checkpointing(resume=arrays))
        assert np.array_equal(resumed.w_in, plain.w_in) and np.array_equal(resumed.w_out, plain.w_out)
        np.testing.assert_allclose(resumed.epoch_loss, plain.epoch_loss, rtol=1e-9)
        assert resumed.words_trained == plain.words_trained


def test_glove_resume_restores_adagrad_state_bit_identically(frequent_pauses):
    cooc = random_cooc(600)  # several GloVe progress ticks per epoch
    cfg = GloveConfig(dim=8, epochs=3, threads=1, seed=2)
    plain = train_glove(cooc, cfg, progress=False)
    rec = Recorder()
    train_glove(cooc, cfg, progress=False, checkpointing=Checkpointing(rec, frequent_pauses))
    assert rec.mid_epoch()
    arrays = rec.mid_epoch()[-1]
    assert not np.all(arrays["gradsq_word"] == 1.0)  # the AdaGrad sums are in the checkpoint
    resumed = train_glove(cooc, cfg, progress=False, checkpointing=Checkpointing(resume=arrays))
    assert np.array_equal(resumed.vectors(), plain.vectors())
    assert np.array_equal(resumed.b_word, plain.b_word) and np.array_equal(resumed.b_ctx, plain.b_ctx)
    # restarting the AdaGrad sums at 1 (what glove.c's resume does) changes the result
    fresh = dict(arrays, **{k: np.ones_like(arrays[k]) for k in arrays if k.startswith("gradsq")})
    other = train_glove(cooc, cfg, progress=False, checkpointing=Checkpointing(resume=fresh))
    assert not np.array_equal(other.vectors(), plain.vectors())


def test_checkpoint_files_round_trip_keep_two_and_fall_back_when_damaged(tmp_path):
    d = str(tmp_path / "ck")
    for i in range(4):
        save_checkpoint(d, {"i": i}, {"x": np.full(1000, i, np.float32), "words": np.array(["a", "bb"])})
    files = checkpoint_files(d)
    assert [seq for seq, _ in files] == [4, 3]
    assert sorted(os.listdir(d)) == [os.path.basename(p) for _, p in files[::-1]]
    meta, arrays, path = load_checkpoint(d)
    assert meta["i"] == 3 and path == files[0][1] and arrays["x"][0] == 3 and arrays["words"].tolist() == ["a", "bb"]
    with open(files[0][1], "r+b") as f:  # flip one byte inside the stored array
        f.seek(os.path.getsize(files[0][1]) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(InputError, match="cannot be used"):
        read_checkpoint(files[0][1])
    warnings = []
    meta, _, path = load_checkpoint(d, warnings.append)
    assert meta["i"] == 2 and path == files[1][1] and len(warnings) == 1
    with open(files[1][1], "r+b") as f:  # truncate the older one too
        f.truncate(100)
    with pytest.raises(InputError, match="no usable checkpoint"):
        load_checkpoint(d)


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    d = str(tmp_path / "ck")
    save_checkpoint(d, {"i": 1}, {"x": np.zeros(10, np.float32)})
    before = open(checkpoint_files(d)[0][1], "rb").read()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError):
        save_checkpoint(d, {"i": 2}, {"x": np.ones(10, np.float32)})
    assert os.listdir(d) == ["checkpoint-000001.npz"]  # no temporary file left either
    assert open(checkpoint_files(d)[0][1], "rb").read() == before


def _cli(*args):
    from click.testing import CliRunner

    from w2v_async.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_resume_takes_unspecified_settings_from_the_checkpoint_and_finishes_a_done_run(planted, tmp_path):
    ck, out = tmp_path / "ck", tmp_path / "v.bin"
    _cli("train", planted, "-o", out, "--dim", "8", "--epochs", "2", "--min-count", "1", "--threads", "1",
         "--model", "cbow", "--checkpoint-dir", ck, "-q")
    again = tmp_path / "again.bin"  # no settings given: model, dim, epochs, min count and threads come from ck
    summary = _cli("train", planted, "-o", again, "--resume", ck, "--json", "-q").stdout
    assert again.read_bytes() == out.read_bytes()
    assert '"model": "cbow"' in summary and '"dim": 8' in summary


def test_glove_resumed_from_an_epoch_checkpoint_matches_the_uninterrupted_run(planted, tmp_path):
    cooc, ck, out = tmp_path / "c.npz", tmp_path / "ck", tmp_path / "g.txt"
    _cli("cooccur", planted, "-o", cooc, "--min-count", "1", "-q")
    settings = ["--model", "glove", "--dim", "8", "--epochs", "4", "--x-max", "10", "--threads", "1", "-q"]
    _cli("train", "--cooccur", cooc, "-o", out, *settings, "--checkpoint-dir", ck)
    files = checkpoint_files(str(ck))
    assert [seq for seq, _ in files] == [4, 3]  # one per epoch end, the newest two kept
    os.unlink(files[0][1])  # as if the run had died during epoch 4
    resumed = tmp_path / "r.txt"
    _cli("train", "--cooccur", cooc, "-o", resumed, "--resume", ck, *settings)
    assert resumed.read_bytes() == out.read_bytes()
