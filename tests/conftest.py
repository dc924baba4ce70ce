import numpy as np
import pytest


def planted_corpus(path, n_groups=4, group_size=10, n_sentences=1500, length=20, seed=0):
    """Sentences that each draw words from one topic group: words of a group share contexts."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for _ in range(n_sentences):
            g = rng.integers(n_groups)
            words = rng.integers(group_size, size=length)
            f.write(" ".join(f"g{g}w{w}" for w in words) + "\n")
    return path


@pytest.fixture
def planted(tmp_path):
    return str(planted_corpus(tmp_path / "planted.txt"))
