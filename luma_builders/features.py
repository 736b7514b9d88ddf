"""Per-sample features for diversity sampling and label switching, and an on-disk cache of them.

Two extractors share one interface (`FeatureExtractor`):
- `ModelFreeExtractor` (the default): numpy only, fast, offline and bit-for-bit deterministic. Images: pooled pixels
  in an opponent colour space, a colour histogram and gradient-orientation histograms. Audio: log-mel mean and
  spread over time, and the duration. Text: hashed word unigrams and bigrams.
- `PretrainedExtractor`: Hugging Face models, as in the LUMA paper (wav2vec 2.0 for audio, BERT for text, an image
  classifier's logits for images). It needs `transformers`, imported only when a model is first used.

Text features never see the class word: `mask_class_word` hides it first, so that a sample's features say how typical
its description is, not which label it has.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from luma_builders.blas import one_blas_thread
from luma_builders.classes import CLASS_NAMES
from luma_builders.codecs import SAMPLING_RATE
from luma_builders.sources.readers import IMAGE_SHAPE, MODALITIES
from luma_builders.sources.transfer import atomic_write, luma_home

logger = logging.getLogger(__name__)
T = TypeVar("T")


class FeatureExtractor(Protocol):
    name: str  # identifies the extractor and its settings: cached features are kept apart per name

    def image(self, images: np.ndarray) -> np.ndarray:
        """(n, 32, 32, 3) uint8 images -> (n, d) float32."""

    def audio(self, clips: list[np.ndarray]) -> np.ndarray:
        """float32 mono clips at `SAMPLING_RATE` -> (n, d) float32."""

    def text(self, texts: list[str], labels: np.ndarray) -> np.ndarray:
        """Texts, each with the class word of `labels[i]` masked first -> (n, d) float32."""


# --------------------------------------------------------------------------- masking the class word

# Forms that the suffix rules in `_plural` get wrong; each entry lists every form but the LUMA word itself.
# "roses" is the one LUMA word in the plural (CIFAR's "rose"); "cattle" has no other form.
_IRREGULAR_FORMS = {
    "man": ("men",),
    "woman": ("women",),
    "mouse": ("mice",),
    "wolf": ("wolves",),
    "cattle": (),
    "roses": ("rose",),
}


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"  # bus -> buses, fox -> foxes, fish -> fishes (beside the plural "fish")
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"  # baby -> babies, but ray -> rays
    return word + "s"


def class_word_forms(label: int) -> tuple[str, ...]:
    """The spellings of class `label` that `mask_class_word` hides: the LUMA word and its singular or plural."""
    word = CLASS_NAMES[label]
    if word in _IRREGULAR_FORMS:
        return (word, *_IRREGULAR_FORMS[word])
    return word, _plural(word)


@lru_cache(maxsize=len(CLASS_NAMES))
def _class_word_pattern(label: int) -> re.Pattern:
    forms = "|".join(map(re.escape, class_word_forms(label)))
    return re.compile(rf"\b(?:{forms})\b", re.IGNORECASE)


def mask_class_word(text: str, label: int, mask: str) -> str:
    """`text` with every whole-word, case-insensitive occurrence of class `label`'s word replaced by `mask`.

    Both the singular and the plural are hidden (man/men, mouse/mice, roses/rose, fish/fishes; also ray/rays, so
    "rays of light" loses its "rays" when the label is ray), but never a part of a longer word: "woman", "human" and
    "manager" keep their "man", "gray" its "ray", "seal" its "sea", "oakland" its "oak", "bedroom" its "bed". A hyphen
    or an apostrophe ends a word, so the class part of a compound or a possessive is hidden and the rest kept:
    "sea-lion" -> "[MASK]-lion", "dog's" -> "[MASK]'s".
    """
    return _class_word_pattern(int(label)).sub(mask, text)


@lru_cache(maxsize=1)
def _any_class_word_pattern() -> re.Pattern:
    forms = sorted({form for label in range(len(CLASS_NAMES)) for form in class_word_forms(label)}, key=len)
    return re.compile(rf"\b(?:{'|'.join(map(re.escape, reversed(forms)))})\b", re.IGNORECASE)


def mask_class_words(text: str, mask: str) -> str:
    """`text` with the words of all 50 classes (in-distribution and OOD) hidden as `mask_class_word` hides one: what a
    model sees when it must not read the label off the text, whatever its label or whether it was switched."""
    return _any_class_word_pattern().sub(mask, text)


# --------------------------------------------------------------------------- model-free features

_POOL = 4  # 32x32 pixels -> 8x8 cells
_COLOUR_LEVEL_BITS = 2  # 4 levels per RGB channel: 64 colour bins
_ORIENTATION_BINS = 8  # unsigned gradient orientations over [0, pi)
_ORIENTATION_CELLS = 2  # 2x2 spatial cells, so that the orientation histogram keeps a coarse layout
# Typical spread of one [0, 1] colour channel in natural images: dividing the pooled pixels by it (and by the square
# root of their count) gives that block a norm near 1, like the two unit-norm histograms beside it.
_PIXEL_SPREAD = 0.25

_N_FFT = 512
_WINDOW = 400  # 25 ms at 16 kHz
_HOP = 160  # 10 ms
_N_MELS = 64
_LOG_FLOOR = 1e-6  # keeps the log of digital silence finite

_TEXT_DIM = 1024
_MASK = "[MASK]"
_TOKEN = re.compile(r"\[mask\]|[^\W_]+")  # applied to lower-cased text, so the mask stays one token


def _opponent_colours(rgb: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] -> decorrelated red-green, yellow-blue and (centred) luminance axes."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.stack(
        [(r - g) / np.sqrt(2), (r + g - 2 * b) / np.sqrt(6), (r + g + b - 1.5) / np.sqrt(3)],
        axis=-1,
    )


def mel_filterbank(n_mels: int, n_fft: int, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) triangular filters evenly spaced on the HTK mel scale from 0 Hz to Nyquist: a power
    spectrum (..., n_fft // 2 + 1) times this matrix gives its mel bands."""

    def mel(hz):
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def hz(mels):
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)

    edges = hz(np.linspace(0.0, mel(sampling_rate / 2), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sampling_rate)[:, None]
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def _orientation_histograms(luminance: np.ndarray) -> np.ndarray:
    """Magnitude-weighted histograms of unsigned gradient orientation, one per spatial cell, as unit vectors."""
    gx = (luminance[:, 1:-1, 2:] - luminance[:, 1:-1, :-2]).astype(np.float32)
    gy = (luminance[:, 2:, 1:-1] - luminance[:, :-2, 1:-1]).astype(np.float32)
    magnitude = np.sqrt(gx * gx + gy * gy)
    # The orientation modulo pi, binned through its cosine (after turning the gradient into the upper half-plane):
    # comparisons instead of arctan2, which alone took most of the image time.
    flip = (gy < 0) | ((gy == 0) & (gx < 0))
    cosine = np.where(flip, -gx, gx) / np.where(magnitude > 0, magnitude, 1)
    orientation = np.zeros(cosine.shape, np.intp)
    for boundary in np.cos(np.arange(1, _ORIENTATION_BINS) * np.pi / _ORIENTATION_BINS).astype(np.float32):
        orientation += cosine <= boundary

    n, height, width = magnitude.shape
    cell_row = np.arange(height) * _ORIENTATION_CELLS // height
    cell_col = np.arange(width) * _ORIENTATION_CELLS // width
    cell = cell_row[:, None] * _ORIENTATION_CELLS + cell_col[None, :]
    per_image = _ORIENTATION_CELLS**2 * _ORIENTATION_BINS
    index = np.arange(n)[:, None, None] * per_image + cell * _ORIENTATION_BINS + orientation
    hist = np.bincount(index.ravel(), weights=magnitude.ravel(), minlength=n * per_image).reshape(n, per_image)
    total = hist.sum(axis=1, keepdims=True)
    return np.sqrt(hist / np.where(total > 0, total, 1.0))  # a flat image has no gradient: all zeros


# Memoised: a build hashes each of its common words and word pairs thousands of times (a fifth of the text features'
# time without it); the bound keeps a huge corpus's rare pairs from holding memory.
@lru_cache(maxsize=1 << 18)
def _hashed(gram: str) -> tuple[int, float]:
    # crc32, unlike hash(), is the same in every process; its top bit signs the count so that collisions cancel out
    # on average instead of piling up.
    code = zlib.crc32(gram.encode())
    return code % _TEXT_DIM, -1.0 if code >> 31 else 1.0


class ModelFreeExtractor:
    """Hand-made features with numpy alone: no model, no download, the same bytes on every run.

    Every scale is a fixed constant, never a statistic of the batch, so a sample's features do not depend on the
    other samples computed with it (the cache merges features from different calls).
    """

    # Bump the version whenever the features may change: the name keys the cache. v2: the mel product on one BLAS
    # thread (luma_builders.blas), so that no cached row computed on more threads is mixed with fresh ones.
    name = "model-free-v2"

    def __init__(self) -> None:
        self._mel = mel_filterbank(_N_MELS, _N_FFT)
        self._window = np.hanning(_WINDOW)

    def image(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 of shape (n, *{IMAGE_SHAPE}), got {images.dtype} {images.shape}")
        n, height, width, _ = images.shape
        # Integer sums over strided slices: several times faster than a float mean over reshaped axes.
        wide = images.astype(np.uint16)
        rows = sum(wide[:, i::_POOL] for i in range(_POOL))
        cells = sum(rows[:, :, i::_POOL] for i in range(_POOL)) / np.float32(255 * _POOL**2)
        n_pooled = math.prod(cells.shape[1:])
        pooled = _opponent_colours(cells).reshape(n, n_pooled) / (_PIXEL_SPREAD * math.sqrt(n_pooled))

        levels = images >> (8 - _COLOUR_LEVEL_BITS)
        colour = (levels[..., 0].astype(np.intp) << 2 * _COLOUR_LEVEL_BITS) | (levels[..., 1] << _COLOUR_LEVEL_BITS)
        colour |= levels[..., 2]
        n_colours = 1 << 3 * _COLOUR_LEVEL_BITS
        colour += np.arange(n)[:, None, None] * n_colours
        colours = np.bincount(colour.ravel(), minlength=n * n_colours).reshape(n, n_colours)
        colours = np.sqrt(colours / (height * width))  # Hellinger: unit norm, and rare colours still count

        luminance = images[..., 0].astype(np.int16) + images[..., 1] + images[..., 2]
        return np.concatenate([pooled, colours, _orientation_histograms(luminance)], axis=1).astype(np.float32)

    def audio(self, clips: list[np.ndarray]) -> np.ndarray:
        if not clips:
            return np.zeros((0, 2 * _N_MELS + 1), np.float32)
        frames, counts = [], []
        for clip in clips:
            clip = np.asarray(clip, dtype=np.float64)
            if clip.ndim != 1:
                raise ValueError(f"clips must be mono (one dimension), got shape {clip.shape}")
            if clip.size < _WINDOW:  # too short for one frame: pad to one frame
                clip = np.pad(clip, (0, _WINDOW - clip.size))
            clip_frames = np.lib.stride_tricks.sliding_window_view(clip, _WINDOW)[::_HOP]
            frames.append(clip_frames)
            counts.append(len(clip_frames))
        spectra = np.abs(np.fft.rfft(np.concatenate(frames) * self._window, n=_N_FFT)) ** 2
        with one_blas_thread():
            log_mel = np.log(spectra @ self._mel + _LOG_FLOOR)

        counts = np.array(counts)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        mean = np.add.reduceat(log_mel, starts, axis=0) / counts[:, None]
        deviation = log_mel - np.repeat(mean, counts, axis=0)
        std = np.sqrt(np.add.reduceat(deviation**2, starts, axis=0) / counts[:, None])
        seconds = np.array([len(clip) for clip in clips], dtype=np.float64)[:, None] / SAMPLING_RATE
        return np.concatenate([mean, std, seconds], axis=1).astype(np.float32)

    def text(self, texts: list[str], labels: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels)
        if len(labels) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(labels)} labels")
        rows, columns, values = [], [], []
        for row, (text, label) in enumerate(zip(texts, labels, strict=True)):
            words = _TOKEN.findall(mask_class_word(text, int(label), _MASK).lower())
            counts = Counter(words)
            counts.update(" ".join(pair) for pair in pairwise(words))
            for gram, count in counts.items():
                column, sign = _hashed(gram)
                rows.append(row)
                columns.append(column)
                values.append(sign * (1.0 + math.log(count)))  # sublinear tf: a repeated word is not n times as telling
        flat = np.array(rows, dtype=np.int64) * _TEXT_DIM + np.array(columns, dtype=np.int64)
        features = np.bincount(flat, weights=values, minlength=len(texts) * _TEXT_DIM).reshape(len(texts), _TEXT_DIM)
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        return (features / np.where(norms > 0, norms, 1.0)).astype(np.float32)


# --------------------------------------------------------------------------- pretrained models


class ModelUnavailableError(OSError):
    """A pretrained model is neither a local folder nor reachable (offline, or not on the Hub)."""


class PretrainedExtractor:
    """Features from Hugging Face models: each model is a Hub id or the path of a local folder.

    - audio: the last hidden state of a wav2vec 2.0-family model (wav2vec2, HuBERT, WavLM, ...) averaged over the
      frames that cover the clip. Models with group-normalised convolutions (`feat_extract_norm="group"`, such as
      wav2vec2-large-960h) change their output when a clip is zero-padded, so they only see batches of clips of one
      length; the others get padded batches with an attention mask.
    - text: the last hidden state averaged over the non-padding tokens, with the class word replaced by the
      tokenizer's mask token first.
    - image: the logits of an image classifier (the LUMA paper used its own CIFAR classifier's logits), or the pooled
      output of any other vision model; the image processor upsamples the 32x32 images to the model's size.

    Models load on first use, so constructing an extractor costs nothing. The name holds the model ids as given:
    after changing the files of a local model folder, use another cache folder. The default image model is a ViT-base
    fine-tuned on CIFAR-100 (100 logits), the data most LUMA images come from.
    """

    def __init__(
        self,
        audio_model: str = "facebook/wav2vec2-large-960h",
        text_model: str = "bert-base-uncased",
        image_model: str = "Ahmed9275/Vit-Cifar100",
        batch_size: int = 64,
        device: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.models = {"audio": str(audio_model), "text": str(text_model), "image": str(image_model)}
        self.batch_size = batch_size
        self.device = device
        # Batch size and device change the numbers only by rounding, so they are not part of the name.
        self.name = "pretrained-v1(" + ",".join(f"{m}={self.models[m]}" for m in MODALITIES) + ")"
        self._loaded: dict[str, tuple] = {}

    def _load(self, modality: str) -> tuple:
        if modality not in self._loaded:
            import torch
            import transformers

            model_id = self.models[modality]
            device = torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))
            if modality == "audio":
                processor = _from_pretrained(transformers.AutoFeatureExtractor, model_id, modality)
                model_class = transformers.AutoModel
            elif modality == "text":
                processor = _from_pretrained(transformers.AutoTokenizer, model_id, modality)
                model_class = transformers.AutoModel
            else:
                processor = _from_pretrained(transformers.AutoImageProcessor, model_id, modality)
                config = _from_pretrained(transformers.AutoConfig, model_id, modality)
                classifier = any(a.endswith("ForImageClassification") for a in config.architectures or ())
                model_class = transformers.AutoModelForImageClassification if classifier else transformers.AutoModel
            model = _from_pretrained(model_class, model_id, modality).to(device).eval()
            self._loaded[modality] = processor, model, device
        return self._loaded[modality]

    def audio(self, clips: list[np.ndarray]) -> np.ndarray:
        import torch

        extractor, model, device = self._load("audio")
        lengths = np.array([len(clip) for clip in clips])
        same_length_only = getattr(model.config, "feat_extract_norm", None) == "group"
        results = []
        with torch.inference_mode():
            for batch in _batches(lengths, self.batch_size, same_length_only):
                inputs = extractor(
                    [np.asarray(clips[i], dtype=np.float32) for i in batch],
                    sampling_rate=SAMPLING_RATE,
                    padding=True,
                    return_attention_mask=True,
                    return_tensors="pt",
                )
                mask = inputs["attention_mask"].to(device)
                hidden = model(inputs["input_values"].to(device), attention_mask=mask).last_hidden_state
                frames = model._get_feat_extract_output_lengths(mask.sum(dim=1))
                valid = torch.arange(hidden.shape[1], device=device)[None, :] < frames[:, None]
                results.append((batch, _masked_mean(hidden, valid)))
        return _assemble(results, len(clips), model.config.hidden_size)

    def text(self, texts: list[str], labels: np.ndarray) -> np.ndarray:
        tokenizer, _, _ = self._load("text")
        if len(labels) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(labels)} labels")
        mask = tokenizer.mask_token or tokenizer.unk_token or "[MASK]"
        masked = [mask_class_word(text, int(label), mask) for text, label in zip(texts, labels, strict=True)]
        return self.embed_texts(masked)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """(n, hidden size) float32: the text model's last hidden state of each text as it is (nothing masked),
        averaged over its non-padding tokens."""
        import torch

        tokenizer, model, device = self._load("text")
        results = []
        with torch.inference_mode():
            # Texts of similar length share a batch, so little time goes into padding.
            for batch in _batches(np.array([len(t) for t in texts]), self.batch_size, same_length_only=False):
                tokens = tokenizer([texts[i] for i in batch], padding=True, truncation=True, return_tensors="pt")
                tokens = tokens.to(device)
                hidden = model(**tokens).last_hidden_state
                results.append((batch, _masked_mean(hidden, tokens["attention_mask"].bool())))
        return _assemble(results, len(texts), model.config.hidden_size)

    def image(self, images: np.ndarray) -> np.ndarray:
        import torch

        processor, model, device = self._load("image")
        images = np.asarray(images)
        results = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = np.arange(start, min(start + self.batch_size, len(images)))
                pixels = processor(images=list(images[batch]), return_tensors="pt")["pixel_values"].to(device)
                output = model(pixel_values=pixels)
                if hasattr(output, "logits"):
                    features = output.logits
                elif output.pooler_output is not None:
                    features = output.pooler_output.flatten(1)
                else:
                    features = output.last_hidden_state.mean(dim=1)
                results.append((batch, features.float().cpu().numpy()))
        return _assemble(results, len(images), None)


