"""Phrase detection over a corpus (``w2v-async phrases``): passes of counting, scoring and joining.

Each pass reads its input twice, in nogil threads over the byte reader's spans (phrases_scan.py):
once to count words and bigrams, once to write it with the phrases found joined. The last pass
writes the output atomically; the passes before it write temporary files beside it, which the
next pass reads.
"""

import errno
import os
import tempfile
import time
from typing import Callable, List, Optional, Sequence, Tuple

from ..config import VocabConfig
from ..errors import ConfigError, InputError
from ..io import atomic_path, check_free_space, writer_tag
from .corpus import STDIN, CorpusStats, check_output_path, long_token_warnings, resolve_paths
from .phrases_scan import count_bigrams, join_phrases, word_table
from .phrases_table import PhrasesConfig, PhraseTable, connector_words, parse_thresholds

Log = Callable[[str], None]
COMPRESSION = 4  # what a .gz or .bz2 corpus is reckoned to expand to, for the space check (text: 3-5x)
FULL_DISK = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _full_disk(e: OSError, output: Optional[str]) -> InputError:
    return InputError(f"could not write {output!r} or its temporary files beside it: {e.strerror or e}; free some "
                      "space or choose another -o (nothing partial was left behind).")


class _Passes:
    """Each pass reads the one before's output: the corpus first, then temporary files beside the
    output (named as io.atomic_path names its own, so a killed run's are removed by the next one)."""

    def __init__(self, paths: List[str], output: Optional[str]):
        self.paths, self.output, self.temps = paths, output, []
        self.directory = os.path.dirname(os.path.abspath(output)) if output else None

    def temp(self) -> str:
        prefix = "." + os.path.basename(self.output or "phrases") + "." + writer_tag() + "."
        fd, path = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=self.directory)
        os.close(fd)
        self.temps.append(path)
        return path

    def check_space(self, passes: int, threads: int) -> None:
        """Fail before counting when the output's directory cannot hold what the passes write there:
        the joined text (no longer than the corpus) and, at the peak, one thread's part of it beside
        it (the parts are appended to the output and freed one by one), and with several passes or
        a compressed corpus one temporary copy more (each pass removes the one it read). A
        compressed file is reckoned at COMPRESSION times its size; stdin is not reckoned."""
        if self.directory is None:
            return
        text = sum(os.path.getsize(p) * (COMPRESSION if p.endswith((".gz", ".bz2")) else 1)
                   for p in self.paths if p != STDIN)
        copies = 1 + 1 / max(threads, 1) + (passes > 1 or any(p.endswith((".gz", ".bz2")) for p in self.paths))
        check_free_space({self.directory: int(text * copies)})

    def step(self, last: bool, write: Callable[[Sequence[str], str], int]) -> int:
        """write(the pass's input, dest): into the output (atomically) on the last pass, else into a
        temporary file, which the next pass reads. Returns what write returns. A temporary input is
        removed once read."""
        read = self.paths
        if last:
            with atomic_path(self.output) as tmp:
                result = write(read, tmp)
        else:
            dest = self.temp()
            result = write(read, dest)
            self.paths = [dest]
        for path in read:
            if path in self.temps:
                os.unlink(path)
                self.temps.remove(path)
        return result

    def cleanup(self) -> None:
        for path in self.temps:
            try:
                os.unlink(path)
            except OSError:
                pass


def _check_paths(corpus: str, output: Optional[str], save: Optional[str]) -> List[str]:
    paths = resolve_paths(corpus)
    for path, flag in ((output, "-o"), (save, "--save")):
        if path is None:
            continue
        check_output_path(path)
        if any(p != STDIN and os.path.exists(path) and os.path.samefile(p, path) for p in paths):
            raise ConfigError(f"{flag} {path!r} is the corpus itself; write to another file.")
    if output is not None and save is not None and os.path.abspath(output) == os.path.abspath(save):
        raise ConfigError(f"-o and --save are the same file {output!r}; give the phrase table another name.")
    return paths


def _summary(stats: CorpusStats, passes: List[dict], output, save, threads: int, t0: float, n_phrases: int) -> dict:
    return {"passes": passes, "phrases": n_phrases, "tokens": passes[0]["tokens"] if passes else 0,
            "lines": stats.n_lines, "long_tokens_skipped": stats.n_long_tokens, "bad_utf8_lines":
            stats.n_bad_utf8_lines, "reading_workers": stats.n_readers, "threads": threads, "output": output,
            "saved": save, "seconds": time.perf_counter() - t0}


