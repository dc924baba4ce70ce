"""Starting a run from a trained model (--init): the SOURCE read (a model file from --save-model, a
checkpoint directory, a vectors file, or gensim KeyedVectors), the vocabulary the run trains, and
the source row each of its words starts from.

The vocabulary is ordered by the new corpus's counts, as every run's is (the hot rows, the Huffman
tree and the n-gram rows' order assume the most frequent words first), and its counts are the new
corpus's: subsampling and the noise distribution follow the text being trained on. A source word
the corpus lacks has count 0: it is never subsampled in, never drawn as a negative, and keeps the
vectors it came with.
"""

import dataclasses
import os
import zipfile
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np

from ..config import VocabConfig
from ..errors import ConfigError, InputError
from ..io import load_checkpoint, load_vectors, read_checkpoint, unpack_words
from .cache import read_corpus_cached
from .corpus import open_corpus
from .vocab import Vocab, scan_corpus

INIT_VOCAB = ("extend", "keep")
# what a model file or checkpoint holds for a word, by model: word2vec's rows, GloVe's W, W~, biases and AdaGrad's sums
MODEL_ARRAYS = {"sgns": ("w_in", "w_out", "syn1"), "cbow": ("w_in", "w_out", "syn1"),
                "glove": ("w_word", "w_ctx", "b_word", "b_ctx", "gradsq_word", "gradsq_ctx", "gradsq_b_word",
                          "gradsq_b_ctx")}


@dataclass
class InitSource:
    """A trained model to start from: its words, their rows (arrays: w_in, and w_out and syn1 when
    it had them, all float32 in words' order, syn1 in its tree's; a GloVe model's MODEL_ARRAYS),
    and for a model file or a checkpoint its counts, --model and train settings (None for plain
    vectors)."""

    words: List[str]
    arrays: Dict[str, np.ndarray]
    name: str
    counts: Optional[np.ndarray] = None
    model: Optional[str] = None
    config: Optional[dict] = None

    @property
    def dim(self) -> int:
        return int(self.vectors().shape[1])

    def vectors(self) -> np.ndarray:
        """Its word vectors: w_in, or GloVe's W + W~ (what a GloVe run writes by default)."""
        if "w_in" in self.arrays:
            return self.arrays["w_in"]
        return self.arrays["w_word"] + self.arrays["w_ctx"]


def load_init(source, log: Callable[[str], None] = lambda msg: None) -> InitSource:
    """The SOURCE of --init: a path (a model file or checkpoint .npz, a checkpoint directory, or a
    word2vec text / binary, GloVe text or fastText .vec / .bin vectors file) or a gensim KeyedVectors.
    Raises a one-line error naming what is wrong."""
    if not isinstance(source, (str, os.PathLike)):
        if not (hasattr(source, "index_to_key") and hasattr(source, "vectors")):
            raise ConfigError(f"init must be a path or a gensim KeyedVectors, got {type(source).__name__}.")
        return _from_keyed_vectors(source, "the given KeyedVectors")
    path = os.fspath(source)
    if os.path.isdir(path):
        meta, arrays, path = load_checkpoint(path, log)
        return _from_model(meta, arrays, path)
    if not os.path.isfile(path):
        raise ConfigError(f"--init {path!r} does not exist; give a model file (from --save-model), a checkpoint "
                          "directory or a vectors file.")
    if zipfile.is_zipfile(path):
        try:
            meta, arrays = read_checkpoint(path)
        except InputError as e:
            raise InputError(f"--init: {e} Give a file written by --save-model or --checkpoint-dir.") from e
        return _from_model(meta, arrays, path)
    return _from_keyed_vectors(load_vectors(path), path)


def _from_model(meta: dict, arrays: Dict[str, np.ndarray], path: str) -> InitSource:
    model = meta.get("model")
    if model not in MODEL_ARRAYS or MODEL_ARRAYS[model][0] not in arrays:
        raise InputError(f"--init {path!r} holds no model this version reads (--model {model}); give a vectors "
                         "file instead.")
    if "w_sub" in arrays:
        raise InputError(f"--init {path!r} is a --subwords model, which cannot start this run yet; give its .vec "
                         "vectors file instead.")
    if meta.get("engine") == "sandblaster":
        raise InputError(f"--init {path!r} is an --engine sandblaster checkpoint (L-BFGS's state); give its vectors "
                         "file or --save-model file instead.")
    params = {name: arrays[name] for name in MODEL_ARRAYS[model] if name in arrays}
    return InitSource(unpack_words(arrays), params, path, arrays.get("counts"), model, meta["config"]["train"])


