"""Vocabulary: counting with bounded memory, the word2vec.c vocab file, subsampling and noise tables."""

import os
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..config import VocabConfig
from ..errors import InputError
from ..io import atomic_write
from .corpus import CorpusReader, SentenceReader, batched, open_corpus
from .encoded import EncodedCorpus, IdStreamBuilder
from .scan import scan_files
from .words import NO_LIMIT, WordTable, compose


@dataclass
class Vocab:
    """Words sorted by descending count (ties: first occurrence first).

    words : list of str, length V; counts : int64[V]; index : word -> id.
    """

    words: List[str]
    counts: np.ndarray

    def __post_init__(self):
        self.counts = np.asarray(self.counts, dtype=np.int64)
        self.index: Dict[str, int] = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def save(self, path: str) -> None:
        """Write word2vec.c ``-save-vocab`` format: ``word count`` per line, atomically."""
        with atomic_write(path, "w") as f:
            for w, c in zip(self.words, self.counts.tolist()):
                f.write(f"{w} {c}\n")

    @classmethod
    def load(cls, path: str, min_count: int = 1, max_final_vocab: Optional[int] = None) -> "Vocab":
        """Read a ``word count`` file (ours or word2vec.c's) and apply the count limits."""
        if not os.path.isfile(path):
            raise InputError(f"vocabulary file {path!r} does not exist; create it with `w2v-async vocab`.")
        words, counts = [], []
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2 or not (parts[1].isascii() and parts[1].isdigit()) or len(parts[1]) > 18:
                    raise InputError(
                        f"{path}:{n} is not 'word count' (got {line.strip()[:60]!r}); "
                        "pass a file written by `w2v-async vocab` or word2vec.c -save-vocab."
                    )
                words.append(parts[0])
                counts.append(int(parts[1]))
        order = np.argsort(-np.asarray(counts, dtype=np.int64), kind="stable")
        vocab = cls([words[i] for i in order], np.asarray(counts, dtype=np.int64)[order])
        return vocab.trimmed(min_count, max_final_vocab)

    def trimmed(self, min_count: int, max_final_vocab: Optional[int] = None) -> "Vocab":
        """Keep words with count >= min_count, raised as gensim does to fit max_final_vocab."""
        keep = _effective_min_count(self.counts, min_count, max_final_vocab)
        n = int(np.count_nonzero(self.counts >= keep))  # counts are sorted descending
        return Vocab(self.words[:n], self.counts[:n])

    def keep_probs(self, sample: float) -> np.ndarray:
        """word2vec.c subsampling: P(keep w) = (sqrt(c / (s T)) + 1) s T / c, capped at 1.

        Returns float32[V]; sample = 0 keeps every word.
        """
        if sample <= 0:
            return np.ones(len(self), np.float32)
        threshold = sample * self.total
        c = np.maximum(self.counts, 1).astype(np.float64)  # a count of 0 (an --init word the corpus lacks) never occurs
        p = (np.sqrt(c / threshold) + 1.0) * threshold / c
        return np.minimum(p, 1.0).astype(np.float32)

    def noise_distribution(self, power: float = 0.75) -> np.ndarray:
        """Unigram^power negative-sampling distribution, float64[V] summing to 1 (power 0: uniform;
        negative: rare words drawn more often, as gensim's ns_exponent allows)."""
        c = np.maximum(self.counts, 1).astype(np.float64)
        with np.errstate(over="ignore", under="ignore"):
            p = c ** power
        if not (np.isfinite(p.sum()) and p.sum() > 0):  # a large |power| overflows: scale by the largest
            z = power * np.log(c)
            p = np.exp(z - z.max())
        p[self.counts == 0] = 0.0  # a word the corpus lacks (--init) is never drawn
        return p / p.sum()


def _effective_min_count(counts: np.ndarray, min_count: int, max_final_vocab: Optional[int]) -> int:
    if max_final_vocab is not None and counts.shape[0] > max_final_vocab:
        # gensim 4: the smallest min_count that leaves at most max_final_vocab words, no tie split
        return max(min_count, int(counts[max_final_vocab]) + 1)
    return min_count


def vocab_of(table: WordTable, cfg: VocabConfig) -> Tuple[Vocab, np.ndarray]:
    """The sorted, trimmed Vocab of a counted table, and remap: int32[table.n_ids], provisional id
    -> id, or -1 (a dead or trimmed word)."""
    live, counts = table.live()  # in order of first occurrence, so the stable sort breaks ties by it
    order = np.argsort(-counts, kind="stable")
    live, counts = live[order], counts[order]
    keep = _effective_min_count(counts, cfg.min_count, cfg.max_final_vocab)
    n = int(np.count_nonzero(counts >= keep))
    remap = np.full(table.n_ids, -1, np.int32)
    remap[live[:n]] = np.arange(n, dtype=np.int32)
    return Vocab(table.words(live[:n]), counts[:n]), remap


