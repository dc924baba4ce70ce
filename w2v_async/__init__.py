"""w2v-async: lock-free (Hogwild) word-embedding training in Python + numba.

    import w2v_async
    kv, summary = w2v_async.train_word2vec("corpus.txt.gz", epochs=5, threads=8)
    report = w2v_async.evaluate(kv)
"""

__version__ = "0.1.0"
API = ("train_word2vec", "train_glove", "evaluate", "build_vocab", "count_cooccurrences", "phrases")


def __getattr__(name):
    if name in API:
        from . import api  # on first use: `import w2v_async` and `w2v-async --help` stay free of numba and gensim

        return getattr(api, name)
    raise AttributeError(f"module 'w2v_async' has no attribute {name!r}")
