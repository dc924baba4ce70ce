"""Evaluation through gensim KeyedVectors: word analogies and word-pair similarity."""

import logging
import os
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Sequence

from .errors import InputError

DEFAULT_RESTRICT_VOCAB = 300_000


def gensim_datapath(name: str) -> str:
    """Path of an evaluation file that ships in gensim's test data."""
    from gensim.test.utils import datapath  # gensim loads only when an evaluation runs

    return datapath(name)


def default_analogy_sets() -> List[str]:
    return [gensim_datapath("questions-words.txt")]


def default_similarity_sets() -> List[str]:
    return [gensim_datapath("wordsim353.tsv"), gensim_datapath("simlex999.txt")]


@dataclass
class SectionScore:
    name: str
    correct: int
    total: int

    @property
    def accuracy(self) -> Optional[float]:
        return self.correct / self.total if self.total else None


@dataclass
class AnalogyResult:
    """Accuracy over the questions whose four words are in the (restricted) vocabulary."""

    dataset: str
    accuracy: float
    correct: int
    evaluated: int
    questions: int
    semantic: Optional[float]
    syntactic: Optional[float]
    sections: List[SectionScore] = field(default_factory=list)
    composed: Optional[dict] = None  # eval --oov: the questions answered with composed vectors

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sections"] = [dict(asdict(s), accuracy=s.accuracy) for s in self.sections]
        return d


@dataclass
class SimilarityResult:
    """Correlation of cosine similarity with human scores on the pairs the vocabulary covers."""

    dataset: str
    pearson: Optional[float]  # None when no pair is in the vocabulary
    spearman: Optional[float]
    oov_percent: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EvalReport:
    vectors: str
    analogies: List[AnalogyResult]
    similarities: List[SimilarityResult]

    def to_dict(self) -> dict:
        return {
            "vectors": self.vectors,
            "analogies": [a.to_dict() for a in self.analogies],
            "similarities": [s.to_dict() for s in self.similarities],
        }


def _ratio(sections: Sequence[SectionScore]) -> Optional[float]:
    total = sum(s.total for s in sections)
    return sum(s.correct for s in sections) / total if total else None


def _count_questions(path: str) -> int:
    with open(path, encoding="utf-8", errors="replace") as f:
        return sum(1 for line in f if line.strip() and not line.startswith(":"))


def can_compose(kv) -> bool:
    """Whether kv makes vectors for unseen words from their n-grams (a subword model's FastTextKeyedVectors)."""
    return getattr(kv, "bucket", 0) > 0 and hasattr(kv, "vectors_ngrams")


def _questions(path: str):
    section = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(":"):
                section = line[1:].strip()
            elif len(line.split()) == 4:
                yield section, line.split()


def composed_analogies(kv, path: str, restrict_vocab: int = DEFAULT_RESTRICT_VOCAB, batch: int = 512) -> dict:
    """The analogy questions gensim's evaluate_word_analogies skips, a word not being among the
    restrict_vocab most frequent (compared upper-cased, as its case-insensitive default), answered
    with vectors for those words: their own where the vocabulary has them (lowercased, as our
    corpora are), else composed from n-grams. The answer is the word nearest b - a + c (unit vectors;
    a, b and c excluded) among the restrict_vocab words and those. Returns how many were answered
    that way, how many right, the semantic / syntactic split, and how many words were composed."""
    import numpy as np

    known = kv.index_to_key[:restrict_vocab]
    index = {}
    for i in range(len(known) - 1, -1, -1):  # as gensim: of words equal upper-cased, the most frequent
        index[known[i].upper()] = i
    asked = [(sec, [w.upper() for w in q], q) for sec, q in _questions(path) if not all(w.upper() in index for w in q)]
    extra = sorted({w.lower() for _, upper, q in asked for u, w in zip(upper, q) if u not in index})
    for e, w in enumerate(extra):  # their upper-case forms are new: each its own row after the known words
        index[w.upper()] = len(known) + e
    rows = [kv.vectors[: len(known)]] + [kv.get_vector(w)[None, :] for w in extra]
    vectors = np.vstack(rows) if extra or known else np.zeros((0, kv.vector_size), np.float32)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    right = {"semantic": [0, 0], "syntactic": [0, 0]}
    for first in range(0, len(asked), batch):
        part = asked[first: first + batch]
        ids = np.array([[index[w] for w in upper] for _, upper, _ in part], np.int64).reshape(-1, 4)
        scores = (unit[ids[:, 1]] - unit[ids[:, 0]] + unit[ids[:, 2]]) @ unit.T
        at = np.arange(len(part))
        for j in range(3):
            scores[at, ids[:, j]] = -np.inf
        for (sec, _, _), guess, expected in zip(part, scores.argmax(axis=1), ids[:, 3]):
            kind = right["syntactic" if (sec or "").startswith("gram") else "semantic"]
            kind[0] += int(guess == expected)
            kind[1] += 1
    n, correct = sum(v[1] for v in right.values()), sum(v[0] for v in right.values())
    composed = sum(1 for w in extra if w not in kv.key_to_index)
    return {"answered": n, "correct": correct, "accuracy": correct / n if n else None, "unseen_words": composed,
            **{k: (v[0] / v[1] if v[1] else None) for k, v in right.items()}}