def _from_pretrained(loader, model_id: str, modality: str):
    try:
        return loader.from_pretrained(model_id)
    except OSError as error:
        raise ModelUnavailableError(
            f"cannot load the {modality} model {model_id!r}: not a complete local folder, and neither in the Hugging "
            f"Face cache nor reachable on the Hub (offline?). Download it first (`hf download {model_id}`) or pass the "
            f"path of a local folder holding it. Cause: {error}"
        ) from error


def _batches(lengths: np.ndarray, batch_size: int, same_length_only: bool) -> list[np.ndarray]:
    """Indices in batches of at most `batch_size`, shortest first; with `same_length_only`, one length per batch."""
    order = np.argsort(lengths, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(lengths[order])) + 1) if same_length_only else [order]
    return [group[i : i + batch_size] for group in groups for i in range(0, len(group), batch_size)]


def _masked_mean(hidden, valid) -> np.ndarray:
    weights = valid.to(hidden.dtype).unsqueeze(-1)
    return ((hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)).float().cpu().numpy()


def _assemble(results: list[tuple[np.ndarray, np.ndarray]], n: int, dim: int | None) -> np.ndarray:
    if not results:
        return np.zeros((n, dim or 0), np.float32)
    out = np.empty((n, results[0][1].shape[1]), np.float32)
    for batch, features in results:
        out[batch] = features
    return out


