"""The codecs, one of each: WAV decode (any rate, any channels -> 16 kHz mono float32) and encode (PCM 16), the
resampler, and PNG encode. Pure: bytes or arrays in, bytes or arrays out."""

import functools
import io

import numpy as np
import soundfile
from PIL import Image
from scipy.signal import firwin, resample_poly

from luma_builders.errors import SourceError

SAMPLING_RATE = 16_000  # every clip of every record


def decode_wav(data: bytes, name: str) -> np.ndarray:
    """Any wav -> float32 mono at 16 kHz (LUMA's clips come at several native rates)."""
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as err:
        raise SourceError(f"{name}: not a readable audio file ({err})") from err
    if samples.shape[0] == 0:
        raise SourceError(f"{name}: audio file has no samples")
    if samples.ndim == 2:  # soundfile gives mono clips as one dimension, taken as they are
        samples = samples.mean(axis=1)
    return resample_to_16k(samples, rate)


def resample_to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Float mono `samples` at `rate` Hz -> at `SAMPLING_RATE` (16 kHz), of the same dtype, by a polyphase filter;
    returned as they are when already at 16 kHz."""
    if rate == SAMPLING_RATE:
        return samples
    divisor = np.gcd(int(rate), SAMPLING_RATE)
    up, down = SAMPLING_RATE // divisor, int(rate) // divisor
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


def encode_wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(samples, -1.0, 1.0), SAMPLING_RATE, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def encode_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()
