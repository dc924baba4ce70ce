"""Corpus reading, the vocabulary, the encoded corpus and co-occurrence counting."""