def _table_of(vocab: Vocab) -> Tuple[WordTable, np.ndarray]:
    """A table holding the vocabulary's words (for look-ups), and its provisional id -> vocab id."""
    table = WordTable()
    pids = table.add(vocab.words)
    remap = np.full(table.n_ids + 1, -1, np.int32)  # an unknown word's id, -1, indexes the last slot
    remap[pids[::-1]] = np.arange(len(vocab), dtype=np.int32)[::-1]  # a repeated word: its first id
    return table, remap


def scan_corpus(
    reader: Union[CorpusReader, SentenceReader], cfg: VocabConfig, vocab: Optional[Vocab] = None,
    encode: bool = True, directory: Optional[str] = None, threads: int = 1,
) -> Tuple[Vocab, Optional[EncodedCorpus]]:
    """Read the corpus once: count a vocabulary (unless one is given) and encode it to ids.

    Files are read on raw bytes by ``threads`` workers (data/scan.py); token lists are counted as
    they come. With a directory, the encoded corpus is built in files there and mapped
    (IdStreamBuilder), so memory does not grow with the corpus.

    Raises InputError when the corpus is empty or no word reaches min_count.
    """
    builder = IdStreamBuilder(directory) if encode else None
    given, given_remap = _table_of(vocab) if vocab is not None else (None, None)
    if isinstance(reader, CorpusReader):
        table, maps = scan_files(reader.paths, cfg, reader.stats, given, builder, max(1, threads))
    else:
        table = given or WordTable()
        max_vocab = -1 if given is not None else (cfg.max_vocab_size or 0)
        for tokens, lengths in batched(reader):
            pids = table.add(tokens, max_vocab, cfg.max_word_length or NO_LIMIT)
            if builder is not None:
                builder.add(pids, lengths)
            to_new = table.compact() if max_vocab > 0 else None
            if to_new is not None and builder is not None:
                builder.part(0).renumber(to_new)
        reader.stats.n_long_tokens += table.n_long
        reader.stats.n_pruned = table.n_pruned if given is None else 0
        maps = [None]
    if reader.stats.n_tokens == 0:
        raise InputError(f"corpus {reader.source!r} has no words; give a non-empty text file.")
    if given is None:
        vocab, remap = vocab_of(table, cfg)
    else:
        remap = given_remap
    if len(vocab) == 0:
        raise InputError(
            f"corpus {reader.source!r} has 0 words with count >= {cfg.min_count}; lower --min-count."
        )
    encoded = None
    if builder is not None:
        # a last slot of -1 for the tokens read as -1 (unknown, or over --max-word-length): remap[-1]
        encoded = builder.build([np.append(remap if m is None else compose(m, remap), np.int32(-1)) for m in maps])
        if encoded.n_words == 0:
            raise InputError(
                f"no word of corpus {reader.source!r} is in the vocabulary; "
                "check that --vocab was built from this corpus."
            )
    return vocab, encoded


def read_corpus(
    source: Union[str, os.PathLike, Iterable[Sequence[str]]],
    cfg: VocabConfig,
    vocab_path: Optional[str] = None,
    log: Callable[[str], None] = lambda msg: None,
    directory: Optional[str] = None,
    threads: int = 1,
    given: Optional[Vocab] = None,
) -> Tuple[CorpusReader, Vocab, EncodedCorpus]:
    """Read and encode ``source`` once (a path as CorpusReader reads it, or an iterable of token lists),
    with the vocabulary counted, read from vocab_path, or given (--init's: data/init.init_vocab).

    Logs the corpus warnings and a one-line summary; returns the reader (for its stats). directory:
    where the encoded corpus is built and mapped from (None: in memory); threads: reading workers.
    """
    t0 = time.perf_counter()
    reader = open_corpus(source, cfg.lowercase)
    if given is None and vocab_path:
        given = Vocab.load(vocab_path, cfg.min_count, cfg.max_final_vocab)
    vocab, encoded = scan_corpus(reader, cfg, vocab=given, directory=directory, threads=threads)
    for warning in reader.warnings():
        log("warning: " + warning)
    log(
        f"vocabulary: {len(vocab)} words (min count {cfg.min_count}); corpus: {reader.stats.n_tokens} tokens, "
        f"{encoded.n_words} in vocabulary, {encoded.n_sentences} sentences [{time.perf_counter() - t0:.1f} s]"
    )
    return reader, vocab, encoded
