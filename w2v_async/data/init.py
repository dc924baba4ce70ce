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
import struct
import zipfile
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np

from ..config import VocabConfig
from ..errors import ConfigError, InputError
from ..io import FASTTEXT_MAGIC, load_checkpoint, load_vectors, read_checkpoint, unpack_words
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
    # a subword model's (ours, fastText's): (minn, maxn, bucket), the bucket of each row of arrays["w_sub"]
    # (whose w_in holds each word's own row), and the words' vectors (the mean of their rows)
    subwords: Optional[tuple] = None
    ngram_buckets: Optional[np.ndarray] = None
    composed: Optional[np.ndarray] = None

    @property
    def dim(self) -> int:
        return int(self.arrays["w_in" if "w_in" in self.arrays else "w_word"].shape[1])

    def vectors(self) -> np.ndarray:
        """Its word vectors: w_in, a subword model's composed vectors, or GloVe's W + W~ (what each
        writes)."""
        if self.composed is not None:
            return self.composed
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
        meta, arrays, path = load_checkpoint(path, log, "--init")
        return _from_model(meta, arrays, path)
    if not os.path.isfile(path):
        raise ConfigError(f"--init {path!r} does not exist; give a model file (from --save-model), a checkpoint "
                          "directory or a vectors file.")
    with open(path, "rb") as f:
        if f.read(4) == FASTTEXT_MAGIC.to_bytes(4, "little"):
            return _from_fasttext(path)
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
    if meta.get("engine") == "sandblaster":
        raise InputError(f"--init {path!r} is an --engine sandblaster checkpoint (L-BFGS's state); give the vectors "
                         "file it wrote (-o) instead.")
    params = {name: arrays[name] for name in MODEL_ARRAYS[model] + ("w_sub",) if name in arrays}
    words, counts, train = unpack_words(arrays), arrays.get("counts"), meta["config"]["train"]
    source = InitSource(words, params, path, counts, model, train)
    if "w_sub" in arrays:  # its n-gram rows: the buckets its vocabulary uses, laid out as its run laid them
        from ..models.subwords import compose  # the subword kernels: compiled only when a subword model is read
        from .subwords import subword_rows

        source.subwords = (train["minn"], train["maxn"], train["bucket"])
        sub = subword_rows(words, counts, *source.subwords)
        source.ngram_buckets = sub.buckets
        source.composed = np.empty_like(params["w_in"])
        compose(params["w_in"], params["w_sub"], sub.starts, sub.rows, source.composed)
    return source


def _from_fasttext(path: str) -> InitSource:
    """A fastText .bin, read by gensim (load_facebook_model: the output rows too)."""
    from gensim.models.fasttext import load_facebook_model

    try:
        model = load_facebook_model(path)
    except (ValueError, EOFError, UnicodeDecodeError, AssertionError, struct.error) as e:
        raise InputError(f"--init {path!r} is a fastText .bin that cannot be read ({e}); the file may be truncated: "
                         "write it again.") from e
    source = _from_keyed_vectors(model.wv, path)
    syn1neg = getattr(model, "syn1neg", None)
    if syn1neg is not None and syn1neg.shape == source.arrays["w_in"].shape:
        source.arrays["w_out"] = np.asarray(syn1neg, np.float32)
    return source


