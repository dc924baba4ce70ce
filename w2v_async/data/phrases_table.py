"""Phrase detection's settings (PhrasesConfig), scoring bigrams (gensim's original and NPMI scorers,
word2vec.c's word2phrase), connector words, and the phrase table's file (``--save``, ``--apply``).

PhrasesConfig lives here, beside what it configures, rather than in config.py: it is read by
`w2v-async phrases` alone and is never saved with a model.
"""

import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..config import VocabConfig, default_threads
from ..errors import ConfigError, InputError
from ..io import atomic_write

SCORINGS = ("default", "word2phrase", "npmi")
DEFAULT_THRESHOLDS = {"default": 10.0, "word2phrase": 100.0, "npmi": 0.5}
# gensim 4's ENGLISH_CONNECTOR_WORDS (gensim.models.phrases), so that `bank of america` becomes bank_of_america
ENGLISH_CONNECTOR_WORDS = frozenset(("a", "an", "and", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to",
                                     "with", "without"))
FORMAT = "w2v-async phrases 1"
COLUMNS = "phrase\tscore\tcount\tpass"


@dataclass(frozen=True)
class PhrasesConfig:
    """Phrase detection (gensim Phrases, word2vec.c word2phrase), ``passes`` times over its own output.

    ``threshold``: one value per pass, or one for every pass (None: the scoring's default,
    DEFAULT_THRESHOLDS). ``max_vocab_size`` bounds the words and bigrams held together (gensim's
    40M), shared by the reading threads; ``connector_words``: none, english or a file.
    """

    scoring: str = "default"
    threshold: Optional[Tuple[float, ...]] = None
    min_count: int = 5
    passes: int = 1
    delimiter: str = "_"
    connector_words: str = "none"
    max_vocab_size: int = 40_000_000
    lowercase: bool = False
    max_word_length: int = 100
    threads: int = field(default_factory=default_threads)

    def thresholds(self) -> Tuple[float, ...]:
        """The threshold of each pass."""
        given = self.threshold or (DEFAULT_THRESHOLDS[self.scoring],)
        return tuple(given) * self.passes if len(given) == 1 else tuple(given)

    def validate(self) -> "PhrasesConfig":
        if self.scoring not in SCORINGS:
            raise ConfigError(f"--scoring must be one of {', '.join(SCORINGS)}, got {self.scoring!r}.")
        if not isinstance(self.passes, int) or not 1 <= self.passes <= 8:
            raise ConfigError(f"--passes must be 1 to 8 (phrases of up to 2^passes words), got {self.passes!r}.")
        for value, flag, default in ((self.min_count, "--min-count", 5), (self.threads, "--threads", "all cores"),
                                     (self.max_vocab_size, "--max-vocab-size", 40_000_000)):
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{flag} must be a positive whole number, got {value!r}; the default is {default}.")
        if not isinstance(self.max_word_length, int) or self.max_word_length < 0:
            raise ConfigError(f"--max-word-length must be >= 0 bytes (0: no limit), got {self.max_word_length!r}.")
        if self.threshold is not None and len(self.threshold) not in (1, self.passes):
            raise ConfigError(f"--threshold gives {len(self.threshold)} values for --passes {self.passes}; give one "
                              f"value for every pass, or one per pass (--passes 2 --threshold 200,100).")
        for t in self.thresholds():
            if self.scoring == "npmi" and not -1 <= t <= 1:
                raise ConfigError(f"--threshold {t:g} is outside [-1, 1], where npmi scores lie; try 0.5.")
            if self.scoring != "npmi" and not t > 0:
                raise ConfigError(f"--threshold must be positive for --scoring {self.scoring}, got {t:g}; "
                                  f"the default is {DEFAULT_THRESHOLDS[self.scoring]:g}.")
        if not isinstance(self.delimiter, str) or not self.delimiter or any(ch.isspace() for ch in self.delimiter):
            raise ConfigError(f"--delimiter must be one or more characters other than whitespace (it joins a "
                              f"phrase into one token), got {self.delimiter!r}; the default is _.")
        return self

    def vocab(self) -> VocabConfig:
        """The reading settings, as the vocabulary's: pruning, lowercasing, long tokens."""
        return VocabConfig(min_count=self.min_count, max_vocab_size=self.max_vocab_size, lowercase=self.lowercase,
                           max_word_length=self.max_word_length)


