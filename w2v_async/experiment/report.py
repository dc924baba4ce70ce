"""The experiment's report: report.md (tables, and what the numbers say), results.json, and the PNG
plots (matplotlib, the optional [plots] extra), each file written atomically."""

import json
import os
from typing import Dict, List, Optional

from ..io import atomic_path
from .record import SchemeRun

PLOTS_INSTALL = "pip install 'w2v-async[plots]'"
FIGURES = {"loss": "loss_vs_time.png", "scaling": "scaling.png", "accuracy": "accuracy_vs_time.png",
           "staleness": "downpour_staleness.png"}


def _write(path: str, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _num(x: Optional[float], fmt: str = "{:.3f}") -> str:
    return "-" if x is None or x != x else fmt.format(x)


def plots(out_dir: str, results: dict, runs: List[SchemeRun]) -> List[str]:
    """The four figures as PNGs in out_dir; ImportError when matplotlib is not installed."""
    import matplotlib  # the optional [plots] extra

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = "entries" if results["settings"]["model"] == "glove" else "words"
    written = []

    def save(fig, key):
        path = os.path.join(out_dir, FIGURES[key])
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in runs:
        points = [(s.seconds, s.loss) for s in run.snapshots if s.loss == s.loss]
        if points:
            ax.plot(*zip(*points), marker="o", label=run.label)
    ax.set(xlabel="wall-clock seconds (from the start of each scheme's run)",
           ylabel="training loss (mean since the last point)", title="Training loss against time")
    ax.legend(fontsize=8)
    save(fig, "loss")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    scaling = results["scaling"]
    threads = sorted({int(t) for per in scaling.values() for t in per})
    for name, per in scaling.items():
        ax.plot([int(t) for t in per], list(per.values()), marker="o", label=name)
    base = scaling.get("hogwild", {}).get("1") or scaling.get("hogwild", {}).get(1)
    if base and threads:
        ax.plot(threads, [base * t for t in threads], "k--", label="ideal (Hogwild at 1 thread x threads)")
    ax.axvline(results["machine"]["cores"], color="grey", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(threads, [str(t) for t in threads])
    ax.set(xlabel="threads", ylabel=f"{unit} / s", title=f"Throughput against threads ({results['machine']['cores']} cores)")
    ax.legend(fontsize=8)
    save(fig, "scaling")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for run in runs:
        points = [(s.seconds, s.analogy, s.ws353) for s in run.snapshots if s.analogy is not None]
        if points:
            t, a, w = zip(*points)
            axes[0].plot(t, [100 * x for x in a], marker="o", label=run.label)
            axes[1].plot(t, w, marker="o", label=run.label)
    axes[0].set(xlabel="wall-clock seconds", ylabel="analogy accuracy (%)", title="Analogies (questions-words)")
    axes[1].set(xlabel="wall-clock seconds", ylabel="Spearman", title="WS353")
    axes[0].legend(fontsize=7)
    save(fig, "accuracy")

    fig, ax = plt.subplots(figsize=(6, 4))
    down = sorted((r for r in runs if "staleness_batches" in r.extra and r.final is not None
                   and r.final.analogy is not None), key=lambda r: r.extra["staleness_batches"])
    if down:
        ax.plot([r.extra["staleness_batches"] for r in down], [100 * r.final.analogy for r in down], "o-")
        for r in down:
            ax.annotate(r.name, (r.extra["staleness_batches"], 100 * r.final.analogy), fontsize=8)
    ax.set(xlabel="staleness: other replicas' batches between a fetch and its push",
           ylabel="final analogy accuracy (%)", title="Downpour: accuracy against staleness")
    save(fig, "staleness")
    return written


def write(out_dir: str, results: dict, runs: List[SchemeRun], figures: List[str]) -> str:
    """results.json and report.md in out_dir; returns report.md's path."""
    _write(os.path.join(out_dir, "results.json"), json.dumps(results, indent=2))
    path = os.path.join(out_dir, "report.md")
    _write(path, markdown(results, runs, figures))
    return path


def markdown(results: dict, runs: List[SchemeRun], figures: List[str]) -> str:
    s, m = results["settings"], results["machine"]
    unit = "entries" if s["model"] == "glove" else "words"
    serial = next((r for r in runs if r.name == "serial"), None)
    lines = [f"# Update schemes compared: {s['model']} on {os.path.basename(s['corpus'])}", "",
             f"Machine: {m['cores']} cores ({m['cpu']}), {m['date']}. Corpus: {s['corpus_words']:,} {unit}, "
             f"{s['vocab_size']:,} words in the vocabulary. Settings: dim {s['dim']}, {s['epochs']} epochs, "
             f"each scheme stopped at {s['budget_s']:.0f} s; the comparison runs {s['workers']} threads "
             "(Ray schemes: as many replicas, and 2 shards).", "",
             f"Command: `{results['command']}`", "", "## Schemes", "",
             f"| scheme | workers | {unit}/s | speedup over serial | epochs done | final loss | analogy | WS353 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        rate = r.words / max(r.extra.get("train_seconds", r.seconds), 1e-9)
        base = serial.words / max(serial.extra.get("train_seconds", serial.seconds), 1e-9) if serial else None
        f = r.final
        lines.append(f"| {r.label} | {r.workers} | {rate:,.0f} | {_num(rate / base if base else None, '{:.2f}x')} | "
                     f"{r.extra.get('epochs_done', 0):.0f} | {_num(f.loss if f else None, '{:.4f}')} | "
                     f"{_pct(f.analogy if f else None)} | {_num(f.ws353 if f else None)} |")
    for name, why in results.get("skipped", {}).items():
        lines.append(f"| {name} | - | not run: {why} | | | | | |")
    lines += ["", f"## Throughput against threads ({unit}/s)", ""]
    scaling = results["scaling"]
    threads = sorted({int(t) for per in scaling.values() for t in per})
    lines += ["| scheme | " + " | ".join(f"{t} threads" for t in threads) + " |",
              "|---|" + "---|" * len(threads)]
    for name, per in scaling.items():
        one = per.get(str(threads[0]), per.get(threads[0]))
        cells = [f"{v:,.0f} ({v / one:.2f}x)" if one else f"{v:,.0f}" for v in
                 (per.get(str(t), per.get(t, 0.0)) for t in threads)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"({m['cores']} cores: counts above it are oversubscribed. Each figure is the faster of two "
              f"{s['scaling_s']:g}-second runs; the speedup is over the scheme's own 1-thread rate.)"]
    spread = [(max(v) / min(v) - 1, name, t) for name, per in results.get("scaling_runs", {}).items()
              for t, v in per.items() if min(v) > 0]
    if spread:
        worst = max(spread)
        lines.append(f"The two runs differed by up to {100 * worst[0]:.0f}% ({worst[1]} at {worst[2]} threads): "
                     "runs that write shared rows from several threads (locks, lock-free pairs) move with the "
                     "cost of moving cache lines between cores, which a shared virtual machine does not hold "
                     "constant.")
    lines.append("")
    lines += sparsity_section(results)
    down = [r for r in runs if "staleness_batches" in r.extra]
    if down:
        lines += ["## Downpour: staleness", "",
                  "Staleness: the pushes of other replicas between a replica's fetch and its push (per shard), "
                  "and the batches they carried (x n_push).", "",
                  "| run | staleness (pushes) | staleness (batches) | pushes | analogy | WS353 |",
                  "|---|---|---|---|---|---|"]
        for r in down:
            lines.append(f"| {r.label} | {r.extra['mean_staleness']:.2f} | {r.extra['staleness_batches']:.2f} | "
                         f"{r.extra.get('pushes', 0):,.0f} | "
                         f"{_pct(r.final.analogy if r.final else None)} | {_num(r.final.ws353 if r.final else None)} |")
        lines.append("")
    if figures:
        lines += ["## Figures", ""] + [f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in figures] + [""]
    else:
        lines += ["No figures: matplotlib is not installed; install it with " f"`{PLOTS_INSTALL}`.", ""]
    return "\n".join(lines)


def sparsity_section(results: dict) -> List[str]:
    lines = ["## The sparsity HOGWILD! assumes", "",
             "Omega: the most rows one update touches; Delta: the largest fraction of updates that touch one "
             "row; rho: the largest fraction of updates that share a row with one update. The speedup argument "
             "needs Delta and rho small.", "",
             "| update | rows left out | updates sampled | Omega | Delta | rho |", "|---|---|---|---|---|---|"]
    for h in results["hypergraphs"]:
        cut = "none" if h["without_top"] == 0 else f"the top {h['without_top']:,} words'"
        lines.append(f"| {h['update']} | {cut} | {h['updates']:,} | {h['omega']} | {h['delta']:.4f} | {h['rho']:.4f} |")
    lines.append("")
    coll = results.get("collisions")
    if coll:
        for c in coll:
            lines += [f"Observed at {c['threads']} threads, lock-free updates ({c['seconds']:.1f} s): "
                      f"{c['collided']:,} of {c['writes']:,} row writes ({100 * c['rate']:.3f}%) were overtaken by "
                      "another thread's write to the same row within the update.", ""]
        lines += ["| word ranks | matrix | share of writes | collision rate |", "|---|---|---|---|"]
        for b in coll[-1]["by_rank"]:
            lines.append(f"| {b['ranks']} | {b['matrix']} | {100 * b['write_share']:.2f}% | "
                         f"{100 * b['collision_rate']:.3f}% |")
        lines.append("")
    lines += ["**What this says.** " + results["sparsity_summary"], ""]
    return lines


def summary(hypergraphs: List[Dict], collisions: Optional[List[Dict]]) -> str:
    """The plain-words answer: where the sparse-update assumption holds and where it does not."""
    first = hypergraphs[0]
    rest = [h for h in hypergraphs if h["update"] == first["update"]]
    text = (f"Over all rows, one {first['update']} update's rows are shared with {100 * first['rho']:.1f}% of all "
            f"updates (rho), and the busiest row is in {100 * first['delta']:.1f}% of them (Delta). ")
    for h in rest[1:]:
        text += (f"Without the top {h['without_top']:,} words' rows, Delta falls to {100 * h['delta']:.2f}% and rho "
                 f"to {100 * h['rho']:.2f}%. ")
    observed = ""
    if collisions:
        by_rank = collisions[-1]["by_rank"]
        head = [b for b in by_rank if b["ranks"].startswith("1-")]
        tail = [b for b in by_rank if not b["ranks"].startswith("1-") and b["writes"]][-2:]
        if head and tail:
            observed = (f"Observed at {collisions[-1]['threads']} threads: writes to the 10 most frequent words' rows "
                        "collided at " + " and ".join(f"{100 * b['collision_rate']:.2f}% ({b['matrix']})" for b in head)
                        + f", writes to rows ranked {tail[-1]['ranks']} at "
                        + " and ".join(f"{100 * b['collision_rate']:.4f}% ({b['matrix']})" for b in tail) + ". ")
    if first["update"] == "entry":
        return text + observed + (
            "GloVe's updates are sparse: each touches one row of W and one of W~ (Omega 2), and even the most "
            "frequent word's rows are in a small fraction of the entries, since the entries, not the tokens, are "
            "the examples: a frequent word has many entries, but no more than the vocabulary. Lock-free threads "
            "rarely meet, which is the setting HOGWILD! assumes.")
    text += ("The head of the vocabulary, which every thread draws as negatives and meets as contexts, is in a "
             "large share of the updates: there the updates are not sparse. ")
    return text + observed + (
        "The assumption holds for the rare words, which are most of the rows; it fails for the head and the "
        "negatives (w_out), which take a large share of the writes: that is where lock-free updates are lost or "
        "computed from stale rows, and where locks make threads wait.")