def _from_keyed_vectors(kv, name: str) -> InitSource:
    vectors = np.asarray(kv.vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] == 0 or vectors.shape[1] == 0:
        raise InputError(f"--init {name} holds no vectors; give a trained model.")
    if not np.isfinite(vectors).all():
        raise InputError(f"--init {name} holds NaN or infinite values; give a model that trained without diverging.")
    if not hasattr(kv, "vectors_ngrams"):
        return InitSource(list(kv.index_to_key), {"w_in": np.ascontiguousarray(vectors)}, name)
    # FastTextKeyedVectors: each word's own row, and every bucket's row
    arrays = {"w_in": np.asarray(kv.vectors_vocab, np.float32), "w_sub": np.asarray(kv.vectors_ngrams, np.float32)}
    return InitSource(list(kv.index_to_key), arrays, name, subwords=(kv.min_n, kv.max_n, kv.bucket),
                      ngram_buckets=np.arange(arrays["w_sub"].shape[0]), composed=np.ascontiguousarray(vectors))


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
    ngram_buckets: Optional[np.ndarray] = None  # a subword source's: the bucket of each row of arrays["w_sub"]

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

    def fill_ngrams(self, w_sub: np.ndarray, buckets: np.ndarray) -> None:
        """Copy a subword source's n-gram rows into w_sub's rows of the same buckets (buckets: each
        row's); the buckets it lacks keep their fresh rows."""
        if self.ngram_buckets is None or self.ngram_buckets.shape[0] == 0:
            return
        order = np.argsort(self.ngram_buckets, kind="stable")
        known = self.ngram_buckets[order]
        at = np.minimum(np.searchsorted(known, buckets), known.shape[0] - 1)
        hit = np.flatnonzero(known[at] == buckets)
        for first in range(0, hit.shape[0], 1 << 16):  # in pieces: no matrix-sized temporary
            part = hit[first: first + (1 << 16)]
            w_sub[part] = self.arrays["w_sub"][order[at[part]]]

    def syn1(self) -> Optional[np.ndarray]:
        """The source's hierarchical-softmax nodes (when its tree is the run's: start_from), or None."""
        syn1 = self.arrays.get("syn1")
        return None if syn1 is None else np.array(syn1, np.float32, order="C")


def check_init(source: InitSource, dim: int, subwords: Optional[tuple] = None) -> None:
    """Refuse, before the corpus is read, a source this run cannot start from (subwords: a
    --subwords run's (minn, maxn, bucket), whose n-gram rows mean the source's only with its)."""
    if source.dim != dim:
        raise ConfigError(f"--init {source.name} has {source.dim}-dimensional vectors but --dim is {dim}; give --dim "
                          f"{source.dim} (or leave --dim out).")
    if subwords is not None and source.subwords is not None and tuple(source.subwords) != tuple(subwords):
        minn, maxn, bucket = source.subwords
        raise ConfigError(f"--init {source.name} hashed n-grams with --minn {minn} --maxn {maxn} --bucket {bucket}; "
                          "give the same, so that its n-gram rows mean the same n-grams.")


def start_from(source: InitSource, vocab: Vocab, negative: int, hs: bool, lock: Optional[float] = None,
               subwords: bool = False) -> StartFrom:
    """What the engine copies from the source: w_in, w_out (negative sampling's output rows, when
    the source has them), and syn1 with --hs only when the source's tree is this run's (the same
    words and counts); else hierarchical softmax's nodes start at zero. lock: the factor of the
    updates of the input rows that came from the source (gensim's vectors_lockf; 0 freezes them),
    new words' and every output row's taking whole updates. subwords: a --subwords run, which
    takes a subword source's own word rows and n-gram rows (another source's vectors as own rows)."""
    arrays = {"w_in": source.arrays["w_in"] if subwords and source.subwords else source.vectors()}
    if subwords and source.subwords:
        arrays["w_sub"] = source.arrays["w_sub"]
    if negative > 0 and "w_out" in source.arrays:
        arrays["w_out"] = source.arrays["w_out"]
    same_tree = source.words == vocab.words and source.counts is not None and \
        np.array_equal(source.counts, vocab.counts)
    if hs and same_tree and "syn1" in source.arrays:
        arrays["syn1"] = source.arrays["syn1"]
    rows = source_rows(source, vocab.words)
    lockf = None if lock is None else np.where(rows >= 0, np.float32(lock), np.float32(1.0)).astype(np.float32)
    return StartFrom(arrays, rows, lockf, source.ngram_buckets if "w_sub" in arrays else None)


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
