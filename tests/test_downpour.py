"""The Ray engine (Downpour SGD): batch kernels against the threaded kernels, one replica against the
threaded update, a run end to end through the CLI, and a replica killed mid-run."""

import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import group_margin, planted_corpus, random_cooc
from w2v_async.models import sampling
from w2v_async.cli import cli
from w2v_async.config import RayConfig, VocabConfig, Word2VecConfig
from w2v_async.data.corpus import CorpusReader
from w2v_async.engines.ray_actors import sample, train_batch
from w2v_async.engines.base import init_matrices, thread_rng_states, thread_scratch
from w2v_async.engines.threads import train_word2vec
from w2v_async.data.vocab import scan_corpus

MODES = [("sgns", "window"), ("sgns", "pair"), ("cbow", None)]


def _encode(path):
    return scan_corpus(CorpusReader(str(path)), VocabConfig(min_count=1))


@pytest.mark.parametrize("model, batching", MODES)
def test_sampled_batch_trains_exactly_as_the_threaded_epoch_kernel(tmp_path, model, batching):
    """Same RNG state, same sentences (under 10,000 words, so the learning rate is constant)."""
    vocab, enc = _encode(planted_corpus(tmp_path / "c.txt", n_sentences=300))
    cfg = Word2VecConfig(model=model, batching=batching, dim=16, window=3, sample=1e-3, epochs=1, threads=1, seed=3)
    threaded = train_word2vec(enc, vocab, cfg, progress=False)
    w_in, w_out = init_matrices(len(vocab), cfg.dim, cfg.seed, cfg.init_scale)
    tables = (vocab.keep_probs(cfg.sample), *sampling.build_alias_table(vocab.noise_distribution()))
    rng = thread_rng_states(cfg.seed, 1)[0]
    batch = sample((enc.ids, enc.sent_starts), np.arange(enc.n_sentences), tables, rng, cfg)
    loss, examples = train_batch(w_in, w_out, batch, cfg, cfg.start_alpha, thread_scratch(cfg, 100))
    assert np.array_equal(w_in, threaded.w_in) and np.array_equal(w_out, threaded.w_out)
    assert examples == threaded.epoch_examples[0] and batch.words_read == enc.n_words
    assert loss == pytest.approx(threaded.epoch_loss_sum[0], rel=1e-6)


ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    import logging

    ray.init(address="local", num_cpus=4, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.parametrize("model, batching", MODES)
def test_one_replica_fetching_and_pushing_every_batch_makes_the_threaded_update(local_ray, tmp_path, model,
                                                                               batching):
    """One replica, n_fetch = n_push = 1, SGD shards: pull the rows, train the compact copy, push the
    change. Its first batch is the whole (small) corpus, so the result is the threaded kernel's."""
    from w2v_async.engines.ray import train_word2vec_ray

    vocab, enc = _encode(planted_corpus(tmp_path / "c.txt", n_sentences=300))
    cfg = Word2VecConfig(model=model, batching=batching, dim=16, window=3, sample=1e-3, epochs=1, threads=1, seed=3)
    threaded = train_word2vec(enc, vocab, cfg, progress=False)
    rcfg = RayConfig(replicas=1, ps_shards=2, n_fetch=1, n_push=1, batch_words=10**6, job_words=10**6)
    res = train_word2vec_ray(enc, vocab, cfg, rcfg, progress=False)
    np.testing.assert_allclose(res.w_in, threaded.w_in, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res.w_out, threaded.w_out, rtol=1e-5, atol=1e-7)
    assert not np.array_equal(res.w_in, init_matrices(len(vocab), cfg.dim, cfg.seed, cfg.init_scale)[0])
    assert res.downpour["pushes"] == 1 and res.downpour["mean_staleness"] == 0
    assert res.epoch_examples == threaded.epoch_examples


def test_cli_ray_engine_end_to_end_learns_and_reports_staleness(local_ray, tmp_path):
    """300,000 words an epoch: two jobs (of 200,000 words at most) per epoch and four in flight (two
    replicas, two each), so the fourth epoch's jobs go out only after three earlier jobs finished,
    and its loss is below the first epoch's (with three epochs this failed once in about 20 runs)."""
    corpus = planted_corpus(tmp_path / "c.txt", n_sentences=15_000)
    out = tmp_path / "v.bin"
    result = CliRunner().invoke(cli, ["train", str(corpus), "-o", str(out), "--engine", "ray", "--replicas", "2",
                                      "--ps-shards", "2", "--batch-words", "5000", "--n-fetch", "2", "--n-push", "1",
                                      "--min-count", "1", "--dim", "16", "--window", "3", "--epochs", "4", "--json",
                                      "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["engine"] == "ray" and summary["words_trained"] == 4 * 15_000 * 20
    assert summary["downpour"]["pushes"] > 0 and summary["downpour"]["mean_staleness"] >= 0
    assert summary["epoch_loss"][-1] < summary["epoch_loss"][0]
    from w2v_async.io import load_vectors

    kv = load_vectors(str(out))
    assert group_margin(kv.index_to_key, kv.vectors) > 0.3


def _block(replica):
    import time

    time.sleep(600)  # until the replica is killed; a guard against a hang, never reached


class _Stand:
    """Stands for a replica in a Ray driver's list: its `method` tasks go through send(self, args),
    everything else straight to the replica."""

    def __init__(self, actor, method, send):
        self.actor, self.method, self.send = actor, method, send

    def __getattr__(self, name):
        if name != self.method:
            return getattr(self.actor, name)
        stand = self

        class Method:
            @staticmethod
            def remote(*args):
                return stand.send(stand, args)

        return Method


def kill_a_replica_mid_task(kill, at=2, method="run", before=lambda replicas: None, stall=lambda args: True):
    """A hook (replicas, count) that a Ray driver calls after each result, and what it saw: at
    count `at`, before(replicas) runs, and the next `method` task the driver sends (one that
    stall(args) accepts) goes out behind a task that only a kill ends; then kill(replicas, index)
    runs at once on that replica. The task is certainly unfinished and must be done again, however
    fast or busy the replicas are. seen["killed"]: the replica's index."""
    seen, lists = {}, []

    def send(stand, args):
        task = getattr(stand.actor, method)
        if "killed" in seen or not stall(args):
            return task.remote(*args)
        stand.actor.__ray_call__.remote(_block)
        ref = task.remote(*args)
        replicas = lists[0]
        seen["killed"] = next(r for r, s in enumerate(replicas) if s is stand)
        replicas[:] = [s.actor for s in replicas]  # the driver's own handles again
        kill(replicas, seen["killed"])
        return ref

    def hook(replicas, count):
        if count == at:
            before(replicas)
            lists.append(replicas)
            replicas[:] = [_Stand(r, method, send) for r in replicas]

    return hook, seen


def test_a_killed_replica_is_restarted_and_its_jobs_are_trained_again(local_ray, tmp_path):
    from w2v_async.engines.ray import train_word2vec_ray

    vocab, enc = _encode(planted_corpus(tmp_path / "c.txt", n_sentences=6000))
    cfg = Word2VecConfig(dim=16, window=3, sample=0.0, epochs=2, threads=1, seed=1)
    rcfg = RayConfig(replicas=2, ps_shards=2, batch_words=500, job_words=20_000)
    hook, seen = kill_a_replica_mid_task(lambda replicas, r: ray.kill(replicas[r], no_restart=False))
    res = train_word2vec_ray(enc, vocab, cfg, rcfg, progress=False, after_job=hook)
    assert "killed" in seen and res.downpour["jobs_retried"] >= 1
    assert res.words_trained == 2 * enc.n_words  # every job completed exactly once in the end
    assert group_margin(vocab.words, res.w_in) > 0.3


def test_adagrad_shards_learn_and_their_sums_survive_a_resume(local_ray, tmp_path):
    from w2v_async.io import checkpoint_files, load_checkpoint, load_vectors

    corpus = planted_corpus(tmp_path / "c.txt")
    args = ["train", str(corpus), "--engine", "ray", "--ps-optimizer", "adagrad", "--batch-words", "3000",
            "--min-count", "1", "--dim", "16", "--window", "3", "--epochs", "3", "--sample", "0", "-q"]
    ck = tmp_path / "ck"
    assert CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "a.bin"), "--checkpoint-dir", str(ck)]).exit_code == 0
    kv = load_vectors(str(tmp_path / "a.bin"))
    assert group_margin(kv.index_to_key, kv.vectors) > 0.3
    os.unlink(checkpoint_files(str(ck))[0][1])  # back to the end of epoch 2
    _, before, _ = load_checkpoint(str(ck))
    assert before["ps_gradsq_in"].any() and before["ps_gradsq_out"].any()
    assert CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "b.bin"), "--resume", str(ck)]).exit_code == 0
    _, after, _ = load_checkpoint(str(ck))
    # the shards started from the saved sums (from zero, rows the last epoch missed would fall back)
    assert np.all(after["ps_gradsq_in"] >= before["ps_gradsq_in"])
    assert np.all(after["ps_gradsq_out"] >= before["ps_gradsq_out"])
    assert after["run_epoch"].tolist() == [3]