def _from_keyed_vectors(kv, name: str) -> InitSource:
    vectors = np.asarray(kv.vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] == 0 or vectors.shape[1] == 0:
        raise InputError(f"--init {name} holds no vectors; give a trained model.")
    if not np.isfinite(vectors).all():
        raise InputError(f"--init {name} holds NaN or infinite values; give a model that trained without diverging.")
    return InitSource(list(kv.index_to_key), {"w_in": np.ascontiguousarray(vectors)}, name)


def count_corpus(source, cfg: VocabConfig, threads: int) -> Vocab:
    """Every word of the corpus with its count (min count 1): what init_vocab chooses from."""
    every = dataclasses.replace(cfg, min_count=1, max_final_vocab=None)
    vocab, _ = scan_corpus(open_corpus(source, cfg.lowercase), every, encode=False, threads=threads)
    return vocab


def init_vocab(source: InitSource, counted: Vocab, mode: str, cfg: VocabConfig) -> Vocab:
    """The run's vocabulary: with mode "extend", the corpus's words that pass --min-count and
    --max-final-vocab together with every source word (those below --min-count in the corpus keep
    their rows and train on what the corpus has of them); with "keep", the source's words only.
    Sorted by the corpus's counts (counted: every word of the corpus), ties in the corpus's order,
    then the source's; counts are the corpus's (0 for a word it lacks)."""
    if mode not in INIT_VOCAB:
        raise ConfigError(f"--init-vocab must be one of {', '.join(INIT_VOCAB)}, got {mode!r}.")
    old = list(dict.fromkeys(source.words))  # a vectors file may repeat a word: its first row counts
    if mode == "keep":
        words = old
    else:
        new = counted.trimmed(cfg.min_count, cfg.max_final_vocab).words
        seen = set(new)
        words = new + [w for w in old if w not in seen]
    counts = np.array([counted.counts[counted.index[w]] if w in counted.index else 0 for w in words], np.int64)
    if not counts.any():
        raise InputError(f"no word of --init {source.name} or of the corpus with count >= {cfg.min_count} occurs in "
                         "the corpus; check the corpus, or use --init-vocab extend.")
    order = np.argsort(-counts, kind="stable")
    return Vocab([words[i] for i in order], counts[order])


def source_rows(source: InitSource, words: List[str]) -> np.ndarray:
    """int64[V]: the source row each word starts from (its first), -1 for a word the source lacks."""
    index: Dict[str, int] = {}
    for i, w in enumerate(source.words):
        index.setdefault(w, i)
    return np.array([index.get(w, -1) for w in words], np.int64)


@dataclass
class StartFrom:
    """--init for an engine: the source's arrays (w_in, and w_out, and syn1 when its Huffman tree
    is this run's) and rows : int64[V], the source row each word of the run starts from (-1: a new
    word, which starts as a fresh run's do)."""

    arrays: Dict[str, np.ndarray]
    rows: np.ndarray
    lockf: Optional[np.ndarray] = None  # float32[V]: the factor of each input row's updates (--lock-init)

    def fill(self, fresh: Dict[str, np.ndarray]) -> None:
        """Copy the source's rows into a fresh run's arrays of the same names (those the source
        lacks keep their fresh rows: a plain vectors file's w_out stays at zero, where word2vec
        starts it)."""
        old = np.flatnonzero(self.rows >= 0)
        for name, array in fresh.items():
            if name in self.arrays and name != "syn1":
                for first in range(0, old.shape[0], 1 << 16):  # in pieces: no matrix-sized temporary
                    part = old[first: first + (1 << 16)]
                    array[part] = self.arrays[name][self.rows[part]]

    def syn1(self) -> Optional[np.ndarray]:
        """The source's hierarchical-softmax nodes (when its tree is the run's: start_from), or None."""
        syn1 = self.arrays.get("syn1")
        return None if syn1 is None else np.array(syn1, np.float32, order="C")


