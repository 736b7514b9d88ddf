"""Per-record sample noise: each modality of a record is noised, or not, from that record's own random stream.

A record's streams are keyed by (seed, purpose, split, record index), so its noise does not depend on the order
records are generated in, on streaming, or on the worker that generates it.
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass

import numpy as np

from luma_builders.codecs import SAMPLING_RATE
from luma_builders.noise.audio import add_background_noise
from luma_builders.noise.banks import ESC50_ZIP_ROOT, NoiseBank
from luma_builders.noise.image import CORRUPTIONS, corrupt_image
from luma_builders.noise.text import TEXT_AUGMENTERS, augment_text, make_text_augmenter
from luma_builders.plan.planning import PlannedRecord
from luma_builders.rng import generator
from luma_builders.sources.locations import Source
from luma_builders.sources.readers import is_url

# Each augmenter as (name, ((keyword, value), ...)): tuples, so that a config holding them is immutable and
# datasets hashes it the same way every time.
Augmenters = tuple[tuple[str, tuple[tuple[str, object], ...]], ...]

# The paper also used BackTranslationNoise, which needs two translation models: add it to text_augmenters
# where they are available (see make_text_augmenter's message for what it needs).
PUBLISHED_TEXT_AUGMENTERS: Augmenters = (
    ("KeyboardNoise", (("aug_char_min", 1), ("aug_char_max", 5), ("aug_word_min", 3), ("aug_word_max", 8))),
    ("SpellingNoise", (("aug_p", 0.4),)),
    ("OCRNoise", (("aug_word_p", 0.5),)),
)
AUGMENTERS_SYNTAX = (
    '`Name(key=value, ...); Name; ...` (values as Python literals) or JSON `[["Name", {"key": value}], "Name"]`'
    f" of {', '.join(TEXT_AUGMENTERS)} (nlpaug keyword arguments)"
)


def parse_augmenters(value) -> Augmenters:
    """Augmenters from their text (see AUGMENTERS_SYNTAX), or from a sequence of names and (name, keywords) pairs,
    the keywords a mapping or (key, value) pairs."""
    if isinstance(value, str):
        value = _read_json(value) if value.lstrip().startswith("[") else _read_calls(value)
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"expected a sequence of augmenters or their text, got {value!r}")
    augmenters = tuple(_augmenter(item) for item in value)
    if not augmenters:
        raise ValueError("give at least one augmenter, e.g. 'KeyboardNoise; OCRNoise'")
    return augmenters


def _read_json(text: str) -> list:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"cannot read {text!r} as JSON ({err})") from None


def _read_calls(text: str) -> list:
    """`Name(key=value, ...); Name; ...` -> [(name, {key: value}), ...]: literals only, nothing is run."""
    augmenters = []
    for item in (part.strip() for part in text.split(";")):
        if not item:
            continue
        try:
            call = ast.parse(item if "(" in item else item + "()", mode="eval").body
            if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or call.args:
                raise ValueError("expected Name(key=value, ...)")
            augmenters.append((call.func.id, {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}))
        except (SyntaxError, ValueError) as err:
            raise ValueError(f"cannot read {item!r} ({err})") from None
    return augmenters


def _augmenter(item) -> tuple[str, tuple[tuple[str, object], ...]]:
    name, keywords = (item, ()) if isinstance(item, str) else _pair(item)
    if name not in TEXT_AUGMENTERS:
        raise ValueError(f"unknown augmenter {name!r}; choose from {TEXT_AUGMENTERS}")
    pairs = tuple(keywords.items()) if isinstance(keywords, dict) else keywords
    if not isinstance(pairs, (list, tuple)) or not all(_is_keyword(p) for p in pairs):
        raise ValueError(f"the keywords of {name} must be a mapping or (key, value) pairs, got {keywords!r}")
    return name, tuple((key, _frozen(value)) for key, value in pairs)


def _is_keyword(pair) -> bool:
    return isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str)


def _pair(item) -> tuple:
    if not isinstance(item, (list, tuple)) or len(item) != 2 or not isinstance(item[0], str):
        raise ValueError(f"expected a name or a (name, keywords) pair, got {item!r}")
    return item[0], item[1]


def _frozen(value):
    return tuple(_frozen(v) for v in value) if isinstance(value, (list, tuple)) else value


def format_augmenters(augmenters: Augmenters) -> str:
    """The text form of `augmenters`, which parse_augmenters reads back."""
    return "; ".join(
        name + (f"({', '.join(f'{k}={v!r}' for k, v in keywords)})" if keywords else "")
        for name, keywords in augmenters
    )


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

    def apply(
        self,
        record: PlannedRecord,
        image: np.ndarray,
        audio: np.ndarray,
        seed: int,
        split: str,
        rate: int = SAMPLING_RATE,
    ) -> tuple:
        """(image, audio, text, fields) of `record`, whose pixels are `image` and whose clip is `audio` at `rate` Hz,
        after this noise, from the record's own streams; `fields` holds the schema's sample-noise fields by name
        (`schema.SAMPLE_NOISE_FIELDS`), null where nothing was applied."""
        image, image_noise = self.image(image, seed, split, record.index)
        audio, snr_db, audio_noise = self.audio(audio, seed, split, record.index, rate)
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

    def audio(
        self, clip: np.ndarray, seed: int, split: str, index: int, rate: int = SAMPLING_RATE
    ) -> tuple[np.ndarray, float | None, str | None]:
        rng = generator(seed, "audio noise", split, index)
        if rng.random() >= self.audio_ratio:
            return clip, None, None
        return add_background_noise(clip, self.noise_bank, self.snr_range, rng, rate)

    def text(self, text: str, seed: int, split: str, index: int) -> tuple[str, str | None]:
        rng = generator(seed, "text noise", split, index)
        if rng.random() >= self.text_ratio:
            return text, None
        name, augmenter = self.text_augmenters[rng.integers(len(self.text_augmenters))]
        return augment_text(text, augmenter, rng), name


def build_text_augmenters(augmenters: Augmenters) -> tuple[tuple[str, object], ...]:
    """Build every augmenter now, so a missing resource fails before anything is generated."""
    return tuple((name, make_text_augmenter(name, **dict(keywords))) for name, keywords in augmenters)


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
