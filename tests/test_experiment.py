"""`w2v-async experiment` (issue 15): every scheme learns a planted corpus, the sparsity statistics
of the sampled updates equal a brute-force count, a budget stops a run, and the report's files
exist with valid PNGs (or, without matplotlib, the tables and a one-line error)."""

import json
import logging
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import group_margin, planted_corpus
from w2v_async.cli import cli
from w2v_async.config import ExperimentConfig, VocabConfig, Word2VecConfig
from w2v_async.data.corpus import CorpusReader
from w2v_async.data.vocab import scan_corpus
from w2v_async.errors import ConfigError
from w2v_async.experiment.schemes import Runner, schemes
from w2v_async.experiment.sparsity import collisions_by_rank, update_hypergraphs

ray = pytest.importorskip("ray")
PNG = b"\x89PNG\r\n\x1a\n"
SMALL = dict(dim=16, min_count=1, epochs=3, budget_s=60.0, snapshots=2, threads=(1, 2, 3))


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=4, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield
    ray.shutdown()


def _encode(path):
    return scan_corpus(CorpusReader(str(path)), VocabConfig(min_count=1))


@pytest.mark.parametrize("model", ["sgns", "glove"])
def test_every_scheme_learns_the_planted_groups(local_ray, tmp_path, model):
    """Each scheme's final vectors separate the planted topic groups, and its snapshots come in
    time order with words trained growing."""
    path = planted_corpus(tmp_path / "c.txt", mix=0.1 if model == "glove" else 0.0)
    vocab, encoded = _encode(path)
    # every scheme runs all its epochs (iterations): the budget only guards against a hang, so that
    # a busy machine cannot cut a scheme short of learning the groups
    cfg = ExperimentConfig(model=model, **{**SMALL, "epochs": 3 if model == "sgns" else 25, "budget_s": 3600.0},
                           max_iter=60)
    cooc = None
    if model == "glove":
        from w2v_async.data.cooccur import count_cooccurrences

        cooc = count_cooccurrences(encoded, vocab, 10, True, 0.1, 1, str(tmp_path))
    runner = Runner(cfg, encoded, vocab, cooc, spill_dir=str(tmp_path))
    names = [s.name for s in schemes(cfg)]
    expected = {"sgns": ["serial", "global-lock", "row-locks", "hogwild", "hogbatch", "downpour-1-1", "downpour-8-8"],
                "glove": ["serial", "global-lock", "row-locks", "hogwild", "downpour-1-1", "downpour-8-8",
                          "sandblaster"]}[model]
    assert names == expected
    for scheme in schemes(cfg):
        run = runner.compare(scheme, lambda msg: None)
        final = run.snapshots[-1]
        assert group_margin(vocab.words, final.vectors) > (0.3 if model == "sgns" else 0.2), scheme.name
        assert [s.seconds for s in run.snapshots] == sorted(s.seconds for s in run.snapshots)
        assert [s.words for s in run.snapshots] == sorted(s.words for s in run.snapshots) and final.words > 0
        assert run.workers == (1 if scheme.name == "serial" else max(cfg.workers, 2 if scheme.on_ray else 1))
        if scheme.downpour:
            assert run.extra["staleness_batches"] == pytest.approx(run.extra["mean_staleness"] * scheme.downpour[1])


