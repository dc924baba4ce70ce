"""Sandblaster on a local Ray: shard actors, replicas handed small work units, failures."""

import os
import sys
import time
import uuid

import numpy as np
import pytest

from test_sandblaster import HYPER, _problem, _run
from w2v_async.engines.sandblaster import LbfgsSettings, lbfgs
from w2v_async.engines.sandblaster_actors import (BatchPasses, GradientShard, RayShardGroup, SandblasterReplica,
                                                  join_params, split_params)

ray = pytest.importorskip("ray")
V, D = 12, 3


@pytest.fixture(scope="module")
def local_ray():
    import logging

    ray.init(address="local", num_cpus=4, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test replicas below, for the workers
    yield
    ray.shutdown()


class CrashingReplica(SandblasterReplica):
    """Dies (its process exits, as when its node goes) twice: in its second unit of batch 1,
    holding the first unpushed, and, restarted, in the first unit it gets. Marker files outlive
    the processes that Ray restarts."""

    def __init__(self, *args, marker_dir):
        super().__init__(*args)
        self.marker_dir = marker_dir
        self.seen = 0

    def run_unit(self, batch, point, unit, coo, push_now=False):
        self.seen += 1
        for name, when in (("crashed-first", batch == 1 and self.seen == 2), ("crashed-second", self.seen == 1)):
            marker = os.path.join(self.marker_dir, name)
            if when and not os.path.exists(marker) and (name == "crashed-first" or
                                                        os.path.exists(os.path.join(self.marker_dir, "crashed-first"))):
                open(marker, "w").close()
                os._exit(1)
        return super().run_unit(batch, point, unit, coo, push_now)


class SlowReplica(SandblasterReplica):
    """A straggler: the units it gets wait until the file `release` exists, which the test writes
    once a backup copy of one has come back from the other replica."""

    def __init__(self, *args, release):
        super().__init__(*args)
        self.release = release

    def run_unit(self, batch, point, unit, coo, push_now=False):
        deadline = time.monotonic() + 300  # guards against a hang only
        while not os.path.exists(self.release) and time.monotonic() < deadline:
            time.sleep(0.01)
        return super().run_unit(batch, point, unit, coo, push_now)


def _setup(coo, x0, n_shards=3, replicas=(SandblasterReplica, SandblasterReplica), n_units=9, push_every=2,
           history=10, on_result=None, replica_kwargs=None):
    params = _unflat(x0)
    run = f"test-{uuid.uuid4().hex[:8]}"
    shard_cls = ray.remote(num_cpus=0)(GradientShard)
    shards = [shard_cls.options(name=f"{run}-shard-{s}").remote(flat, history)
              for s, flat in enumerate(split_params(params, n_shards))]
    cuts = np.linspace(0, coo[0].shape[0], n_units + 1).astype(int)
    blocks = [ray.put(tuple(np.ascontiguousarray(a[lo:hi]) for a in coo)) for lo, hi in zip(cuts[:-1], cuts[1:])]
    kwargs = replica_kwargs or [{}] * len(replicas)
    actors = [ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(cls).remote(
        r, run, n_shards, V, D, HYPER, push_every, **kw) for r, (cls, kw) in enumerate(zip(replicas, kwargs))]
    group = RayShardGroup(ray, shards)
    return group, BatchPasses(ray, group, actors, blocks, on_result=on_result), actors, blocks


def _unflat(x):
    w, c = x[: V * D].reshape(V, D), x[V * D : 2 * V * D].reshape(V, D)
    return w, c, x[2 * V * D : 2 * V * D + V], x[2 * V * D + V :]


def _flat(params):
    return np.concatenate([p.ravel() for p in params])


def _local_reference(iterations):
    fg, x0 = _problem()
    state, x = _run(fg, x0, [0, x0.shape[0]], LbfgsSettings(max_iter=iterations, gtol=0.0))
    return fg, x0, state, x


def _coo(fg):
    return fg.__closure__[[c.cell_contents.__class__ for c in fg.__closure__].index(tuple)].cell_contents


def test_params_round_trip_through_the_shards():
    rng = np.random.default_rng(0)
    params = (rng.normal(size=(7, 2)), rng.normal(size=(7, 2)), rng.normal(size=7), rng.normal(size=7))
    for m in (1, 3, 7):
        back = join_params(split_params(params, m), 7, 2)
        for a, b in zip(params, back):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("failure", [None, "crash", "straggler"])
def test_distributed_passes_reach_the_local_iterates(local_ray, tmp_path, monkeypatch, failure):
    """Replicas on Ray give the in-process iterates, also when a replica dies mid-batch (twice) or
    one is slow (its units get backup copies): each unit's gradient is committed exactly once.

    The straggler holds its units until a backup copy of one has come back, and a unit is backed
    up as soon as a replica is idle (no time threshold): backups happen however fast the replicas run."""
    n = 4 if failure == "straggler" else 12
    fg, x0, reference, x_ref = _local_reference(n)
    second = {None: SandblasterReplica, "crash": CrashingReplica, "straggler": SlowReplica}[failure]
    kwargs = [{}, {"marker_dir": str(tmp_path)} if failure == "crash" else
              {"release": str(tmp_path / "release")} if failure == "straggler" else {}]
    made = []
    on_result = None
    from w2v_async.engines import sandblaster_actors

    if failure == "crash":  # the restarted replica gets units at once, and nothing backs them up: the
        # pass waits for them, so that it dies the second time before the run can end
        monkeypatch.setattr(sandblaster_actors, "RESTART_WAIT_S", 0.0)
        monkeypatch.setattr(sandblaster_actors, "BACKUP_MIN_S", float("inf"))
    if failure == "straggler":
        monkeypatch.setattr(sandblaster_actors, "BACKUP_AFTER", 0.0)
        monkeypatch.setattr(sandblaster_actors, "BACKUP_MIN_S", 0.0)

        def on_result(results):
            if made[0].backups:
                (tmp_path / "release").touch()

    group, passes, actors, _ = _setup(_coo(fg), x0, replicas=(SandblasterReplica, second), replica_kwargs=kwargs,
                                      on_result=on_result)
    made.append(passes)
    state = lbfgs(group, passes, LbfgsSettings(max_iter=n, gtol=0.0))
    x = _flat(join_params(group.call("get", "x"), V, D))
    np.testing.assert_allclose(state.history, reference.history, rtol=1e-9)
    np.testing.assert_allclose(x, _flat(_unflat(x_ref)), rtol=1e-7, atol=1e-9)
    if failure == "crash":
        assert sorted(p.name for p in tmp_path.iterdir()) == ["crashed-first", "crashed-second"]
        assert passes.retried >= 1  # at least the unit it held unpushed and the one it died in
    if failure == "straggler":
        assert passes.backups > 0


def test_the_engine_learns_planted_groups_like_adagrad(local_ray, tmp_path):
    """train_glove_sandblaster end to end: L-BFGS on the batch objective learns the planted groups,
    and its final cost over all entries is below the threaded AdaGrad engine's after 25 epochs."""
    from conftest import group_margin, planted_corpus
    from w2v_async.config import GloveConfig, RayConfig, SandblasterConfig, VocabConfig
    from w2v_async.data.cooccur import count_cooccurrences
    from w2v_async.data.corpus import CorpusReader
    from w2v_async.data.vocab import scan_corpus
    from w2v_async.engines.sandblaster import train_glove_sandblaster
    from w2v_async.engines.threads import train_glove
    from test_many_threads import _glove_cost

    vocab, enc = scan_corpus(CorpusReader(str(planted_corpus(tmp_path / "p.txt", mix=0.1))), VocabConfig(min_count=1))
    cooc = count_cooccurrences(enc, vocab, window=5)
    cfg = GloveConfig(dim=16, x_max=10.0, threads=2, seed=3)
    res = train_glove_sandblaster(cooc, cfg, RayConfig(replicas=2, ps_shards=2),
                                  SandblasterConfig(max_iter=150, unit_entries=100), progress=False)
    adagrad = train_glove(cooc, GloveConfig(dim=16, x_max=10.0, threads=2, seed=3, epochs=25), progress=False)
    assert res.downpour["units"] == -(-cooc.nnz // 100) and res.downpour["iterations"] > 10
    assert res.epoch_cost[-1] < 0.2 * res.epoch_cost[0]
    assert _glove_cost(res, cooc, x_max=10.0) < _glove_cost(adagrad, cooc, x_max=10.0)
    assert group_margin(cooc.vocab.words, res.vectors()) > 0.3
