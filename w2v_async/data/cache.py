"""The encoded-corpus cache: a corpus is read and encoded once; later runs on the same files with
the same vocabulary settings map the stored ids instead.

An entry is a folder named by a hash of its key: the files' absolute paths, sizes, modification
times and a hash of their first and last MiB, the vocabulary settings (and the --vocab file, the
same way), and the format version. It holds ids.i32 and starts.i64 (raw arrays), vocab.tsv and
manifest.json, which records the key, the array lengths, the reading statistics and the SHA-256
fingerprint of the arrays. An entry is trusted only when its manifest, its file sizes and its
fingerprint all match (a damaged one is removed and the corpus read again). Entries are written to
a hidden folder (.tmp-PID@HOST.XXXX) and renamed into place, after the job that read the corpus
has succeeded; storing one removes the entries of earlier versions of the same files, and the
hidden folders of writers that were killed (io.remove_dead_leftovers: a live writer's stay).
"""

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from ..config import VocabConfig
from ..errors import InputError
from ..io import fingerprint, remove_dead_leftovers, writer_tag
from .corpus import STDIN, CorpusReader, CorpusStats, resolve_paths
from .encoded import EncodedCorpus
from .scan import counting_readers
from .vocab import Vocab, read_corpus

CACHE_VERSION = 1
ENDS_BYTES = 1 << 20  # hashed at each end of every file
WRITE_PIECE = 1 << 24  # elements written per call when storing
ROOM_PER_BYTE = 0.5  # what building the encoded corpus surely takes, per byte of text (see check_room)
PACKED_RATIO = 3  # bytes of text per byte of a .gz or .bz2 file, about


def default_cache_dir(output: Optional[str]) -> Optional[str]:
    """.w2v-cache beside the output (None without an output)."""
    return None if output is None else os.path.join(os.path.dirname(os.path.abspath(output)), ".w2v-cache")


def _file_id(path: str) -> dict:
    st = os.stat(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(ENDS_BYTES))
        if st.st_size > ENDS_BYTES:
            f.seek(max(ENDS_BYTES, st.st_size - ENDS_BYTES))
            h.update(f.read(ENDS_BYTES))
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ends": h.hexdigest()}


def corpus_key(paths: Sequence[str], cfg: VocabConfig, vocab_path: Optional[str],
               given: Optional[Vocab] = None) -> Optional[dict]:
    """What an entry must match to be used for these files and settings (given: a vocabulary to
    encode with, as --init makes); None for stdin."""
    if STDIN in paths:
        return None
    key = {
        "version": CACHE_VERSION,
        "files": [_file_id(p) for p in paths],
        "vocab": {"min_count": cfg.min_count, "max_vocab_size": cfg.max_vocab_size,
                  "max_final_vocab": cfg.max_final_vocab, "lowercase": cfg.lowercase,
                  "max_word_length": cfg.max_word_length},
        "vocab_file": _file_id(vocab_path) if vocab_path else None,
    }
    if given is not None:
        key["given_vocab"] = fingerprint(np.frombuffer("\n".join(given.words).encode("utf-8", "surrogatepass"),
                                                      np.uint8), given.counts)
    return key