def scores(scoring: str, n_a: np.ndarray, n_b: np.ndarray, n_ab: np.ndarray, min_count: int, len_vocab: int,
           n_words: int) -> np.ndarray:
    """float64 score of each bigram (-inf: never a phrase), from int64 counts of its first word,
    its last word and itself.

    default: gensim's original_scorer, (n_ab - min_count) / (n_a n_b) x len_vocab, where len_vocab
      is what gensim passes: the keys its table holds, words (connector words left out) and bigrams.
    word2phrase: word2vec.c's, (n_ab - min_count) / n_a / n_b x n_words (every token), and no
      phrase when a word is seen fewer than min_count times (word2vec.c computes it in float32).
    npmi: gensim's npmi_scorer, ln(p_ab / (p_a p_b)) / -ln(p_ab) with p = count / n_words, for
      n_ab >= min_count. Since a bigram is counted under its own words (never under a token that
      holds the delimiter, as gensim's chained passes do: issues #1979, #3042), n_ab <= min(n_a, n_b)
      and the score is within [-1, 1]; it is clipped there against rounding.
    A bigram whose word is no longer held (pruned) scores -inf, as in gensim.
    """
    n_a, n_b, n_ab = (np.asarray(x, np.int64) for x in (n_a, n_b, n_ab))
    known = (n_a > 0) & (n_b > 0) & (n_ab > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if scoring == "default":
            out = (n_ab - min_count) / (n_a * n_b).astype(np.float64) * len_vocab
        elif scoring == "word2phrase":
            out = (n_ab - min_count) / n_a.astype(np.float64) / n_b.astype(np.float64) * float(n_words)
            known &= (n_a >= min_count) & (n_b >= min_count)
        elif scoring == "npmi":
            total = float(n_words)
            p_a, p_b, p_ab = n_a / total, n_b / total, n_ab / total
            out = np.clip(np.log(p_ab / (p_a * p_b)) / -np.log(p_ab), -1.0, 1.0)
            known &= n_ab >= min_count
        else:
            raise ConfigError(f"unknown scoring {scoring!r}; choose one of: {', '.join(SCORINGS)}.")
    return np.where(known & np.isfinite(out), out, -np.inf)


def connector_words(spec: str) -> Tuple[str, ...]:
    """--connector-words: none, english (gensim's ENGLISH_CONNECTOR_WORDS) or a file of words
    separated by whitespace (lines starting with # are comments). Sorted."""
    if spec == "none":
        return ()
    if spec == "english":
        return tuple(sorted(ENGLISH_CONNECTOR_WORDS))
    if not os.path.isfile(spec):
        raise ConfigError(f"--connector-words {spec!r} is not none, english or a file; give a file of words "
                          "separated by spaces or newlines.")
    try:
        with open(spec, encoding="utf-8") as f:
            words = {w for line in f if not line.lstrip().startswith("#") for w in line.split()}
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read connector words from {spec!r}: {e}; give a UTF-8 text file of words.") from e
    if not words:
        raise InputError(f"connector-words file {spec!r} holds no words; list them separated by spaces, or use none.")
    return tuple(sorted(words))


@dataclass
class PhraseTable:
    """The phrases each pass joins, and the settings that read text as they were learned.

    passes[p]: {phrase (words joined by delimiter): (score, count)} of pass p + 1.
    """

    delimiter: str = "_"
    scoring: str = "default"
    min_count: int = 5
    thresholds: Tuple[float, ...] = (10.0,)
    connector_words: Tuple[str, ...] = ()
    lowercase: bool = False
    max_word_length: int = 100
    passes: List[Dict[str, Tuple[float, int]]] = field(default_factory=list)

    def settings(self) -> dict:
        return {"format": FORMAT, "delimiter": self.delimiter, "scoring": self.scoring, "min_count": self.min_count,
                "thresholds": list(self.thresholds), "connector_words": list(self.connector_words),
                "lowercase": self.lowercase, "max_word_length": self.max_word_length}

    def rows(self) -> List[Tuple[str, float, int, int]]:
        """(phrase, score, count, pass) for every phrase: by pass, best score first, then by phrase."""
        out = []
        for p, phrases in enumerate(self.passes, 1):
            out.extend((phrase, s, c, p) for phrase, (s, c) in
                       sorted(phrases.items(), key=lambda item: (-item[1][0], item[0])))
        return out

    def save(self, path: str) -> None:
        """Write the table (TSV: a '#' line of settings as JSON, a header, then phrase, score, count,
        pass) atomically."""
        try:
            with atomic_write(path) as f:
                f.write("# " + json.dumps(self.settings()) + "\n" + COLUMNS + "\n")
                for phrase, s, c, p in self.rows():
                    f.write(f"{phrase}\t{s!r}\t{c}\t{p}\n")
        except OSError as e:
            raise InputError(f"cannot write the phrase table {path!r}: {e}; choose another --save path.") from e

    @classmethod
    def load(cls, path: str) -> "PhraseTable":
        """Read a table that save() wrote; InputError naming the line for anything else."""
        if not os.path.isfile(path):
            raise ConfigError(f"phrase table {path!r} does not exist; check the --apply path (write one with --save).")
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().split("\n")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read the phrase table {path!r}: {e}; give a file written by --save.") from e
        bad = f"{path!r} is not a phrase table written by `w2v-async phrases --save`"
        try:
            settings = json.loads(lines[0][2:]) if lines[0].startswith("# ") else None
        except ValueError:
            settings = None
        if not isinstance(settings, dict) or settings.get("format") != FORMAT or lines[1:2] != [COLUMNS]:
            raise InputError(f"{bad} (its first two lines are not the settings and the header); write it again.")
        try:
            table = cls(delimiter=str(settings["delimiter"]), scoring=str(settings["scoring"]),
                        min_count=int(settings["min_count"]),
                        thresholds=tuple(float(t) for t in settings["thresholds"]),
                        connector_words=tuple(str(w) for w in settings["connector_words"]),
                        lowercase=bool(settings["lowercase"]), max_word_length=int(settings["max_word_length"]))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{bad} (setting {e} is missing or wrong); write it again.") from None
        if not table.delimiter or any(ch.isspace() for ch in table.delimiter) or not table.thresholds:
            raise InputError(f"{bad} (its delimiter or thresholds are not usable); write it again.")
        table.passes = [{} for _ in table.thresholds]
        for number, line in enumerate(lines[2:], 3):
            if not line:
                continue
            fields = line.split("\t")
            try:
                phrase, s, c, p = fields[0], float(fields[1]), int(fields[2]), int(fields[3])
                if len(fields) != 4 or not 1 <= p <= len(table.passes) or not phrase or phrase != phrase.strip() \
                        or any(ch.isspace() for ch in phrase):
                    raise ValueError
            except (ValueError, IndexError):
                raise InputError(f"{bad}: line {number} is not 'phrase<TAB>score<TAB>count<TAB>pass' with a pass "
                                 f"of 1 to {len(table.passes)}; write the table again.") from None
            table.passes[p - 1][phrase] = (s, c)
        return table

    def n_phrases(self) -> int:
        return sum(len(p) for p in self.passes)


def best(found: Sequence[Tuple[str, float, int]]) -> Dict[str, Tuple[float, int]]:
    """{phrase: (score, count)} of (phrase, score, count) rows; two bigrams that join into the same
    token ("a_b c" and "a b_c") keep the higher score, as one entry of gensim's would."""
    out: Dict[str, Tuple[float, int]] = {}
    for phrase, s, c in found:
        old = out.get(phrase)
        if old is None or (s, c) > old:
            out[phrase] = (s, c)
    return out


def parse_thresholds(text: Optional[str]) -> Optional[Tuple[float, ...]]:
    """"200,100" -> (200.0, 100.0); None stays None (the scoring's default)."""
    if text is None:
        return None
    try:
        values = tuple(float(x) for x in str(text).split(","))
    except ValueError:
        raise ConfigError(f"--threshold takes numbers separated by commas, one per pass, such as 200,100; "
                          f"got {text!r}.") from None
    if not all(np.isfinite(values)):
        raise ConfigError(f"--threshold must be finite numbers, got {text!r}.")
    return values