def test_a_budget_stops_a_scheme_early(tmp_path, monkeypatch):
    """The budget stops a run of hours. The recorder's clock is one the test moves: each snapshot
    takes one snapshot interval, so the budget runs out once it has allowed its snapshots, however
    fast or busy the machine is."""
    from types import SimpleNamespace

    from w2v_async.experiment import record

    clock = [0.0]
    monkeypatch.setattr(record, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    take = record.Recorder._take

    def take_and_tick(self, *args):
        before = len(self.run.snapshots)
        take(self, *args)
        clock[0] += (len(self.run.snapshots) - before) * self.every_s

    monkeypatch.setattr(record.Recorder, "_take", take_and_tick)
    vocab, encoded = _encode(planted_corpus(tmp_path / "c.txt", n_sentences=3000))
    cfg = ExperimentConfig(**{**SMALL, "epochs": 10_000, "budget_s": 1.0})
    run = Runner(cfg, encoded, vocab).compare(schemes(cfg)[3], lambda msg: None)  # Hogwild
    assert run.extra["epochs_done"] < 10_000
    every = cfg.budget_s / (cfg.n_snapshots + 1)
    # the budget's timed snapshots, then any the engine offered before it saw the budget, then the final one
    assert len(run.snapshots) >= cfg.n_snapshots + 2
    assert [s.seconds for s in run.snapshots] == pytest.approx([k * every for k in range(len(run.snapshots))])
    assert run.seconds == pytest.approx(len(run.snapshots) * every) and run.seconds > cfg.budget_s
    assert [s.words for s in run.snapshots] == sorted(s.words for s in run.snapshots)


def _brute_force_stats(edges, n_rows):
    """(Omega, Delta, rho) of a list of row sets, by definition."""
    edges = [set(e) for e in edges]
    degree = np.zeros(n_rows, int)
    for e in edges:
        for v in e:
            degree[v] += 1
    rho = max(sum(1 for f in edges if e & f) for e in edges)
    return max(len(e) for e in edges), degree.max() / len(edges), rho / len(edges)


def _edges_by_hand(batch, n_sent, n_words, k):
    """Skip-gram pair updates of a sample_batch batch, walked in Python: {context, V + center,
    V + negatives}, one per (center, context) pair."""
    words, sent_bounds, reach, neg_bounds, negatives = batch
    edges = []
    for s in range(n_sent):
        a, b = sent_bounds[s], sent_bounds[s + 1]
        sent = words[a:b]
        for i in range(len(sent)):
            negs = negatives[neg_bounds[a + i]: neg_bounds[a + i + 1]]
            contexts = [j for j in range(max(0, i - reach[a + i]), min(len(sent), i + reach[a + i] + 1)) if j != i]
            for q, j in enumerate(contexts):
                edges.append({int(sent[j])} | {n_words + int(w) for w in [sent[i], *negs[q * k: (q + 1) * k]]})
    return edges


def test_sparsity_of_sampled_updates_equals_a_brute_force_count(tmp_path):
    from w2v_async.models.sampling import build_alias_table
    from w2v_async.models.sparsity import hypergraph_stats, update_edges
    from w2v_async.models.word2vec_batch import sample_batch

    vocab, encoded = _encode(planted_corpus(tmp_path / "c.txt", n_sentences=60, length=12))
    w2v, n = Word2VecConfig(), len(vocab)
    prob, alias = build_alias_table(vocab.noise_distribution())
    tables = (vocab.keep_probs(w2v.sample), prob, alias)
    sentences = np.arange(encoded.n_sentences, dtype=np.int64)
    m = encoded.n_words
    batch = (np.zeros(m, np.int32), np.zeros(len(sentences) + 1, np.int64), np.zeros(m, np.int32),
             np.zeros(m + 1, np.int64), np.zeros(m * 2 * w2v.window * w2v.negative, np.int32))
    n_sent = sample_batch((encoded.ids, encoded.sent_starts, sentences), tables, np.array([3], np.uint64), w2v.windows,
                          w2v.negative, 0, batch)[0]
    edges = _edges_by_hand(batch, n_sent, n, w2v.negative)
    rows, bounds = update_edges(batch, n_sent, n, w2v.negative, 0)
    assert [set(rows[bounds[e]: bounds[e + 1]].tolist()) for e in range(len(bounds) - 1)] == edges
    assert hypergraph_stats(rows, bounds, 2 * n) == pytest.approx(_brute_force_stats(edges, 2 * n))
    # without the 5 most frequent words' rows
    cut = [{v for v in e if v % n >= 5 and v < 2 * n} for e in edges]
    rows, bounds = update_edges(batch, n_sent, n, w2v.negative, 5)
    kept = [e for e in cut if e]
    omega, delta, rho = hypergraph_stats(rows, bounds, 2 * n)
    ref = _brute_force_stats(kept, 2 * n)
    assert (omega, delta * len(edges), rho * len(edges)) == pytest.approx((ref[0], ref[1] * len(kept), ref[2] * len(kept)))


def test_update_hypergraphs_report_both_updates_and_fall_without_the_head(tmp_path):
    from conftest import zipf_corpus

    vocab, encoded = _encode(zipf_corpus(tmp_path / "z.txt", n_tokens=60_000))
    stats = update_hypergraphs(encoded, vocab, ExperimentConfig(sparsity_words=20_000, dim=16))
    assert [(h["update"], h["without_top"]) for h in stats] == [("pair", 0), ("pair", 100), ("pair", 1000),
                                                                ("window", 0), ("window", 100), ("window", 1000)]
    pair = [h for h in stats if h["update"] == "pair"]
    assert pair[0]["omega"] == 2 + 5 and pair[0]["delta"] > pair[1]["delta"] > pair[2]["delta"]
    assert all(h["words"] >= 20_000 for h in stats)


def test_collisions_by_rank_split_writes_by_bucket_and_matrix():
    writes = np.zeros(2 * 2000, np.int64)
    collided = np.zeros_like(writes)
    writes[0], collided[0] = 100, 10  # rank 1, w_in
    writes[2000 + 1500], collided[2000 + 1500] = 300, 3  # rank 1501, w_out
    rows = {(b["ranks"], b["matrix"]): b for b in collisions_by_rank(writes, collided)}
    assert rows[("1-10", "w_in")]["collision_rate"] == 0.1 and rows[("1-10", "w_in")]["write_share"] == 0.25
    assert rows[("1001-2000", "w_out")]["collision_rate"] == 0.01
    assert sum(b["writes"] for b in rows.values()) == 400 and ("10001-2000", "w_in") not in rows


def _cli_experiment(tmp_path, *extra):
    path = planted_corpus(tmp_path / "c.txt", n_sentences=800)
    out = tmp_path / "report"
    args = ["experiment", str(path), "-o", str(out), "--budget", "3", "--scaling-seconds", "0.5", "--snapshots", "1",
            "--threads", "1,2", "--epochs", "1", "--dim", "16", "--min-count", "1", "--sparsity-words", "2000",
            "--downpour", "1:1", "-q", *extra]
    return CliRunner().invoke(cli, args), out


def test_the_report_and_its_plots_are_written(tmp_path):
    result, out = _cli_experiment(tmp_path)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in results["runs"]] == ["serial", "global-lock", "row-locks", "hogwild", "hogbatch",
                                                    "downpour-1-1"]
    assert set(results["scaling"]) == {"hogwild", "global-lock", "row-locks", "hogbatch"}
    assert all(set(per) == {"1", "2"} and min(per.values()) > 0 for per in results["scaling"].values())
    runs = results["scaling_runs"]["hogwild"]["2"]
    assert len(runs) == 2 and results["scaling"]["hogwild"]["2"] == max(runs)  # the faster of two runs
    workers = results["settings"]["workers"]  # the most of --threads that the cores hold (1 on one core)
    assert [c["threads"] for c in results["collisions"]] == sorted({workers, 2})
    assert {b["matrix"] for b in results["collisions"][0]["by_rank"]} == {"w_in", "w_out"}
    report = (out / "report.md").read_text()
    for name in ("loss_vs_time.png", "scaling.png", "accuracy_vs_time.png", "downpour_staleness.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
        assert f"]({name})" in report
    assert f"| row locks | {workers} |" in report and "Omega" in report and "What this says" in report
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no temporary files left


def test_without_matplotlib_the_tables_are_written_and_the_error_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    result, out = _cli_experiment(tmp_path, "--model", "sgns")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: the tables are in {out / 'report.md'}, but the plots need matplotlib; install it with "
        "pip install 'w2v-async[plots]'."]
    assert "| serial SGD (1 thread) |" in (out / "report.md").read_text()
    assert not list(out.glob("*.png"))


