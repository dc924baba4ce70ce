"""The numba kernels, one file per model plus the shared parts; they import nothing else of w2v_async."""
