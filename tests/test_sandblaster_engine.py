"""`train --engine sandblaster` end to end on a local Ray: the command line, checkpoints that hold
L-BFGS's state, a stop mid-pass, and resuming onto the same iterates."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import group_margin, planted_corpus
from w2v_async.cli import cli
from w2v_async.config import GloveConfig, RayConfig, SandblasterConfig, VocabConfig
from w2v_async.data.cooccur import count_cooccurrences
from w2v_async.data.corpus import CorpusReader
from w2v_async.data.vocab import scan_corpus
from w2v_async.engines.base import Checkpointing
from w2v_async.io import load_checkpoint, load_vectors, unpack_words

ray = pytest.importorskip("ray")
GLOVE = ["--model", "glove", "--min-count", "1", "--dim", "16", "--x-max", "10", "--batch-words", "100"]


@pytest.fixture(scope="module")
def local_ray():
    import logging

    ray.init(address="local", num_cpus=5, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def cooc(tmp_path_factory):
    path = planted_corpus(tmp_path_factory.mktemp("sb") / "p.txt", mix=0.1)
    vocab, enc = scan_corpus(CorpusReader(str(path)), VocabConfig(min_count=1))
    return count_cooccurrences(enc, vocab, window=5)


def test_the_command_line_trains_glove_and_checkpoints_lbfgs_state(local_ray, tmp_path):
    corpus = planted_corpus(tmp_path / "p.txt", mix=0.1)
    ck = tmp_path / "ck"
    result = CliRunner().invoke(cli, ["train", str(corpus), "-o", str(tmp_path / "g.txt"), *GLOVE, "--engine",
                                      "sandblaster", "--max-iter", "40", "--lbfgs-history", "5", "--checkpoint-dir",
                                      str(ck), "--checkpoint-every", "0", "-q", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["engine"] == "sandblaster" and summary["sandblaster"]["history"] == 5
    assert summary["downpour"]["iterations"] == 40 and len(summary["epoch_cost"]) == 40
    assert summary["epoch_cost"][-1] < 0.01 * summary["epoch_cost"][0]
    kv = load_vectors(str(tmp_path / "g.txt"))
    assert group_margin(kv.index_to_key, kv.vectors) > 0.3
    meta, arrays, _ = load_checkpoint(str(ck))
    assert meta["engine"] == "sandblaster" and meta["epoch"] == meta["epochs"] == 40
    assert arrays["lbfgs_s"].shape == arrays["lbfgs_y"].shape == (5, arrays["lbfgs_g"].shape[0])
    assert np.allclose(arrays["w_word"] + arrays["w_ctx"], kv.vectors[[kv.key_to_index[w] for w in unpack_words(arrays)]],
                       atol=1e-6)


def test_engines_refuse_each_others_checkpoints_and_sandblaster_refuses_word2vec(local_ray, tmp_path):
    corpus = planted_corpus(tmp_path / "p.txt", mix=0.1)
    ck = tmp_path / "ck"
    base = ["train", str(corpus), *GLOVE, "-q"]
    assert CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "a.txt"), "--engine", "sandblaster", "--max-iter", "3",
                                    "--checkpoint-dir", str(ck)]).exit_code == 0
    result = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "b.txt"), "--resume", str(ck)])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("Error: the checkpoint was trained with --engine sandblaster, whose state "
                                     "--engine threads cannot continue; resume with --engine sandblaster.")
    assert not (tmp_path / "b.txt").exists()
    result = CliRunner().invoke(cli, ["train", str(corpus), "-o", str(tmp_path / "c.bin"), "--engine", "sandblaster"])
    assert result.exit_code == 2 and "--engine sandblaster trains --model glove" in result.stderr


class StopAfter:
    """Interrupts whose signal arrives once the engine has polled it `polls` times (mid-pass)."""

    def __init__(self, polls: int):
        self.polls = polls

    @property
    def signal(self):
        self.polls -= 1
        return "SIGINT" if self.polls < 0 else None


def test_a_stop_mid_pass_and_resume_reach_the_uninterrupted_iterates(local_ray, cooc):
    """A signal stops the batch pass under way; the state of the last finished iteration (the
    history pairs included) is what the checkpoint holds, and resuming it reaches the same
    iterates as a run never stopped."""
    from w2v_async.engines.sandblaster import train_glove_sandblaster

    cfg, rcfg = GloveConfig(dim=8, x_max=10.0, seed=2), RayConfig(replicas=2, ps_shards=3)
    scfg = SandblasterConfig(max_iter=14, history=4, unit_entries=200, gtol=0.0, ftol=0.0)
    whole = train_glove_sandblaster(cooc, cfg, rcfg, scfg, progress=False)
    saved = []
    stopped = train_glove_sandblaster(cooc, cfg, RayConfig(replicas=3, ps_shards=2), scfg, progress=False,
                                      checkpointing=Checkpointing(save=lambda p, s: saved.append((p, s)),
                                                                  interrupts=StopAfter(130)))
    assert stopped.state.stopped and 0 < len(stopped.epoch_cost) < 14 and not saved  # the job saves on a stop
    np.testing.assert_allclose(stopped.epoch_cost, whole.epoch_cost[: len(stopped.epoch_cost)], rtol=1e-9)
    arrays = dict(stopped.params, **stopped.state.to_arrays())
    assert arrays["lbfgs_s"].shape[0] == min(4, len(stopped.epoch_cost))
    resumed = train_glove_sandblaster(cooc, cfg, rcfg, scfg, progress=False, checkpointing=Checkpointing(resume=arrays))
    assert resumed.downpour["iterations"] == 14
    np.testing.assert_allclose(resumed.epoch_cost, whole.epoch_cost, rtol=1e-8)
    for a, b in ((resumed.w_word, whole.w_word), (resumed.b_ctx, whole.b_ctx)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