@pytest.mark.parametrize("args, message", [
    (["--threads", "1,x"], "--threads takes comma-separated whole numbers"),
    (["--threads", "0,2"], "--threads takes positive counts"),
    (["--downpour", "1-1"], "--downpour takes n_fetch:n_push pairs"),
    (["--budget", "0"], "--budget must be a positive number"),
    (["--snapshots", "0"], "--snapshots must be a positive number"),
    (["--model", "cbow"], "Invalid value for '--model'"),
])
def test_bad_settings_are_one_line_errors(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["experiment", str(planted_corpus(tmp_path / "c.txt", n_sentences=10)), "-o",
                                      str(tmp_path / "r"), *args])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("Error: ") and message in result.output


def test_a_report_directory_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me")
    result = CliRunner().invoke(cli, ["experiment", str(planted_corpus(tmp_path / "c.txt", n_sentences=10)), "-o",
                                      str(target)])
    assert result.exit_code == 1 and "is a file" in result.output and target.read_text() == "keep me"


def test_the_api_checks_option_names():
    from w2v_async.api import run_experiment

    with pytest.raises(ConfigError, match="unknown option"):
        run_experiment("c.txt", "out", budget_s=3)


def test_a_downpour_job_holds_the_batches_one_fetch_needs():
    from w2v_async.experiment.schemes import Scheme, ray_config

    rcfg = ray_config(Scheme("d", "", downpour=(8, 4)), 2)
    assert (rcfg.n_fetch, rcfg.n_push) == (8, 4) and rcfg.job_words >= 8 * rcfg.batch_words
    assert ray_config(Scheme("d", "", downpour=(1, 1)), 2).job_words == 200_000  # the engine's default


