#!/usr/bin/env python3
"""Turn a Wikipedia dump (pages-articles .xml.bz2) into plain text, one paragraph per line.

Lowercase letters only (text8-style tokens), the same normalisation as the project's benchmark
corpus. Pages are parsed in order from the dump with gensim's wikicorpus machinery and cleaned in
parallel worker processes, a bounded batch of pages at a time, so memory stays flat on a full dump.
Without --dump it reads the shortened English dump that ships with gensim (the demo corpus, no
download). Usage:

    python corpora/wiki.py OUT.txt [--dump enwiki-latest-pages-articles.xml.bz2] [--processes N]

The full English dump: https://dumps.wikimedia.org/enwiki/latest/enwiki-latest-pages-articles.xml.bz2
(about 20 GB compressed, 3-4 billion words of text).
"""

import argparse
import bz2
import multiprocessing
import os
import re
import sys
import tempfile

BUNDLED = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
NON_LETTERS = re.compile(r"[^a-z]+")
PAGES_PER_WORKER = 64  # pages a worker cleans per batch; a batch holds processes x this many pages


def clean_page(text: str) -> list:
    """The page's paragraphs of 3 or more words, markup removed, lowercase letters only."""
    from gensim.corpora.wikicorpus import filter_wiki

    out = []
    for para in filter_wiki(text).split("\n"):
        words = NON_LETTERS.sub(" ", para.lower()).split()
        if len(words) >= 3:
            out.append(" ".join(words))
    return out


def _batches(texts, size):
    batch = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def paragraphs(dump: str, processes: int = 1):
    """Every paragraph of the dump, in dump order; processes > 1 cleans pages in worker processes."""
    from gensim.corpora.wikicorpus import extract_pages

    with bz2.BZ2File(dump) as f:
        texts = (text for _title, text, _page_id in extract_pages(f))
        if processes == 1:
            for text in texts:
                yield from clean_page(text)
            return
        with multiprocessing.Pool(processes) as pool:
            for batch in _batches(texts, processes * PAGES_PER_WORKER):
                for paras in pool.map(clean_page, batch, chunksize=PAGES_PER_WORKER // 4):
                    yield from paras


def convert(dump: str, dest: str, processes: int = 1) -> int:
    """Write dest atomically (temporary file, then rename); returns the number of words."""
    directory = os.path.dirname(os.path.abspath(dest))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".wiki.", suffix=".tmp")
    try:
        n_words = 0
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for line in paragraphs(dump, processes):
                out.write(line + "\n")
                n_words += line.count(" ") + 1
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise
    return n_words


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output")
    p.add_argument("--dump", default=None, help="a pages-articles .xml.bz2 dump [default: gensim's shortened one]")
    p.add_argument("--processes", type=int, default=max(1, (os.cpu_count() or 1)))
    args = p.parse_args(argv)
    if args.processes < 1:
        sys.exit(f"Error: --processes must be at least 1, got {args.processes}.")
    if args.dump is None:
        from gensim.test.utils import datapath

        args.dump = datapath(BUNDLED)
    if not os.path.isfile(args.dump):
        sys.exit(f"Error: dump {args.dump!r} does not exist; download one (see --help) or leave out --dump.")
    n_words = convert(args.dump, args.output, args.processes)
    print(f"{args.output}: {n_words} words", file=sys.stderr)


if __name__ == "__main__":
    main()