def test_checkpoints_resume_across_engines(local_ray, tmp_path):
    """A Ray run checkpoints in the threaded format: Ray resumes it, and so do 2 threads; Ray
    resumes a one-thread checkpoint too. Every resumed run trains the rest of the words, once."""
    corpus = planted_corpus(tmp_path / "c.txt")
    settings = ["--min-count", "1", "--dim", "16", "--window", "3", "--epochs", "3", "--seed", "2", "-q", "--json"]
    ray_opts = ["--engine", "ray", "--batch-words", "3000"]

    def train(*args):
        result = CliRunner().invoke(cli, ["train", str(corpus), *settings, *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    from w2v_async.io import checkpoint_files, load_checkpoint

    train("-o", tmp_path / "ray.bin", *ray_opts, "--checkpoint-dir", tmp_path / "ck-ray")
    files = checkpoint_files(str(tmp_path / "ck-ray"))
    assert [seq for seq, _ in files] == [3, 2]  # after epochs 1, 2 and at the end; the newest two kept
    os.unlink(files[0][1])  # as if it had died in epoch 3
    meta, arrays, _ = load_checkpoint(str(tmp_path / "ck-ray"))
    assert meta["epoch"] == 3 and arrays["run_epoch"].tolist() == [2] and arrays["run_position"].tolist() == [0]
    words = 3 * 1500 * 20
    for name, engine in [("ray-from-ray", ray_opts), ("threads-from-ray", ["--threads", "2"])]:
        ck = tmp_path / f"ck-{name}"
        shutil.copytree(tmp_path / "ck-ray", ck)
        summary = train("-o", tmp_path / f"{name}.bin", *engine, "--resume", ck)
        assert summary["words_trained"] == words and len(summary["epoch_loss"]) == 3
    train("-o", tmp_path / "one.bin", "--threads", "1", "--checkpoint-dir", tmp_path / "ck-one")
    os.unlink(checkpoint_files(str(tmp_path / "ck-one"))[0][1])
    summary = train("-o", tmp_path / "ray-from-one.bin", *ray_opts, "--resume", tmp_path / "ck-one")
    assert summary["words_trained"] == words and summary["engine"] == "ray"
    from w2v_async.io import load_vectors

    for name in ("ray-from-ray", "threads-from-ray", "ray-from-one"):
        kv = load_vectors(str(tmp_path / f"{name}.bin"))
        assert group_margin(kv.index_to_key, kv.vectors) > 0.3, name


def test_glove_one_replica_with_one_batch_makes_the_threaded_adagrad_update(local_ray):
    """The AdaGrad sums travel with the rows: pull, glove.c's update on the compact copy, push."""
    from w2v_async.config import GloveConfig
    from w2v_async.engines.ray import train_glove_ray
    from w2v_async.engines.threads import train_glove

    cooc = random_cooc(100)
    cfg = GloveConfig(dim=8, epochs=1, threads=1, seed=4, x_max=10.0)
    threaded = train_glove(cooc, cfg, progress=False)
    rcfg = RayConfig(replicas=1, ps_shards=3, batch_words=10**6, job_words=10**6)
    res = train_glove_ray(cooc, cfg, rcfg, progress=False)
    for name in ("w_word", "w_ctx", "b_word", "b_ctx", "gradsq_word", "gradsq_b_ctx"):
        np.testing.assert_allclose(res.params[name], threaded.params[name], rtol=1e-5, atol=1e-7, err_msg=name)
    assert not np.all(res.params["gradsq_word"] == 1.0)
    assert res.epoch_cost[0] == pytest.approx(threaded.epoch_cost[0], rel=1e-5)


def test_glove_on_ray_learns_checkpoints_and_resumes_on_threads(local_ray, tmp_path):
    from w2v_async.io import checkpoint_files

    corpus = planted_corpus(tmp_path / "c.txt", mix=0.1)
    args = ["train", str(corpus), "--model", "glove", "--min-count", "1", "--dim", "16", "--x-max", "10",
            "--epochs", "6", "-q", "--json"]
    ck = tmp_path / "ck"
    result = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "g.bin"), "--engine", "ray", "--batch-words", "100",
                                      "--checkpoint-dir", str(ck)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["engine"] == "ray" and summary["epoch_cost"][-1] < 0.5 * summary["epoch_cost"][0]
    from w2v_async.io import load_vectors

    kv = load_vectors(str(tmp_path / "g.bin"))
    assert group_margin(kv.index_to_key, kv.vectors) > 0.3
    os.unlink(checkpoint_files(str(ck))[0][1])  # back to the end of epoch 5
    result = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "t.bin"), "--threads", "2", "--resume", str(ck)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["entries_trained"] == summary["entries_trained"]


