"""The sparsity HOGWILD!'s speedup argument assumes, measured on the updates a corpus and settings
produce (Omega, Delta, rho of the update hypergraph), and the collisions the threads really had,
by word frequency rank."""

from typing import Dict, List

import numpy as np

from ..config import ExperimentConfig, Word2VecConfig

# word frequency ranks (ids: the vocabulary is sorted by count) of the buckets the report compares
RANK_BUCKETS = ((0, 10), (10, 100), (100, 1_000), (1_000, 10_000), (10_000, None))
# hypergraphs without the rows of the most frequent words: what is left when the head is taken out
HEAD_CUTS = (0, 100, 1_000)


def _sample_sentences(encoded, n_words: int, seed: int) -> np.ndarray:
    """Random sentences (sorted ids) of about n_words words in all, from the whole corpus."""
    lengths = np.diff(encoded.sent_starts)
    order = np.random.default_rng(seed).permutation(encoded.n_sentences)
    take = int(np.searchsorted(np.cumsum(lengths[order]), n_words)) + 1
    return np.sort(order[:take]).astype(np.int64)


def update_hypergraphs(encoded, vocab, cfg: ExperimentConfig) -> List[Dict]:
    """Omega, Delta, rho of skip-gram's pair updates and HogBatch's window updates over a random
    sample of about cfg.sparsity_words words (drawn as the kernels draw them: subsampling, reduced
    windows, negatives), over all rows and without the HEAD_CUTS most frequent words' rows."""
    from ..models.sampling import build_alias_table  # the kernels: compiled only for the experiment
    from ..models.sparsity import hypergraph_stats, update_edges
    from ..models.word2vec_batch import sample_batch

    w2v = Word2VecConfig(dim=cfg.dim, seed=cfg.seed)
    noise_prob, noise_alias = build_alias_table(vocab.noise_distribution())
    tables = (vocab.keep_probs(w2v.sample), noise_prob, noise_alias)
    sentences = _sample_sentences(encoded, cfg.sparsity_words, cfg.seed)
    n_read = int(np.diff(encoded.sent_starts)[sentences].sum())
    n_words = len(vocab)
    out = []
    for update, per_context, per_word in (("pair", w2v.negative, 0), ("window", 0, w2v.negative)):
        batch = (np.zeros(n_read, np.int32), np.zeros(len(sentences) + 1, np.int64), np.zeros(n_read, np.int32),
                 np.zeros(n_read + 1, np.int64),
                 np.zeros(n_read * (2 * w2v.window * per_context + per_word), np.int32))
        n_sent = sample_batch((encoded.ids, encoded.sent_starts, sentences), tables,
                              np.array([cfg.seed | 1], np.uint64), w2v.windows, per_context, per_word, batch)[0]
        for cut in HEAD_CUTS:
            rows, bounds = update_edges(batch, n_sent, n_words, per_context, cut)
            omega, delta, rho = hypergraph_stats(rows, bounds, 2 * n_words)
            out.append({"update": update, "without_top": cut, "updates": len(bounds) - 1, "words": n_read,
                        "omega": int(omega), "delta": float(delta), "rho": float(rho)})
    return out


def cooccurrence_hypergraph(cooc, cfg: ExperimentConfig) -> List[Dict]:
    """Omega, Delta, rho of GloVe's updates (entry (i, j): rows i of W and V + j of W~, with their
    biases) over a random sample of cfg.sparsity_words entries."""
    from ..models.sparsity import hypergraph_stats  # the kernels: compiled only for the experiment

    n_words = len(cooc.vocab)
    rng = np.random.default_rng(cfg.seed)
    pick = np.sort(rng.choice(cooc.nnz, size=min(cooc.nnz, cfg.sparsity_words), replace=False))
    i = np.asarray(cooc.rows[pick], np.int64)
    j = np.asarray(cooc.cols[pick], np.int64)
    out = []
    for cut in HEAD_CUTS:
        keep_i, keep_j = i >= cut, j >= cut
        sizes = keep_i.astype(np.int64) + keep_j
        rows = np.stack([np.where(keep_i, i, -1), np.where(keep_j, n_words + j, -1)], axis=1).ravel()
        rows = rows[rows >= 0]
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        omega, delta, rho = hypergraph_stats(rows, bounds, 2 * n_words)
        out.append({"update": "entry", "without_top": cut, "updates": len(pick), "words": len(pick),
                    "omega": int(omega), "delta": float(delta), "rho": float(rho)})
    return out


def collisions_by_rank(writes: np.ndarray, collided: np.ndarray, matrices=("w_in", "w_out")) -> List[Dict]:
    """For each RANK_BUCKETS bucket and matrix (skip-gram: w_in, the contexts, and w_out, the
    centers and negatives; GloVe: w_word, w_ctx): the share of all row writes that went to its
    rows, and how many of those another thread's write to the same row overtook (the collision
    rate)."""
    n_words = writes.shape[0] // 2
    total = max(int(writes.sum()), 1)
    out = []
    for lo, hi in RANK_BUCKETS:
        if lo >= n_words:
            break
        hi = n_words if hi is None else min(hi, n_words)
        for matrix, base in zip(matrices, (0, n_words)):
            w, c = int(writes[base + lo: base + hi].sum()), int(collided[base + lo: base + hi].sum())
            out.append({"ranks": f"{lo + 1}-{hi}", "matrix": matrix, "write_share": w / total,
                        "collision_rate": c / w if w else 0.0, "writes": w, "collided": c})
    return out
