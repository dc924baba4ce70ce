"""w2v-async: lock-free (Hogwild) word-embedding training in Python + numba."""

__version__ = "0.1.0"