def _start(n_words, names_shapes, seed=0):
    """A StartFrom giving every other word a source row (random arrays of the given shapes)."""
    from w2v_async.data.init import StartFrom

    rng = np.random.default_rng(seed)
    arrays = {name: (rng.standard_normal(shape) * 0.1 + (1.5 if name.startswith("gradsq") else 0)).astype(np.float32)
              for name, shape in names_shapes.items()}
    rows = np.where(np.arange(n_words) % 2 == 0, np.arange(n_words) // 2, -1)
    return StartFrom(arrays, rows)


def test_downpour_shards_start_from_init_as_the_threads_do(local_ray, tmp_path):
    """--init on Ray: one replica fetching and pushing every batch trains what the threaded run
    trains from the same source rows."""
    from w2v_async.engines.base import Checkpointing
    from w2v_async.engines.ray import train_word2vec_ray

    vocab, enc = _encode(planted_corpus(tmp_path / "c.txt", n_sentences=300))
    cfg = Word2VecConfig(dim=16, window=3, sample=1e-3, epochs=1, threads=1, seed=3)
    start = _start(len(vocab), {"w_in": (len(vocab), 16), "w_out": (len(vocab), 16)})
    threaded = train_word2vec(enc, vocab, cfg, progress=False, checkpointing=Checkpointing(init=start))
    rcfg = RayConfig(replicas=1, ps_shards=2, n_fetch=1, n_push=1, batch_words=10**6, job_words=10**6)
    res = train_word2vec_ray(enc, vocab, cfg, rcfg, progress=False, checkpointing=Checkpointing(init=start))
    np.testing.assert_allclose(res.w_in, threaded.w_in, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res.w_out, threaded.w_out, rtol=1e-5, atol=1e-7)
    assert not np.allclose(threaded.w_in, train_word2vec(enc, vocab, cfg, progress=False).w_in)


def test_glove_on_ray_starts_from_init_as_the_threads_do(local_ray):
    from w2v_async.config import GloveConfig
    from w2v_async.engines.base import GLOVE_ARRAY_NAMES, Checkpointing
    from w2v_async.engines.ray import train_glove_ray
    from w2v_async.engines.threads import train_glove

    cooc = random_cooc(100)
    n = len(cooc.vocab)
    start = _start(n, {name: (n, 8) if name in ("w_word", "w_ctx", "gradsq_word", "gradsq_ctx") else (n,)
                       for name in GLOVE_ARRAY_NAMES})
    cfg = GloveConfig(dim=8, epochs=1, threads=1, seed=4, x_max=10.0)
    threaded = train_glove(cooc, cfg, progress=False, checkpointing=Checkpointing(init=start))
    rcfg = RayConfig(replicas=1, ps_shards=3, batch_words=10**6, job_words=10**6)
    res = train_glove_ray(cooc, cfg, rcfg, progress=False, checkpointing=Checkpointing(init=start))
    for name in GLOVE_ARRAY_NAMES:
        np.testing.assert_allclose(res.params[name], threaded.params[name], rtol=1e-5, atol=1e-7, err_msg=name)
    assert not np.allclose(threaded.params["w_word"], train_glove(cooc, cfg, progress=False).params["w_word"])


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad"])
def test_downpour_shards_keep_locked_rows(local_ray, tmp_path, optimizer):
    """--lock-init on Ray: the shards scale each pushed change of a locked input row by 0, so the
    source's rows come back bit-identical while the others train."""
    from w2v_async.engines.base import Checkpointing
    from w2v_async.engines.ray import train_word2vec_ray

    vocab, enc = _encode(planted_corpus(tmp_path / "c.txt", n_sentences=300))
    cfg = Word2VecConfig(dim=16, window=3, sample=1e-3, epochs=1, threads=1, seed=3)
    start = _start(len(vocab), {"w_in": (len(vocab), 16), "w_out": (len(vocab), 16)})
    start.lockf = np.where(start.rows >= 0, 0.0, 1.0).astype(np.float32)
    rcfg = RayConfig(replicas=2, ps_shards=2, n_fetch=2, n_push=1, batch_words=2000, job_words=200_000,
                     ps_optimizer=optimizer)
    res = train_word2vec_ray(enc, vocab, cfg, rcfg, progress=False,
                             checkpointing=Checkpointing(init=start, lockf=start.lockf))
    old = np.flatnonzero(start.rows >= 0)
    assert np.array_equal(res.w_in[old], start.arrays["w_in"][start.rows[old]])
    new = np.flatnonzero(start.rows < 0)
    fresh = init_matrices(len(vocab), cfg.dim, cfg.seed, cfg.init_scale)[0]
    assert not np.allclose(res.w_in[new], fresh[new]) and not np.allclose(res.w_out[old], start.arrays["w_out"][old // 2])


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad"])
def test_a_shard_scales_a_locked_row_s_step_not_its_gradient(optimizer):
    """--lock-factor f on Ray: the row moves f times the step it would take (AdaGrad's too, whose
    division by the root of the squared sums would cancel an f applied to the change itself)."""
    from w2v_async.engines.ray_actors import ParamShard

    start = {"w_in": np.zeros((2, 3), np.float32)}
    delta = np.array([[0.2, -0.4, 0.1], [0.2, -0.4, 0.1]], np.float32)
    free = ParamShard(start, 1, optimizer, 0.05)
    scaled = ParamShard(start, 1, optimizer, 0.05, scale={"w_in": np.array([0.25, 1.0], np.float32)})
    for shard in (free, scaled):
        shard.push({"w_in": (np.array([0, 1]), delta)}, 0)
    got, want = scaled.rows()[0]["w_in"], free.rows()[0]["w_in"]
    assert np.allclose(got[0], 0.25 * want[0]) and np.array_equal(got[1], want[1]) and np.abs(want).min() > 0