def _entry_name(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


class CorpusCache:
    """The cache in one directory (created when the first entry is stored)."""

    def __init__(self, directory: str, log: Callable[[str], None] = lambda msg: None):
        self.directory = directory
        self.log = log

    def load(self, key: dict) -> Optional[Tuple[Vocab, EncodedCorpus, CorpusStats]]:
        """The entry for key, verified; None if there is none or it does not verify (then it is removed)."""
        remove_dead_leftovers(self.directory, ".tmp-")  # a killed run's half-written entries, whatever it read
        entry = os.path.join(self.directory, _entry_name(key))
        manifest_path = os.path.join(entry, "manifest.json")
        if not os.path.isfile(manifest_path):
            return None
        try:
            with open(manifest_path) as f:
                manifest = json.load(f)
            if manifest["key"] != key:
                raise ValueError("its key differs")
            n_words, n_starts = manifest["n_words"], manifest["n_starts"]
            ids = _map(os.path.join(entry, "ids.i32"), np.int32, n_words)
            starts = _map(os.path.join(entry, "starts.i64"), np.int64, n_starts)
            encoded = EncodedCorpus(ids, starts)
            if encoded.fingerprint() != manifest["fingerprint"]:
                raise ValueError("its data do not match their fingerprint")
            words, counts = manifest["words"], manifest["counts"]
            vocab = Vocab(words, counts)
            stats = CorpusStats(**manifest["stats"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            self.log(f"warning: the encoded-corpus cache entry {entry} is damaged ({e}); reading the corpus again.")
            shutil.rmtree(entry, ignore_errors=True)
            return None
        return vocab, encoded, stats

    def store(self, key: dict, vocab: Vocab, encoded: EncodedCorpus, stats: CorpusStats) -> None:
        """Write the entry for key (removing those of earlier versions of the files); a failure only warns."""
        try:
            os.makedirs(self.directory, exist_ok=True)
            remove_dead_leftovers(self.directory, ".tmp-")  # before the space check: they may hold it
            need = 4 * encoded.n_words + 8 * (encoded.n_sentences + 1) + (1 << 20)
            if shutil.disk_usage(self.directory).free < 2 * need:
                self.log(f"warning: not caching the encoded corpus: {self.directory} has under "
                         f"{2 * need >> 20} MiB free.")
                return
            tmp = tempfile.mkdtemp(dir=self.directory, prefix=".tmp-" + writer_tag() + ".")
            try:
                _write(os.path.join(tmp, "ids.i32"), encoded.ids)
                _write(os.path.join(tmp, "starts.i64"), encoded.sent_starts)
                manifest = {"key": key, "n_words": encoded.n_words, "n_starts": encoded.n_sentences + 1,
                            "fingerprint": encoded.fingerprint(), "words": vocab.words,
                            "counts": vocab.counts.tolist(),
                            "stats": {k: v for k, v in asdict(stats).items() if k != "paths"}}
                with open(os.path.join(tmp, "manifest.json"), "w") as f:
                    json.dump(manifest, f)
                self._remove_entries_of(key["files"])
                os.rename(tmp, os.path.join(self.directory, _entry_name(key)))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError as e:
            self.log(f"warning: could not cache the encoded corpus in {self.directory}: {e.strerror or e}.")

    def remove(self, key: dict) -> None:
        shutil.rmtree(os.path.join(self.directory, _entry_name(key)), ignore_errors=True)

    def _remove_entries_of(self, files: list) -> None:
        """Remove the entries of earlier versions of these files (any settings)."""
        paths = [f["path"] for f in files]
        for name in os.listdir(self.directory):
            if name.startswith(".tmp-"):
                continue  # an entry in the making (this run's, or another's)
            entry = os.path.join(self.directory, name)
            try:
                with open(os.path.join(entry, "manifest.json")) as f:
                    old = json.load(f)["key"]["files"]
                stale = [x["path"] for x in old] == paths and old != files
            except (OSError, ValueError, KeyError, TypeError):
                stale = True  # unreadable: not worth keeping
            if stale:
                shutil.rmtree(entry, ignore_errors=True)


def _map(path: str, dtype, n: int) -> np.ndarray:
    size = os.path.getsize(path)
    if size != n * np.dtype(dtype).itemsize:
        raise ValueError(f"{os.path.basename(path)} has {size} bytes, not {n * np.dtype(dtype).itemsize}")
    return np.memmap(path, dtype, "c", shape=(n,)) if n else np.zeros(0, dtype)


def _write(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        for first in range(0, array.shape[0], WRITE_PIECE):
            np.ascontiguousarray(array[first: first + WRITE_PIECE]).tofile(f)


def check_room(source, directory: Optional[str]) -> None:
    """Refuse, before reading, files whose encoded corpus cannot fit in directory, where it is built
    (beside the output; without one the system's temporary directory, often memory: tmpfs).

    Building takes 4 bytes per token twice over (each reading part's ids, then the final ids) and
    12-16 per sentence: about 1.4 x English text (6 bytes per token, with its space). Asking for
    ROOM_PER_BYTE = 0.5 x the text refuses only what cannot fit (its tokens would have to average
    16 bytes or more); a run that passes and still fills the disk gets IdStreamBuilder's error."""
    if directory is None or not isinstance(source, (str, os.PathLike)) or os.fspath(source) == STDIN:
        return
    try:
        text = sum(os.path.getsize(p) * (PACKED_RATIO if p.endswith((".gz", ".bz2")) else 1)
                   for p in resolve_paths(os.fspath(source)))
        free = shutil.disk_usage(directory).free
    except OSError:  # reading it says what is wrong
        return
    need = int(ROOM_PER_BYTE * text)
    if free < need:
        fix = "free some space there or write the output on a larger disk (the corpus is built beside it)"
        if os.path.abspath(directory) == os.path.abspath(tempfile.gettempdir()):
            fix = "set TMPDIR to a larger disk, or give an output path (the corpus is then built beside it)"
        raise InputError(f"{directory!r} has {free / 1e6:.1f} MB free but encoding the corpus takes at least "
                         f"{max(need / 1e6, 0.1):.1f} MB there; {fix}.")


def read_corpus_cached(source, cfg: VocabConfig, vocab_path: Optional[str], log: Callable[[str], None],
                       directory: Optional[str], threads: int, cache_dir: Optional[str], given: Optional[Vocab] = None):
    """read_corpus, through the cache in cache_dir (None: no cache; token lists and stdin are never
    cached). Returns (reader, vocab, encoded, store): call store() once the job has succeeded."""
    if cache_dir is None or not isinstance(source, (str, os.PathLike)):
        check_room(source, directory)
        return (*read_corpus(source, cfg, vocab_path, log, directory, threads, given), lambda: None)
    reader = CorpusReader(os.fspath(source), cfg.lowercase)
    try:
        key = corpus_key(reader.paths, cfg, vocab_path, given)
    except OSError:  # an unreadable file or a missing --vocab: reading it says what is wrong
        key = None
    if key is None:
        check_room(source, directory)
        return (*read_corpus(source, cfg, vocab_path, log, directory, threads, given), lambda: None)
    cache = CorpusCache(cache_dir, log)
    t0 = time.perf_counter()
    hit = cache.load(key)
    if hit is not None and hit[2].n_pruned and hit[2].n_readers != counting_readers(reader.paths, cfg, threads):
        # pruning (--max-vocab-size) kept each reading worker's frequent words: the vocabulary
        # depends on how the files were split, so an entry read with another split is not this run's
        log(f"the cached vocabulary was pruned while {hit[2].n_readers} workers read the corpus; reading it again "
            f"with --threads {threads} (pass --vocab FILE for one vocabulary at any thread count).")
        cache.remove(key)
        hit = None
    if hit is not None:
        vocab, encoded, stats = hit
        stats.paths = list(reader.paths)
        reader.stats = stats
        for warning in reader.warnings():
            log("warning: " + warning)
        log(f"vocabulary: {len(vocab)} words; corpus: {stats.n_tokens} tokens, {encoded.n_words} in vocabulary, "
            f"{encoded.n_sentences} sentences [from the cache in {cache_dir}, {time.perf_counter() - t0:.1f} s]")
        return reader, vocab, encoded, lambda: None
    check_room(source, directory)
    reader, vocab, encoded = read_corpus(source, cfg, vocab_path, log, directory, threads, given)
    return reader, vocab, encoded, lambda: cache.store(key, vocab, encoded, reader.stats)
