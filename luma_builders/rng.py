"""One seed, many independent streams: a Generator per (purpose, split, modality, record...)."""

import hashlib

import numpy as np


def _key(part: str | int) -> int:
    # Python's hash() is salted per process; a digest keeps streams identical across runs and workers.
    if isinstance(part, int):
        return part
    return int.from_bytes(hashlib.sha256(part.encode()).digest()[:8], "little")


def generator(seed: int, *keys: str | int) -> np.random.Generator:
    return np.random.default_rng([seed, *(_key(k) for k in keys)])
