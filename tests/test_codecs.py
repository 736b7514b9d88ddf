"""Room: codecs (luma_builders/codecs.py): WAV decoding to 16 kHz mono and the resampler."""

import io

import numpy as np
import pytest
import soundfile
from scipy.signal import resample_poly

from luma_builders.codecs import SAMPLING_RATE, decode_wav, encode_wav, resample_to_16k


def wav(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


@pytest.mark.parametrize(("rate", "up", "down"), [(44100, 160, 441), (48000, 1, 3), (22050, 320, 441), (8000, 2, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resampling_equals_resample_poly_bit_for_bit(rate, up, down, dtype):
    rng = np.random.default_rng(rate)
    for length in (rate // 3, 1, 7 * rate // 5):  # the filter is designed once per rate: every call must agree
        samples = rng.uniform(-1, 1, length).astype(dtype)
        resampled = resample_to_16k(samples, rate)
        expected = resample_poly(samples, up, down)
        assert resampled.dtype == dtype and resampled.tobytes() == expected.tobytes()


def test_16k_samples_are_returned_as_they_are():
    samples = np.linspace(-1, 1, 100, dtype=np.float32)
    assert resample_to_16k(samples, SAMPLING_RATE) is samples


def test_decoding_takes_mono_as_is_and_averages_stereo():
    rng = np.random.default_rng(0)
    pcm = rng.integers(-(2**15), 2**15, size=(4410, 2), dtype=np.int16)
    as_float = pcm.astype(np.float32) / 2**15  # PCM 16 to float is exact: a power-of-two scale
    mono = decode_wav(wav(pcm[:, 0], 44100), "mono.wav")
    assert mono.tobytes() == resample_poly(as_float[:, 0], 160, 441).tobytes()
    stereo = decode_wav(wav(pcm, 44100), "stereo.wav")
    assert stereo.tobytes() == resample_poly(as_float.mean(axis=1), 160, 441).tobytes()
    assert decode_wav(wav(pcm[:, 1], 16000), "16k.wav").tobytes() == as_float[:, 1].tobytes()


def test_decode_then_encode_round_trips_16k_pcm():
    pcm = np.arange(-800, 800, dtype=np.int16) * 20
    data = wav(pcm, SAMPLING_RATE)
    assert encode_wav(decode_wav(data, "clip.wav")) == data
