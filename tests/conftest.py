import importlib.util
import os
import sys

import numpy as np
import pytest

# W2V_TEST_CORES=N: this process and the ones it starts report N cores (tests/fake_cores), as on
# a machine of that size; applied before any test module imports w2v_async (its CLI defaults).
if os.environ.get("W2V_TEST_CORES"):
    _fake = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_cores")
    sys.path.insert(0, _fake)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_fake, os.environ.get("PYTHONPATH")]))
    _spec = importlib.util.spec_from_file_location("_w2v_fake_cores", os.path.join(_fake, "sitecustomize.py"))
    _spec.loader.exec_module(importlib.util.module_from_spec(_spec))  # fakes the cores as it loads


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


class Hooks:
    """The test hooks of w2v_async/testhooks.py, for a process a test starts: env() names the
    stages where it will wait, wait() blocks until it has reached one, release() lets it go on."""

    LIMIT_S = 300  # guards against a hang only: a working run reaches its stage long before

    def __init__(self, directory):
        self.directory = str(directory)

    def env(self, *stages, **extra):
        return dict(os.environ, W2V_ASYNC_TEST_HOLD=",".join(stages), W2V_ASYNC_TEST_HOLD_DIR=self.directory,
                    **extra)

    def reached(self, stage):
        return os.path.exists(os.path.join(self.directory, stage))

    def wait(self, stage, proc):
        """Block until proc has reached stage; fails if proc ends first."""
        import time

        deadline = time.monotonic() + self.LIMIT_S
        while not self.reached(stage):
            assert proc.poll() is None, f"the process ended (exit {proc.returncode}) before reaching {stage}"
            assert time.monotonic() < deadline, f"{stage} was not reached within {self.LIMIT_S} s"
            time.sleep(0.005)

    def release(self, stage):
        open(os.path.join(self.directory, stage + ".release"), "w").close()


@pytest.fixture
def hooks(tmp_path_factory):
    """Hooks with their files in a folder of their own (tests list what tmp_path holds)."""
    return Hooks(tmp_path_factory.mktemp("hooks"))