def evaluate_analogies(kv, path: str, restrict_vocab: int = DEFAULT_RESTRICT_VOCAB) -> AnalogyResult:
    """gensim ``evaluate_word_analogies`` with semantic (non-'gram') and syntactic ('gram') splits."""
    _check_file(path, "--analogies")
    try:
        score, raw = kv.evaluate_word_analogies(path, restrict_vocab=restrict_vocab)
    except (ValueError, IndexError) as e:
        raise InputError(f"cannot read analogies from {path!r} ({e}); use the questions-words.txt format.") from e
    sections = [
        SectionScore(s["section"], len(s["correct"]), len(s["correct"]) + len(s["incorrect"]))
        for s in raw
        if s["section"] != "Total accuracy"
    ]
    correct = sum(s.correct for s in sections)
    evaluated = sum(s.total for s in sections)
    return AnalogyResult(
        dataset=os.path.basename(path),
        accuracy=correct / evaluated if evaluated else 0.0,
        correct=correct,
        evaluated=evaluated,
        questions=_count_questions(path),
        semantic=_ratio([s for s in sections if not s.name.startswith("gram")]),
        syntactic=_ratio([s for s in sections if s.name.startswith("gram")]),
        sections=sections,
    )


def _count_pairs(path: str) -> int:
    with open(path, encoding="utf-8", errors="replace") as f:
        return sum(1 for line in f if not line.startswith("#") and len(line.split("\t")) == 3)


def evaluate_similarity(kv, path: str, restrict_vocab: int = DEFAULT_RESTRICT_VOCAB) -> SimilarityResult:
    """gensim ``evaluate_word_pairs``: Pearson and Spearman correlation, percent of OOV pairs."""
    _check_file(path, "--similarities")
    try:
        pearson, spearman, oov = kv.evaluate_word_pairs(path, restrict_vocab=restrict_vocab)
    except ValueError as e:
        if "out-of-vocabulary" in str(e) and _count_pairs(path) > 0:
            return SimilarityResult(os.path.basename(path), None, None, 100.0)
        raise InputError(
            f"cannot score word pairs from {path!r} ({e}); use tab-separated 'word1 word2 score' lines."
        ) from e
    except (IndexError, ZeroDivisionError) as e:
        raise InputError(
            f"cannot score word pairs from {path!r} ({e}); use tab-separated 'word1 word2 score' lines."
        ) from e
    return SimilarityResult(os.path.basename(path), float(pearson[0]), float(spearman.correlation), float(oov))


def evaluate(
    kv,
    name: str,
    analogy_sets: Sequence[str],
    similarity_sets: Sequence[str],
    restrict_vocab: int = DEFAULT_RESTRICT_VOCAB,
    oov: bool = False,
) -> EvalReport:
    """Run every analogy and similarity set on the vectors ``kv`` (gensim KeyedVectors); oov: also
    answer the analogy questions with unseen words by composed vectors (a subword model only)."""
    logging.getLogger("gensim").setLevel(logging.ERROR)
    if oov and not can_compose(kv):
        raise InputError(f"--oov needs a subword model's fastText .bin (train --subwords -o MODEL.bin); {name!r} "
                         "has no n-gram vectors to compose unseen words from.")
    analogies = [evaluate_analogies(kv, p, restrict_vocab) for p in analogy_sets]
    for result, path in zip(analogies, analogy_sets) if oov else ():
        result.composed = composed_analogies(kv, path, restrict_vocab)
    return EvalReport(vectors=name, analogies=analogies,
                      similarities=[evaluate_similarity(kv, p, restrict_vocab) for p in similarity_sets])


def format_report(report: EvalReport) -> str:
    """A plain-text table of the report, for people."""
    lines = [f"vectors: {report.vectors}"]
    for a in report.analogies:
        lines.append("")
        lines.append(
            f"analogies {a.dataset}: {100 * a.accuracy:.2f}% "
            f"({a.correct}/{a.evaluated}; {a.evaluated}/{a.questions} questions in vocabulary)"
        )
        for label, value in (("semantic", a.semantic), ("syntactic", a.syntactic)):
            if value is not None:
                lines.append(f"  {label:<30} {100 * value:6.2f}%")
        for s in a.sections:
            acc = "   n/a " if s.accuracy is None else f"{100 * s.accuracy:6.2f}%"
            lines.append(f"    {s.name:<28} {acc}  ({s.correct}/{s.total})")
        if a.composed is not None:
            c = a.composed
            acc = "n/a" if c["accuracy"] is None else f"{100 * c['accuracy']:.2f}%"
            lines.append(f"  with unseen words composed from n-grams: {acc} ({c['correct']}/{c['answered']} "
                         f"questions, {c['unseen_words']} unseen words)")
    if report.similarities:
        lines.append("")
        lines.append(f"{'similarity':<30} {'spearman':>8} {'pearson':>8} {'oov %':>6}")
        for s in report.similarities:
            if s.spearman is None:
                lines.append(f"{s.dataset:<30} {'n/a':>8} {'n/a':>8} {s.oov_percent:6.1f}")
            else:
                lines.append(f"{s.dataset:<30} {s.spearman:8.4f} {s.pearson:8.4f} {s.oov_percent:6.1f}")
    return "\n".join(lines)


def _check_file(path: str, flag: str) -> None:
    if not os.path.isfile(path):
        raise InputError(f"evaluation file {path!r} does not exist; check the {flag} path.")
