"""Noise banks: where background noise for audio comes from, and reading it (the I/O of the audio noise room).

- `NoiseBank.esc50(root)`: the ESC-50 environmental sounds (K. J. Piczak, github.com/karolpiczak/ESC-50) from a
  folder, a base URL, or GitHub's zip of the repository read member by member (`ESC50_ZIP_ROOT`; HTTP range
  requests, so only the clips used are transferred). ESC-50 is licensed CC BY-NC 3.0 (its ESC-10 subset CC BY 3.0):
  noisy audio built from it is a derivative work and inherits the NonCommercial restriction.
- `NoiseBank.synthetic()` (white, pink and brown noise generated here) or `NoiseBank.folder(path)` over recordings
  you hold the rights to are the permissive alternatives.
"""

from __future__ import annotations

import os
import posixpath
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from datasets import DownloadConfig

from luma_builders.codecs import SAMPLING_RATE, read_wav
from luma_builders.noise.audio import COLOURS, coloured_noise, rms
from luma_builders.sources.readers import SourceError, is_url, read_location, read_table

# The v2.0.0 layout (meta/esc50.csv, audio/*.wav); GitHub's archive puts every file under ESC50_ZIP_PREFIX.
ESC50_COMMIT = "f2fd956acf66ebd9ac7e2110711aa78dd684d042"
ESC50_ZIP_URL = f"https://github.com/karolpiczak/ESC-50/archive/{ESC50_COMMIT}.zip"
ESC50_ZIP_PREFIX = f"ESC-50-{ESC50_COMMIT}/"
ESC50_ZIP_ROOT = f"zip://{ESC50_ZIP_PREFIX}::{ESC50_ZIP_URL}"
ESC50_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")

# -80 dBFS, digital silence or barely more: ESC-50 pads short recordings with zeros, and no gain brings silence to
# an SNR, so such segments are redrawn (at most _MAX_DRAWS times).
_SILENCE_RMS = 1e-4
_MAX_DRAWS = 32

# fsspec reads HTTP files in 5 MB blocks; an ESC-50 clip is 441 kB, so smaller blocks cut what a zip member costs.
_RANGED_READS = DownloadConfig(storage_options={protocol: {"block_size": 1 << 18} for protocol in ("http", "https")})


def _join(root: str, relpath: str) -> str:
    """`relpath` under a folder, a URL, or a chained URL like zip://PREFIX::ARCHIVE (the path goes in the first hop)."""
    first_hop, separator, rest = root.partition("::")
    if is_url(first_hop):
        return posixpath.join(first_hop, relpath) + separator + rest
    return os.path.join(root, relpath)


def _read(location: str) -> bytes:
    try:
        return read_location(location, _RANGED_READS)
    except FileNotFoundError as err:
        raise SourceError(f"{location}: file not found") from err


@dataclass(frozen=True)
class NoiseBank:
    """Noise clips to draw from.

    `sources` maps each noise id (`esc50:<filename>`, `folder:<relative path>`, `synthetic:<colour>`) to the wav it
    is read from (a path or URL) or, for synthetic ids, to its colour. Clips are decoded on first use at the rate
    asked for (16 kHz unless told otherwise), and the `cache_size` most recently used ones are kept.
    """

    sources: dict[str, str]
    cache_size: int = 64
    _cache: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False, compare=False)

    @classmethod
    def esc50(cls, root: str, categories: list[str] | None = None) -> NoiseBank:
        """ESC-50 from `root`: a folder, a base URL, or a chained zip URL such as `ESC50_ZIP_ROOT`.

        Reads meta/esc50.csv now (to validate `categories`); each clip is read when first drawn.
        """
        location = _join(root, "meta/esc50.csv")
        table = read_table(_read(location), location, ",", ESC50_COLUMNS)
        if categories is not None:
            known = set(table["category"])
            unknown = sorted(set(categories) - known)
            if unknown:
                raise ValueError(f"categories {unknown} are not in {location}; it has {sorted(known)}")
            table = table[table["category"].isin(categories)]
        if table.empty:
            raise ValueError(f"{location}: no clips to draw noise from")
        return cls({f"esc50:{name}": _join(root, f"audio/{name}") for name in table["filename"]})

    @classmethod
    def folder(cls, root: str) -> NoiseBank:
        """Every .wav file under the local folder `root`."""
        base = Path(root)
        paths = sorted(path for path in base.rglob("*") if path.suffix.lower() == ".wav" and path.is_file())
        if not paths:
            raise ValueError(f"{root}: no .wav files under this folder")
        return cls({f"folder:{path.relative_to(base).as_posix()}": str(path) for path in paths})

    @classmethod
    def synthetic(cls, colours: tuple[str, ...] = COLOURS) -> NoiseBank:
        """Coloured noise generated on demand (no recordings, no licence restrictions)."""
        unknown = [colour for colour in colours if colour not in COLOURS]
        if unknown or not colours:
            raise ValueError(f"colours must be a non-empty selection of {COLOURS}, got {tuple(colours)}")
        return cls({f"synthetic:{colour}": colour for colour in colours})

    def __getstate__(self) -> dict:
        # Worker processes and datasets' fingerprinting pickle the bank: send the recipe, not the decoded clips.
        return {**self.__dict__, "_cache": OrderedDict()}

    def sample(self, num_samples: int, rng: np.random.Generator, rate: int = SAMPLING_RATE) -> tuple[np.ndarray, str]:
        """A float32 noise segment of `num_samples` samples at `rate` Hz and its noise id: a clip drawn uniformly,
        then a start."""
        if num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}")
        ids = list(self.sources)
        for _ in range(_MAX_DRAWS):
            noise_id = ids[rng.integers(len(ids))]
            segment = self._segment(noise_id, num_samples, rng, rate)
            if rms(segment) > _SILENCE_RMS:
                return segment, noise_id
        raise ValueError(f"{_MAX_DRAWS} draws from this noise bank gave only silent segments")

    def _segment(self, noise_id: str, num_samples: int, rng: np.random.Generator, rate: int) -> np.ndarray:
        if noise_id.startswith("synthetic:"):  # its spectrum is relative to the sampling rate: any rate will do
            return coloured_noise(num_samples, self.sources[noise_id], rng)
        clip = self._clip(noise_id, rate)
        # Start anywhere a whole segment fits; a clip shorter than the segment is tiled from a random start.
        starts = len(clip) - num_samples + 1 if len(clip) >= num_samples else len(clip)
        start = rng.integers(starts)
        return np.take(clip, np.arange(start, start + num_samples), mode="wrap")

    def _clip(self, noise_id: str, rate: int) -> np.ndarray:
        key = (noise_id, rate)
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            location = self.sources[noise_id]
            self._cache[key] = read_wav(_read(location), location, rate)[0]
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return self._cache[key]
