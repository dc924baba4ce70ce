import numpy as np
import pytest


def planted_corpus(path, n_groups=4, group_size=10, n_sentences=1500, length=20, seed=0, mix=0.0):
    """Sentences that each draw words from one topic group: words of a group share contexts.

    With mix > 0, each word comes from a random group with that probability. GloVe needs it: when
    words co-occur only within their group, every observed log count is about the same, the biases
    fit them all, and the vectors need not learn the groups (glove.c's biases learn at rate 1).
    """
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for _ in range(n_sentences):
            g = rng.integers(n_groups)
            words = rng.integers(group_size, size=length)
            groups = np.where(rng.random(length) < mix, rng.integers(n_groups, size=length), g) if mix else [g] * length
            f.write(" ".join(f"g{a}w{w}" for a, w in zip(groups, words)) + "\n")
    return path


@pytest.fixture
def planted(tmp_path):
    return str(planted_corpus(tmp_path / "planted.txt"))


@pytest.fixture
def planted_mixed(tmp_path):
    """The planted corpus with a tenth of the words from other groups: what GloVe can learn groups from."""
    return str(planted_corpus(tmp_path / "planted.txt", mix=0.1))


def zipf_corpus(path, n_words=3000, n_tokens=400_000, exponent=1.1, length=20, seed=0):
    """Words drawn from a Zipf law with a very hot head (the top two 12% of tokens each, as "the"
    is 6% of English), each followed by its partner word (id xor 1) half the time."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_words + 1) ** exponent
    ids = rng.choice(n_words, size=n_tokens, p=p / p.sum())
    follow = np.flatnonzero(rng.random(n_tokens - 1) < 0.5) + 1
    ids[follow] = ids[follow - 1] ^ 1
    with open(path, "w") as f:
        for s in range(0, n_tokens, length):
            f.write(" ".join(f"w{i}" for i in ids[s : s + length]) + "\n")
    return path


def group_margin(words, vectors):
    """Mean cosine within planted groups minus mean cosine across groups (words g<group>w<i>)."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = unit @ unit.T
    group = np.array([w.split("w")[0] for w in words])
    same = (group[:, None] == group[None, :]) & ~np.eye(len(group), dtype=bool)
    return cos[same].mean() - cos[group[:, None] != group[None, :]].mean()


def random_cooc(n_words, seed=0):
    """A dense random co-occurrence matrix of n_words^2 entries (not from a corpus)."""
    from w2v_async.data.cooccur import Cooccurrence
    from w2v_async.data.vocab import Vocab

    rng = np.random.default_rng(seed)
    rows, cols = np.divmod(np.arange(n_words * n_words, dtype=np.int64), n_words)
    values = rng.gamma(0.5, 20.0, size=rows.shape).astype(np.float32) + np.float32(0.01)
    vocab = Vocab([f"w{i}" for i in range(n_words)], np.arange(n_words, 0, -1) + 10)
    return Cooccurrence(rows.astype(np.int32), cols.astype(np.int32), values, vocab, 10, True)
