"""Downpour on a Ray cluster of several nodes started on this machine (ray.cluster_utils.Cluster),
each with its own object store: corpus blocks travel from the driver's node to the replicas'
nodes, and a replica's whole node is removed mid-run."""

import time

import numpy as np
import pytest

from conftest import group_margin, planted_corpus
from w2v_async.config import RayConfig, VocabConfig, Word2VecConfig
from w2v_async.data.corpus import CorpusReader
from w2v_async.data.vocab import scan_corpus

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

NODE = dict(num_cpus=1, object_store_memory=80 * 2**20, include_dashboard=False)


@pytest.fixture(scope="module")
def cluster():
    """A head without CPUs (the driver's node: the corpus blocks are put there) and five one-CPU
    nodes: two shards and two replicas take four of them, one is spare for a restart."""
    import logging

    c = Cluster(initialize_head=True, head_node_args={**NODE, "num_cpus": 0})
    for _ in range(5):
        c.add_node(**NODE)
    c.wait_for_nodes()
    ray.init(address=c.address, logging_level=logging.ERROR, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


def _node_of(actor) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # a restarting actor answers once it is up again
        try:
            return ray.get(actor.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id()))
        except (ray.exceptions.ActorUnavailableError, ray.exceptions.RayActorError):
            time.sleep(0.5)
    raise AssertionError("the replica did not come back within 2 minutes")


def _remove_a_replicas_node(cluster, seen, at, look_again_at, **stall):
    """A hook (replicas, count): at count `at`, note every replica's node in seen["nodes"]; then
    remove the node of the replica that the next task goes to, with that task certainly unfinished
    (test_downpour.kill_a_replica_mid_task, with stall's method and stall), seen["killed"] its
    index; at `look_again_at` or later, note where that replica runs now (seen["after"])."""
    from test_downpour import kill_a_replica_mid_task

    def note(replicas):
        seen["nodes"] = [_node_of(r) for r in replicas]

    def remove(replicas, r):
        seen["killed"] = r
        victim = next(n for n in cluster.list_all_nodes() if n.node_id == seen["nodes"][r])
        cluster.remove_node(victim, allow_graceful=False)

    stall_hook, _ = kill_a_replica_mid_task(remove, at, before=note, **stall)

    def hook(replicas, count):
        stall_hook(replicas, count)
        if count >= look_again_at and "killed" in seen and "after" not in seen:
            seen["after"] = _node_of(replicas[seen["killed"]])

    return hook


def test_replicas_on_other_nodes_fetch_their_blocks_and_survive_losing_a_node(cluster, tmp_path):
    from w2v_async.engines.ray import train_word2vec_ray

    path = planted_corpus(tmp_path / "c.txt", n_sentences=6000)
    vocab, enc = scan_corpus(CorpusReader(str(path)), VocabConfig(min_count=1))
    cfg = Word2VecConfig(dim=16, window=3, sample=0.0, epochs=2, threads=1, seed=1)
    rcfg = RayConfig(replicas=2, ps_shards=2, batch_words=500, job_words=20_000)
    head = ray.get_runtime_context().get_node_id()
    seen = {}

    res = train_word2vec_ray(enc, vocab, cfg, rcfg, progress=False,
                             after_job=_remove_a_replicas_node(cluster, seen, at=2, look_again_at=8))
    assert head not in seen["nodes"] and len(set(seen["nodes"])) == 2  # replicas run away from the blocks
    assert seen["after"] != seen["nodes"][seen["killed"]]  # the lost replica was restarted on another node
    assert res.downpour["jobs_retried"] >= 1
    assert res.words_trained == 2 * enc.n_words  # every job completed once in the end
    assert group_margin(vocab.words, res.w_in) > 0.3


def test_a_job_carries_one_block_of_the_corpus_not_the_corpus():
    from w2v_async.data.encoded import EncodedCorpus
    from w2v_async.engines.ray import make_jobs, sentence_blocks

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 300, size=5000)
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    enc = EncodedCorpus(np.zeros(starts[-1], np.int32), starts)
    blocks = sentence_blocks(enc, 20_000)
    jobs = make_jobs(enc, blocks, epochs=2)
    assert len(jobs) == 2 * (len(blocks) - 1) and len(blocks) - 1 >= enc.n_words // 20_000
    for job in jobs:  # a job is one block: about job_words words, whole sentences
        k, first = job.payload
        assert first == 0 and job.position == blocks[k]
        assert job.n_units == starts[blocks[k + 1]] - starts[blocks[k]] <= 20_000 + lengths.max()
    # resuming mid-block starts inside the block
    resumed = make_jobs(enc, blocks, epochs=2, start_epoch=1, start_sentence=int(blocks[3]) + 5)
    assert resumed[0].payload == (3, 5) and resumed[0].epoch == 1
    assert sum(j.n_units for j in resumed) == starts[-1] - starts[int(blocks[3]) + 5]


def test_sandblaster_across_nodes_survives_losing_a_replicas_node(cluster, tmp_path, monkeypatch):
    """Sandblaster with its shards and replicas on other nodes than the driver's: a replica's node
    removed mid-pass changes nothing in the iterates (its units are handed out again, each
    gradient committed once), and Ray restarts the replica elsewhere."""
    from w2v_async.config import GloveConfig, SandblasterConfig
    from w2v_async.data.cooccur import count_cooccurrences
    from w2v_async.engines.sandblaster import train_glove_sandblaster
    from w2v_async.engines import sandblaster_actors

    vocab, enc = scan_corpus(CorpusReader(str(planted_corpus(tmp_path / "c.txt", mix=0.1))), VocabConfig(min_count=1))
    cooc = count_cooccurrences(enc, vocab, window=5)
    cfg, rcfg = GloveConfig(dim=8, x_max=10.0, seed=2), RayConfig(replicas=2, ps_shards=1)
    scfg = SandblasterConfig(max_iter=8, unit_entries=100, gtol=0.0, ftol=0.0)
    whole = train_glove_sandblaster(cooc, cfg, rcfg, scfg, progress=False)
    head = ray.get_runtime_context().get_node_id()
    seen = {}

    # the next unit (a first copy: backups are sent with push_now) goes to a replica whose node is
    # removed before it can run; no backup copies, so that only a retry brings that unit back
    monkeypatch.setattr(sandblaster_actors, "BACKUP_MIN_S", float("inf"))
    hook = _remove_a_replicas_node(cluster, seen, at=40, look_again_at=80, method="run_unit",
                                   stall=lambda args: len(args) == 4)
    res = train_glove_sandblaster(cooc, cfg, rcfg, scfg, progress=False, after_result=hook)
    assert head not in seen["nodes"] and len(set(seen["nodes"])) == 2
    assert seen["after"] != seen["nodes"][seen["killed"]] and res.downpour["units_retried"] >= 1
    np.testing.assert_allclose(res.epoch_cost, whole.epoch_cost, rtol=1e-9)
    np.testing.assert_allclose(res.w_word, whole.w_word, rtol=1e-5, atol=1e-6)
