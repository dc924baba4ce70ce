#!/usr/bin/env python3
"""Extract the English Wikipedia sample that ships with gensim into plain text (no download).

One paragraph per line, lowercase letters only (text8-style tokens), the same normalisation as
the project's benchmark corpus. Usage: python corpora/gensim_wiki.py OUT.txt
"""

import bz2
import os
import re
import sys
import tempfile

DUMP = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
NON_LETTERS = re.compile(r"[^a-z]+")


def paragraphs():
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki
    from gensim.test.utils import datapath

    with bz2.BZ2File(datapath(DUMP)) as dump:
        for _title, text, _page_id in extract_pages(dump):
            for para in filter_wiki(text).split("\n"):
                words = NON_LETTERS.sub(" ", para.lower()).split()
                if len(words) >= 3:
                    yield " ".join(words)


def main(dest: str) -> None:
    directory = os.path.dirname(os.path.abspath(dest))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".wiki.", suffix=".tmp")
    try:
        n_words = 0
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for line in paragraphs():
                out.write(line + "\n")
                n_words += line.count(" ") + 1
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise
    print(f"{dest}: {n_words} words", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python corpora/gensim_wiki.py OUT.txt")
    main(sys.argv[1])
