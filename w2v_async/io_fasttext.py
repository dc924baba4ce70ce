"""fastText's files for a subword model: MODEL.bin in fastText's binary format and MODEL.vec beside
it (word2vec text, as fastText writes it); both read back by gensim's load_facebook_model /
load_facebook_vectors (io.load_vectors; tests/test_subwords.py) and by fastText 0.9.2 itself, with
the same vectors as gensim gives (checked by hand: fastText is no dependency of ours).

Written here rather than through gensim's save_facebook_model, because that was measured too slow
and too large for what it writes: it needs a gensim FastText model, whose vocabulary build
initialises all --bucket n-gram rows at random before ours replace them, and it copies the whole
input matrix once more to write it. On 3.4M words of the benchmark corpus (29k words, 2M buckets)
it took 11.6 s and 2.0 GB peak against 8.3 s of training at 0.37 GB. This writer streams the rows:
the layout is gensim's _fasttext_bin and fastText's Args / Dictionary / DenseMatrix::save.

Our model holds only the buckets some vocabulary word uses (data/subwords.py); fastText's file holds
all --bucket rows, so the others are written as zeros: an unseen word's vector is then the mean over
its n-grams, the untrained ones counting as zero (fastText's would add their random initial values).
"""

import os
import struct
from typing import List

import numpy as np

from .config import Word2VecConfig
from .errors import ConfigError
from .io import FASTTEXT_MAGIC, atomic_path

FASTTEXT_VERSION = 12
LOSS_NS, MODEL_CBOW, MODEL_SG = 2, 1, 2  # fastText's loss_name and model_name enums
ROWS_AT_ONCE = 65_536  # bucket rows written at a time


def vec_path(path: str) -> str:
    """Where the .vec of a fastText MODEL.bin goes: MODEL.vec."""
    return os.path.splitext(path)[0] + ".vec"


def check_fasttext_path(path: str) -> None:
    """-o MODEL.bin of a subword model writes MODEL.vec beside it: refuse a name that would be both."""
    if vec_path(path) == path:
        raise ConfigError(f"-o {path!r}: a subword model's binary output is fastText's MODEL.bin with MODEL.vec "
                          "beside it; give -o a name ending in .bin (or --format txt for word vectors only).")


def n_buckets(cfg: Word2VecConfig) -> int:
    """The n-gram rows a fastText file holds: --bucket, or none with --maxn 0 (as gensim reads it)."""
    return cfg.bucket if cfg.maxn > 0 else 0


def _header(words: List[str], counts: np.ndarray, cfg: Word2VecConfig, min_count: int) -> bytes:
    args = struct.pack("<12id", cfg.dim, cfg.window, cfg.epochs, min_count, cfg.negative, 1, LOSS_NS,
                       MODEL_SG if cfg.model == "sgns" else MODEL_CBOW, n_buckets(cfg), cfg.minn, cfg.maxn, 100,
                       cfg.sample)
    entries = b"".join(w.encode("utf-8") + b"\0" + struct.pack("<qb", int(c), 0) for w, c in zip(words, counts))
    dictionary = struct.pack("<iiiqq", len(words), len(words), 0, int(np.sum(counts)), -1) + entries
    return struct.pack("<ii", FASTTEXT_MAGIC, FASTTEXT_VERSION) + args + dictionary


def save_fasttext(path: str, words: List[str], counts: np.ndarray, cfg: Word2VecConfig, params: dict,
                  buckets: np.ndarray, vectors: np.ndarray, min_count: int = 1) -> None:
    """MODEL.bin (fastText's binary format: the words' rows, then all cfg.bucket n-gram rows, the
    ones in params["w_sub"] at their buckets, then w_out) and MODEL.vec (the words' vectors), each
    atomically."""
    w_sub, dim, bucket = params["w_sub"], cfg.dim, n_buckets(cfg)
    order = np.argsort(buckets, kind="stable")
    sorted_buckets = buckets[order]
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(_header(words, counts, cfg, min_count))
        f.write(b"\0")  # quant_input: false
        f.write(struct.pack("<qq", len(words) + bucket, dim))
        f.write(memoryview(np.ascontiguousarray(params["w_in"], np.float32)))  # no copy of the matrix
        block = np.zeros((ROWS_AT_ONCE, dim), np.float32)
        for first in range(0, bucket, ROWS_AT_ONCE):
            n = min(ROWS_AT_ONCE, bucket - first)
            lo, hi = np.searchsorted(sorted_buckets, [first, first + n])
            block[:n] = 0.0
            block[sorted_buckets[lo:hi] - first] = w_sub[order[lo:hi]]
            f.write(memoryview(block[:n]))
        f.write(b"\0")  # qout: false
        f.write(struct.pack("<qq", len(words), dim))
        f.write(memoryview(np.ascontiguousarray(params["w_out"], np.float32)))
    save_vec(vec_path(path), words, vectors)


def save_vec(path: str, words: List[str], vectors: np.ndarray) -> None:
    """word2vec text with 6 significant digits, as fastText's .vec (gensim's writer, at float32's
    full precision, took 4.6 s for 29k words of dim 100; this one a fifth of that)."""
    fmt = " ".join(["{:.6g}"] * vectors.shape[1])
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{len(words)} {vectors.shape[1]}\n")
        for first in range(0, len(words), ROWS_AT_ONCE):
            rows = vectors[first: first + ROWS_AT_ONCE].tolist()
            f.write("".join(f"{w} {fmt.format(*row)}\n" for w, row in zip(words[first: first + ROWS_AT_ONCE], rows)))


def fasttext_keyed_vectors(words: List[str], counts: np.ndarray, cfg: Word2VecConfig, params: dict,
                           buckets: np.ndarray, vectors: np.ndarray):
    """gensim FastTextKeyedVectors of a subword run (what load_facebook_vectors gives for its .bin):
    the words' vectors, and every --bucket n-gram row (unused ones zero) for words it never saw."""
    from gensim.models.fasttext import FastTextKeyedVectors

    kv = FastTextKeyedVectors(cfg.dim, cfg.minn, cfg.maxn, n_buckets(cfg), count=0, dtype=np.float32)
    kv.add_vectors(words, vectors)
    for word, count in zip(words, counts):
        kv.set_vecattr(word, "count", int(count))
    kv.vectors_vocab = np.array(params["w_in"], np.float32)
    kv.vectors_ngrams = np.zeros((n_buckets(cfg), cfg.dim), np.float32)
    kv.vectors_ngrams[buckets] = params["w_sub"]
    kv.recalc_char_ngram_buckets()
    return kv
