"""Per-record sample noise: each modality of a record is noised, or not, from that record's own random stream.

A record's streams are keyed by (seed, purpose, split, record index), so its noise does not depend on the order
records are generated in, on streaming, or on the worker that generates it.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass

import numpy as np

from .locations import Source
from .plan import PlannedRecord
from .rng import generator
from .sources import is_url
from .transforms.audio import ESC50_ZIP_ROOT, NoiseBank, add_background_noise
from .transforms.image import CORRUPTIONS, corrupt_image
from .transforms.text import augment_text, make_text_augmenter

# The paper also used BackTranslationNoise, which needs two translation models: add it to text_augmenters
# where they are available (see make_text_augmenter's message for what it needs).
PUBLISHED_TEXT_AUGMENTERS = (
    "KeyboardNoise(aug_char_min=1, aug_char_max=5, aug_word_min=3, aug_word_max=8); "
    "SpellingNoise(aug_p=0.4); OCRNoise(aug_word_p=0.5)"
)


def parse_corruptions(spec: str) -> tuple[str, ...]:
    """`all` or a comma-separated list of corruption names."""
    names = CORRUPTIONS if spec.strip() == "all" else tuple(n.strip() for n in spec.split(",") if n.strip())
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown or not names:
        raise ValueError(f"image_corruptions: unknown {unknown or spec!r}; use 'all' or names from {CORRUPTIONS}")
    return names


def parse_augmenters(spec: str) -> tuple[tuple[str, dict], ...]:
    """`Name(key=value, ...); Name; ...` -> ((name, kwargs), ...), values as Python literals."""
    augmenters = []
    for item in (part.strip() for part in spec.split(";")):
        if not item:
            continue
        try:
            call = ast.parse(item if "(" in item else item + "()", mode="eval").body
            if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or call.args:
                raise ValueError("expected Name(key=value, ...)")
            augmenters.append((call.func.id, {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}))
        except (SyntaxError, ValueError) as err:
            raise ValueError(f"text_augmenters: cannot read {item!r} ({err})") from None
    if not augmenters:
        raise ValueError("text_augmenters: give at least one augmenter, e.g. 'KeyboardNoise; OCRNoise'")
    return tuple(augmenters)


@dataclass(frozen=True)
class SampleNoise:
    """What noise each modality may receive, and with what probability."""

    image_ratio: float = 0.0
    corruptions: tuple[str, ...] = CORRUPTIONS
    severity: int = 4
    audio_ratio: float = 0.0
    snr_range: tuple[float, float] = (3.0, 5.0)
    noise_bank: NoiseBank | None = None
    text_ratio: float = 0.0
    text_augmenters: tuple[tuple[str, object], ...] = ()  # (name, nlpaug augmenter)
    splits: tuple[str, ...] = ("train", "test", "ood")

    def applies(self, split: str) -> bool:
        return split in self.splits

    def apply(self, record: PlannedRecord, audio: np.ndarray, seed: int, split: str) -> tuple:
        """(image, audio, text, fields) of `record` after this noise, from the record's own streams; `fields` holds
        the schema's sample-noise fields by name (`schema.SAMPLE_NOISE_FIELDS`), null where nothing was applied."""
        image, image_noise = self.image(record.image, seed, split, record.index)
        audio, snr_db, audio_noise = self.audio(audio, seed, split, record.index)
        text, text_noise = self.text(record.text, seed, split, record.index)
        return (
            image,
            audio,
            text,
            {
                "image_noise": image_noise,
                "image_severity": self.severity if image_noise else None,
                "audio_noise": audio_noise,
                "audio_snr_db": snr_db,
                "text_noise": text_noise,
            },
        )

    def image(self, image: np.ndarray, seed: int, split: str, index: int) -> tuple[np.ndarray, str | None]:
        rng = generator(seed, "image noise", split, index)
        if rng.random() >= self.image_ratio:
            return image, None
        name = self.corruptions[rng.integers(len(self.corruptions))]
        return corrupt_image(image, name, self.severity, rng), name

    def audio(self, clip: np.ndarray, seed: int, split: str, index: int) -> tuple[np.ndarray, float | None, str | None]:
        rng = generator(seed, "audio noise", split, index)
        if rng.random() >= self.audio_ratio:
            return clip, None, None
        return add_background_noise(clip, self.noise_bank, self.snr_range, rng)

    def text(self, text: str, seed: int, split: str, index: int) -> tuple[str, str | None]:
        rng = generator(seed, "text noise", split, index)
        if rng.random() >= self.text_ratio:
            return text, None
        name, augmenter = self.text_augmenters[rng.integers(len(self.text_augmenters))]
        return augment_text(text, augmenter, rng), name


def build_text_augmenters(spec: str) -> tuple[tuple[str, object], ...]:
    """Build every augmenter now, so a missing resource fails before anything is generated."""
    return tuple((name, make_text_augmenter(name, **kwargs)) for name, kwargs in parse_augmenters(spec))


def noise_bank(spec: str, source: Source) -> NoiseBank:
    """`esc50`: ESC-50 from `esc50/` in the source when its checksums list it (the mini source ships a small one),
    else the pinned GitHub archive; `synthetic`; a folder or URL in ESC-50 layout; or a folder of wavs."""
    if spec == "synthetic":
        return NoiseBank.synthetic()
    if spec == "esc50":
        bundled = "esc50/meta/esc50.csv" in source.checksums
        return NoiseBank.esc50(source.location("esc50") if bundled else ESC50_ZIP_ROOT)
    if is_url(spec) or os.path.isfile(os.path.join(spec, "meta", "esc50.csv")):
        return NoiseBank.esc50(spec)
    return NoiseBank.folder(spec)
