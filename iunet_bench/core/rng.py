"""Randomness: every generator derives from the config's one seed and the names of what it is for."""

from __future__ import annotations

import zlib

import numpy as np


def derive_rng(seed: int, *parts: int | str) -> np.random.Generator:
    """A generator that depends only on `seed` and `parts` (a case id, a round, a purpose): the order in
    which cases or rounds run never changes what one of them draws. Strings enter by their CRC-32."""
    words = [int(seed)] + [zlib.crc32(p.encode()) if isinstance(p, str) else int(p) for p in parts]
    return np.random.default_rng(np.random.SeedSequence(words))