# --------------------------------------------------------------------------- choosing and caching

EXTRACTORS = {"model-free": ModelFreeExtractor, "pretrained": PretrainedExtractor}


def extractor_from_name(name: str, **kwargs) -> FeatureExtractor:
    if name not in EXTRACTORS:
        raise ValueError(f"unknown feature extractor {name!r}; choose one of: {', '.join(EXTRACTORS)}")
    return EXTRACTORS[name](**kwargs)


def feature_cache_dir() -> Path:
    """Where builds keep features: `$LUMA_HOME/features`, shared by every variant and cache_dir, since `cache_path`
    keys the files by the source's identity and the extractor."""
    return luma_home() / "features"


def cache_path(cache_dir: str | Path, source_key: str, extractor_name: str, name: str) -> Path:
    """`<cache_dir>/<digest of source_key>/<extractor name>/<name>.npz`: `name` is a modality for its features.

    A name that is not a plain file name (a model path, say) becomes a readable prefix plus a digest of the name.
    """
    source = hashlib.sha256(source_key.encode()).hexdigest()[:16]
    folder = extractor_name
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", extractor_name):
        folder = safe_name(extractor_name, extractor_name)
    return Path(cache_dir, source, folder, f"{name}.npz")


def safe_name(readable: str, key: str, digest_chars: int = 16) -> str:
    """A file name standing for `key`: `readable` with every run of characters other than letters, digits, ".", "_"
    and "-" turned into "_", cut to 60 characters, then "-" and the first `digest_chars` hex digits of the SHA-256 of
    `key`, so that keys with the same readable part still get names of their own."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", readable)[:60]
    return f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:digest_chars]}"


# Items loaded and extracted at a time: the audio arrays of 256 clips stay small enough to be reused by the allocator
# instead of mapped afresh (a third faster than 1024), and features do not depend on the batch.
FEATURE_CHUNK = 256


def cached_features(
    extractor: FeatureExtractor,
    modality: str,
    ids: np.ndarray,
    load: Callable[[np.ndarray], object],
    cache_dir: str | Path,
    source_key: str,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """Features of the items `ids` (integers or strings) of one modality, in the order of `ids`.

    Only ids not yet in the cache are computed: `load(missing_ids)` returns their items (an image array, a list of
    clips or a list of texts) in that order. Text needs `labels`, aligned with `ids`, to mask each class word. The
    cache is a `RowCache`: replaced whole and atomically, checked when read.
    """
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; choose one of: {', '.join(MODALITIES)}")
    ids = np.asarray(ids)
    if modality == "text" and (labels is None or len(labels) != len(ids)):
        raise ValueError("text features need `labels`, one per id, to mask the class words")

    def extract(missing: np.ndarray, at: np.ndarray) -> np.ndarray:
        parts = []
        # In chunks, so that decoded clips and their spectrograms never all sit in memory at once.
        for start in range(0, len(missing), FEATURE_CHUNK):
            chunk = missing[start : start + FEATURE_CHUNK]
            items = load(chunk)
            if len(items) != len(chunk):
                raise ValueError(f"load returned {len(items)} items for {len(chunk)} ids")
            if modality == "text":
                parts.append(extractor.text(items, np.asarray(labels)[at[start : start + FEATURE_CHUNK]]))
            else:
                parts.append(getattr(extractor, modality)(items))
        return np.concatenate(parts)

    path = cache_path(cache_dir, source_key, extractor.name, modality)
    return RowCache(path, "features", np.float32, "feature cache").rows(ids, extract)


@dataclass(frozen=True)
class RowCache:
    """One row of numbers per id in an npz file: sorted unique `ids` and, under `key`, a 2-D array of `dtype`.

    The file is replaced whole and atomically, so a crash never leaves it half written, and checked when read (the
    zip's checksums, the shapes, the ids' order): a damaged file is logged and recomputed, never trusted. Two
    processes filling the same file at once never corrupt it either, but the last to write wins: what only the other
    added is recomputed by a later call.
    """

    path: Path
    key: str  # the rows' name in the file
    dtype: type
    what: str  # names the cache in warnings

    def rows(self, ids: np.ndarray, compute: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        """The rows of `ids` (integers or strings), in the order of `ids`. Those not yet cached come from
        `compute(missing, at)`: `missing` the ids, sorted and unique, `at` each one's first position in `ids`."""
        ids = np.asarray(ids)
        known_ids, known = self._read()
        unique_ids, first = np.unique(ids, return_index=True)
        is_missing = ~np.isin(unique_ids, known_ids)
        if is_missing.any():
            missing = unique_ids[is_missing]
            new = np.asarray(compute(missing, first[is_missing])).astype(self.dtype, copy=False)
            if known_ids.size:
                known_ids, known = np.concatenate([known_ids, missing]), np.concatenate([known, new])
                order = np.argsort(known_ids, kind="stable")
                known_ids, known = known_ids[order], known[order]
            else:
                known_ids, known = missing, new
            write_npz_atomic(self.path, **{"ids": known_ids, self.key: known})
        return known[np.searchsorted(known_ids, ids)]

    def _read(self) -> tuple[np.ndarray, np.ndarray]:
        read = read_npz_checked(self.path, self.what, self._checked)
        return (np.array([], dtype=np.int64), np.zeros((0, 0), self.dtype)) if read is None else read

    def _checked(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """What `rows` writes: sorted unique ids (it looks them up by bisection), one row of `dtype` each."""
        ids, rows = arrays["ids"], arrays[self.key]
        if ids.ndim != 1 or rows.ndim != 2 or len(ids) != len(rows) or rows.dtype != self.dtype:
            raise ValueError(f"{ids.shape} ids with {rows.dtype} rows of shape {rows.shape}")
        if not (ids[1:] > ids[:-1]).all():
            raise ValueError("ids not sorted and unique")
        return ids, rows


def read_npz_checked(path: Path, what: str, check: Callable[[dict[str, np.ndarray]], T]) -> T | None:
    """`check(arrays)` of the npz file `path` (every array read, so every member's zip checksum verified); None when
    there is no file, or when it is damaged or `check` raises ValueError or KeyError: then logged as an unreadable
    `what`, which the caller computes again."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        return check(arrays)
    except FileNotFoundError:
        return None
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as error:
        logger.warning("ignoring unreadable %s %s (%s): recomputing it", what, path, error)
        return None


def write_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """`np.savez` of `arrays` into `path`, which is either left as it was or replaced whole (`atomic_write`)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(path, buffer.getvalue())