def check_init(source: InitSource, dim: int, subwords: bool = False) -> None:
    """Refuse, before the corpus is read, a source this run cannot start from."""
    if source.dim != dim:
        raise ConfigError(f"--init {source.name} has {source.dim}-dimensional vectors but --dim is {dim}; give --dim "
                          f"{source.dim} (or leave --dim out).")
    if subwords:
        raise ConfigError("--init cannot start a --subwords run yet; train it from scratch.")


def start_from(source: InitSource, vocab: Vocab, negative: int, hs: bool, lock: Optional[float] = None) -> StartFrom:
    """What the engine copies from the source: w_in, w_out (negative sampling's output rows, when
    the source has them), and syn1 with --hs only when the source's tree is this run's (the same
    words and counts); else hierarchical softmax's nodes start at zero. lock: the factor of the
    updates of the input rows that came from the source (gensim's vectors_lockf; 0 freezes them),
    new words' and every output row's taking whole updates."""
    arrays = {"w_in": source.vectors()}
    if negative > 0 and "w_out" in source.arrays:
        arrays["w_out"] = source.arrays["w_out"]
    same_tree = source.words == vocab.words and source.counts is not None and \
        np.array_equal(source.counts, vocab.counts)
    if hs and same_tree and "syn1" in source.arrays:
        arrays["syn1"] = source.arrays["syn1"]
    rows = source_rows(source, vocab.words)
    lockf = None if lock is None else np.where(rows >= 0, np.float32(lock), np.float32(1.0)).astype(np.float32)
    return StartFrom(arrays, rows, lockf)


def read_for_init(corpus, cfg: VocabConfig, source: InitSource, mode: str, log: Callable[[str], None],
                  directory: Optional[str], threads: int, cache_dir: Optional[str]):
    """The corpus of an --init run, read twice: counted (count_corpus), then encoded with
    init_vocab's vocabulary (through the cache). Returns read_corpus_cached's tuple."""
    if not isinstance(corpus, (str, os.PathLike)) and iter(corpus) is corpus:
        raise ConfigError("--init reads the corpus twice (its counts, then the text): give a list of token lists or "
                          "a re-iterable corpus, not a generator.")
    if isinstance(corpus, (str, os.PathLike)) and os.fspath(corpus) == "-":
        raise ConfigError("--init reads the corpus twice (its counts, then the text): give a file, not stdin.")
    given = init_vocab(source, count_corpus(corpus, cfg, threads), mode, cfg)
    read = read_corpus_cached(corpus, cfg, None, log, directory, threads, cache_dir, given)
    n_old = int(np.count_nonzero(source_rows(source, read[1].words) >= 0))
    log(f"--init {source.name}: {n_old} of the {len(read[1])} words start from it (--init-vocab {mode})")
    return read


def glove_start(source: InitSource, vocab: Vocab) -> StartFrom:
    """What a GloVe run copies from the source: a GloVe model's W, W~, biases and AdaGrad's sums;
    from word vectors v (a word2vec model, a vectors file) W = W~ = v / 2, so that the W + W~ it
    writes starts at v, with zero biases and fresh sums."""
    if source.model == "glove":
        arrays = dict(source.arrays)
    else:
        half = np.ascontiguousarray(source.vectors() * np.float32(0.5))
        zeros = np.zeros(half.shape[0], np.float32)
        arrays = {"w_word": half, "w_ctx": half, "b_word": zeros, "b_ctx": zeros}
    return StartFrom(arrays, source_rows(source, vocab.words))


def with_source_words(vocab: Vocab, source: InitSource, mode: str) -> Vocab:
    """A co-occurrence file's vocabulary (--model glove --cooccur) with, for --init-vocab extend, the
    source's words it lacks after it at count 0 (no entry touches them: they keep their rows)."""
    if mode != "extend":
        raise ConfigError("--init-vocab keep with --cooccur: the matrix's words are the run's; count it with --vocab "
                          "listing the source's words, or train GloVe from the CORPUS.")
    seen = set(vocab.words)
    extra = [w for w in dict.fromkeys(source.words) if w not in seen]
    return Vocab(vocab.words + extra, np.concatenate([vocab.counts, np.zeros(len(extra), np.int64)]))