def test_snapshots_come_at_most_every_half_interval():
    from w2v_async.engines.base import RunState
    from w2v_async.experiment.record import Recorder, SchemeRun

    run = SchemeRun("x", "x", 1)
    rec = Recorder(run, budget_s=60, every_s=10, vectors=lambda p: p["w_in"], rows=3)
    state = RunState.new(1, 1)
    for k in range(5):  # five epoch ends in quick succession: one snapshot
        state.examples[0, 0] += 10
        state.loss[0, 0] += 5.0
        rec.save({"w_in": np.ones((4, 2), np.float32)}, state)
    assert len(run.snapshots) == 1 and run.snapshots[0].vectors.shape == (3, 2)
    assert run.snapshots[0].loss == 0.5


def test_a_glove_report_counts_collisions_of_w_word_and_w_ctx(tmp_path):
    result, out = _cli_experiment(tmp_path, "--model", "glove", "--max-iter", "3")
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in results["runs"]] == ["serial", "global-lock", "row-locks", "hogwild", "downpour-1-1",
                                                    "sandblaster"]
    assert {b["matrix"] for b in results["collisions"][0]["by_rank"]} == {"w_word", "w_ctx"}
    assert results["collisions"][0]["writes"] > 0 and results["hypergraphs"][0]["omega"] == 2
    assert (out / "scaling.png").read_bytes().startswith(PNG)


def test_glove_takes_fewer_timed_snapshots_by_default():
    """GloVe's 15 short epochs add a snapshot at each end (at most every half interval): 4 timed
    ones keep its default run near skip-gram's 8."""
    assert ExperimentConfig().n_snapshots == 8 and ExperimentConfig(model="glove").n_snapshots == 4
    assert ExperimentConfig(model="glove", snapshots=6).n_snapshots == 6
