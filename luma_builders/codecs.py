"""The codecs, one of each: WAV decode (any rate, any channels -> mono float32 at 16 kHz, another rate or its own)
and encode (PCM 16), the resampler, and PNG encode. Pure: bytes or arrays in, bytes or arrays out."""

import functools
import io
import struct

import numpy as np
import soundfile
from PIL import Image
from scipy.signal import firwin, resample_poly

from luma_builders.errors import SourceError

SAMPLING_RATE = 16_000  # every clip of every record, unless the `sampling_rate` parameter says otherwise

_CHUNK = struct.Struct("<4sI")  # a RIFF chunk's id and size
_FMT = struct.Struct("<HHIIHH")  # format tag, channels, rate, bytes per second, block align, bits per sample
_WAV_HEADER = struct.Struct("<4sI4s" + "4sI" + "HHIIHH" + "4sI")  # RIFF, its fmt chunk and the data chunk's head
# libsndfile (soundfile.write) turns a float x of [-1, 1] into PCM 16 through 32 bits: the high half of x * 2**31
# rounded half to even and capped at 2**31 - 1. The products are exact in float32 and float64 alike.
_INT32_SCALE = 2.0**31


def decode_wav(data: bytes, name: str) -> np.ndarray:
    """Any wav -> float32 mono at 16 kHz (LUMA's clips come at several native rates)."""
    return read_wav(data, name)[0]


def read_wav(data: bytes, name: str, rate: int = SAMPLING_RATE) -> tuple[np.ndarray, int]:
    """Any wav -> (float32 mono samples at `rate`, that rate); `rate` 0 keeps the clip's own rate."""
    plain = _read_pcm16(data)
    samples, native = plain if plain is not None else _read_with_soundfile(data, name)
    if samples.shape[0] == 0:
        raise SourceError(f"{name}: audio file has no samples")
    if samples.ndim == 2:  # soundfile gives mono clips as one dimension, taken as they are
        samples = samples.mean(axis=1)
    return (samples, native) if rate == 0 else (resample(samples, native, rate), rate)


def _read_with_soundfile(data: bytes, name: str) -> tuple[np.ndarray, int]:
    try:
        return soundfile.read(io.BytesIO(data), dtype="float32")
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as err:
        raise SourceError(f"{name}: not a readable audio file ({err})") from err


def _read_pcm16(data: bytes) -> tuple[np.ndarray, int] | None:
    """(float32 samples, rate) of a WAV of plain 16-bit PCM (LUMA's clips), as soundfile reads it (one dimension
    for mono), without its cost per file; None for anything else, which soundfile reads."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    fmt, position = None, 12
    while position + _CHUNK.size <= len(data):
        kind, size = _CHUNK.unpack_from(data, position)
        position += _CHUNK.size
        if kind == b"fmt " and size >= _FMT.size:
            fmt = _FMT.unpack_from(data, position)
        if kind == b"data":
            return _pcm16_samples(data, position, size, fmt)
        position += size + size % 2  # chunks are padded to an even size
    return None


def _pcm16_samples(data: bytes, start: int, size: int, fmt: tuple | None) -> tuple[np.ndarray, int] | None:
    tag, channels, rate, _, block_align, bits = fmt or (0, 0, 0, 0, 0, 0)
    plain = tag == 1 and bits == 16 and channels >= 1 and block_align == 2 * channels and rate > 0
    if not plain or size % block_align or not 0 < size <= len(data) - start:
        return None  # not PCM 16, or a data chunk that is empty, ragged or cut short: soundfile decides
    # libsndfile's conversion: times 2**-15, which is exact
    samples = np.frombuffer(data, "<i2", size // 2, start).astype(np.float32) * np.float32(2**-15)
    return (samples if channels == 1 else samples.reshape(-1, channels)), rate


def resample_to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Float mono `samples` at `rate` Hz -> at `SAMPLING_RATE` (16 kHz): see `resample`."""
    return resample(samples, rate, SAMPLING_RATE)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Float mono `samples` at `rate` Hz -> at `target` Hz, of the same dtype, by a polyphase filter; returned as
    they are when already at `target`."""
    if rate == target:
        return samples
    divisor = np.gcd(int(rate), int(target))
    up, down = int(target) // divisor, int(rate) // divisor
    dtype = samples.dtype if np.issubdtype(samples.dtype, np.inexact) else np.dtype(np.float64)
    taps = _lowpass(up, down, dtype)
    return resample_poly(samples, up, down, window=taps).astype(samples.dtype, copy=False)


@functools.lru_cache(maxsize=32)
def _lowpass(up: int, down: int, dtype: np.dtype) -> np.ndarray:
    """The filter `resample_poly` designs by default for `up`/`down` (Kaiser window, beta 5, 10 zero crossings per
    side), cast to the samples' dtype as it does: designing it took most of the resampling time, once per clip."""
    max_rate = max(up, down)
    taps = firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0)).astype(dtype)
    taps.flags.writeable = False  # shared by every call; resample_poly copies the window it is given
    return taps


def encode_wav(samples: np.ndarray, rate: int = SAMPLING_RATE) -> bytes:
    """Float32 or float64 mono samples at `rate` Hz -> a PCM 16 WAV, clipped to [-1, 1]: byte for byte what
    libsndfile (soundfile.write) writes, without its cost per file."""
    samples = np.asarray(samples)
    if samples.ndim != 1 or samples.dtype not in (np.float32, np.float64):
        raise ValueError(f"expected float32 or float64 mono samples, got {samples.dtype} of shape {samples.shape}")
    as_int32 = np.minimum(np.rint(np.clip(samples, -1.0, 1.0).astype(np.float64) * _INT32_SCALE), _INT32_SCALE - 1)
    pcm = (as_int32.astype(np.int64) >> 16).astype("<i2").tobytes()
    fmt = (1, 1, rate, 2 * rate, 2, 16)  # PCM, mono, `rate` Hz, 2 bytes per frame, 16 bits
    return _WAV_HEADER.pack(b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", _FMT.size, *fmt, b"data", len(pcm)) + pcm


def encode_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()