def detect_phrases(corpus: str, output: Optional[str], cfg: PhrasesConfig, save: Optional[str] = None,
                   log: Log = lambda msg: None) -> Tuple[PhraseTable, dict]:
    """Learn cfg.passes passes of phrases from corpus (a path, or - for stdin) and, with an output,
    write the corpus with them joined; save: also write the phrase table there.
    Returns (the PhraseTable, a JSON-ready summary)."""
    t0 = time.perf_counter()
    cfg = cfg.validate()
    thresholds = cfg.thresholds()
    if output is None and cfg.passes > 1:
        raise ConfigError("--passes above 1 count each pass on the text the pass before wrote; give an output.")
    paths = _check_paths(corpus, output, save)
    words = connector_words(cfg.connector_words)
    table = PhraseTable(delimiter=cfg.delimiter, scoring=cfg.scoring, min_count=cfg.min_count, thresholds=thresholds,
                        connector_words=words, lowercase=cfg.lowercase, max_word_length=cfg.max_word_length)
    vocab_cfg, connectors = cfg.vocab(), word_table(words)
    stats, done = CorpusStats(paths=list(paths)), []
    passes = _Passes(paths, output)
    passes.check_space(cfg.passes, cfg.threads)
    try:
        for number, threshold in enumerate(thresholds, 1):
            t1, read = time.perf_counter(), CorpusStats()
            counts, spooled = count_bigrams(passes.paths, vocab_cfg, connectors, cfg.threads, read,
                                            passes.temp if output is not None else None)
            passes.paths = spooled or passes.paths
            if number == 1 and read.n_tokens == 0:
                raise InputError(f"corpus {corpus!r} has no words; check the file (lines of text, tokens separated "
                                 "by whitespace).")
            found = counts.phrases(cfg.scoring, cfg.min_count, threshold, cfg.delimiter)
            row = {"pass": number, "threshold": threshold, "tokens": read.n_tokens, "keys": len(counts),
                   "phrases": len(found), "keys_pruned": read.n_pruned, "seconds_counting": time.perf_counter() - t1}
            del counts
            table.passes.append(found)
            stats = read if number == 1 else stats
            if output is not None:
                t2, applied = time.perf_counter(), CorpusStats()
                row["joined"] = passes.step(number == cfg.passes, lambda src, dest: join_phrases(
                    src, dest, list(found), connectors, vocab_cfg, cfg.delimiter, cfg.threads, applied))
                row["seconds_joining"] = time.perf_counter() - t2
            done.append(row)
            log(f"pass {number}/{cfg.passes}: {row['tokens']:,} tokens, {len(found):,} phrases scoring above "
                f"{threshold:g} ({cfg.scoring})" + (f", {row['joined']:,} joined" if "joined" in row else "")
                + f" in {time.perf_counter() - t1:.1f} s")
    except OSError as e:
        if e.errno in FULL_DISK:
            raise _full_disk(e, output) from e
        raise
    finally:
        passes.cleanup()
    if save is not None:
        table.save(save)
    for warning in long_token_warnings(stats):
        log("warning: " + warning)
    return table, _summary(stats, done, output, save, cfg.threads, t0, table.n_phrases())


def apply_phrases(corpus: str, output: str, table: PhraseTable, threads: int, log: Log = lambda msg: None) -> dict:
    """Write corpus to output with the table's phrases joined, pass by pass, reading it as the table
    was learned (delimiter, connector words, lowercasing, long tokens). Returns the summary."""
    t0 = time.perf_counter()
    paths = _check_paths(corpus, output, None)
    vocab_cfg = VocabConfig(lowercase=table.lowercase, max_word_length=table.max_word_length)
    connectors = word_table(table.connector_words)
    stats, done = None, []
    passes = _Passes(paths, output)
    passes.check_space(len(table.passes), threads)
    try:
        for number, phrases in enumerate(table.passes, 1):
            t1, read = time.perf_counter(), CorpusStats()
            row = {"pass": number, "phrases": len(phrases)}
            row["joined"] = passes.step(number == len(table.passes), lambda src, dest: join_phrases(
                src, dest, list(phrases), connectors, vocab_cfg, table.delimiter, threads, read))
            row.update(tokens=read.n_tokens, seconds_joining=time.perf_counter() - t1)
            stats = stats or read
            done.append(row)
            log(f"pass {number}/{len(table.passes)}: {row['tokens']:,} tokens, {row['joined']:,} of "
                f"{len(phrases):,} phrases joined in {row['seconds_joining']:.1f} s")
    except OSError as e:
        if e.errno in FULL_DISK:
            raise _full_disk(e, output) from e
        raise
    finally:
        passes.cleanup()
    return _summary(stats, done, output, None, threads, t0, table.n_phrases())


__all__ = ["PhrasesConfig", "PhraseTable", "apply_phrases", "detect_phrases", "parse_thresholds"]
