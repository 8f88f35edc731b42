"""A hash of texts that stays the same across Polars releases and machines: BLAKE2b (RFC 7693) with an
8-byte digest of each text's UTF-8 bytes, read as a big-endian unsigned 64-bit number. Polars' own hash may
change between releases; control groups and customer buckets must not."""

import hashlib

import polars as pl


def blake2b_64(texts: pl.Series) -> pl.Series:
    """Each text's 64-bit BLAKE2b digest (UInt64; a null stays null)."""
    digest = lambda text: int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")  # noqa: E731
    return pl.Series(texts.name, [None if text is None else digest(text) for text in texts], dtype=pl.UInt64)
