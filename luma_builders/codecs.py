"""The codecs, one of each: WAV decode (any rate, any channels -> 16 kHz mono float32) and encode (PCM 16), the
resampler, and PNG encode. Pure: bytes or arrays in, bytes or arrays out."""

import io

import numpy as np
import soundfile
from PIL import Image
from scipy.signal import resample_poly

from luma_builders.errors import SourceError

SAMPLING_RATE = 16_000  # every clip of every record


def decode_wav(data: bytes, name: str) -> np.ndarray:
    """Any wav -> float32 mono at 16 kHz (LUMA's clips come at several native rates)."""
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as err:
        raise SourceError(f"{name}: not a readable audio file ({err})") from err
    if samples.shape[0] == 0:
        raise SourceError(f"{name}: audio file has no samples")
    return resample_to_16k(samples.mean(axis=1), rate)


def resample_to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Float mono `samples` at `rate` Hz -> at `SAMPLING_RATE` (16 kHz), of the same dtype, by a polyphase filter;
    returned as they are when already at 16 kHz."""
    if rate == SAMPLING_RATE:
        return samples
    divisor = np.gcd(int(rate), SAMPLING_RATE)
    return resample_poly(samples, SAMPLING_RATE // divisor, int(rate) // divisor).astype(samples.dtype, copy=False)


def encode_wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(samples, -1.0, 1.0), SAMPLING_RATE, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def encode_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()
