"""Room: codecs (luma_builders/codecs.py): WAV decoding to 16 kHz mono and the resampler."""

import io
import struct

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


def reference_decode(data: bytes) -> np.ndarray:
    """The decoding as first written: soundfile, channels averaged, scipy's resampler."""
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    return mono if rate == SAMPLING_RATE else resample_poly(mono, SAMPLING_RATE, rate).astype(np.float32)


def riff(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"".join(kind + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2) for kind, data in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def pcm16_layouts() -> dict[str, bytes]:
    pcm = np.random.default_rng(1).integers(-(2**15), 2**15, size=(2205, 2), dtype=np.int16)
    fmt = struct.pack("<HHIIHH", 1, 2, 22050, 22050 * 4, 4, 16)
    return {
        "a LIST chunk of odd size first": riff((b"LIST", b"INFOx"), (b"fmt ", fmt), (b"data", pcm.tobytes())),
        "an 18-byte fmt chunk": riff((b"fmt ", fmt + b"\0\0"), (b"data", pcm.tobytes())),
        "a chunk after the data": riff((b"fmt ", fmt), (b"data", pcm.tobytes()), (b"cue ", b"\0" * 4)),
        "a data chunk cut short": riff((b"fmt ", fmt), (b"data", pcm.tobytes()))[:-1001],
        "24-bit PCM": wav_of(pcm / 2**15, 22050, "PCM_24"),
        "32-bit float": wav_of(pcm / 2**15, 22050, "FLOAT"),
        "three channels": wav_of(np.repeat(pcm[:, :1] / 2**15, 3, axis=1), 22050, "PCM_16"),
    }


def wav_of(samples: np.ndarray, rate: int, subtype: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


@pytest.mark.parametrize("layout", list(pcm16_layouts()))
def test_decoding_equals_soundfile_whatever_the_layout(layout):
    data = pcm16_layouts()[layout]
    assert decode_wav(data, "clip.wav").tobytes() == reference_decode(data).tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_encoding_equals_soundfile_byte_for_byte(dtype):
    rng = np.random.default_rng(2)
    steps = np.arange(-(2**15), 2**15, 7)
    edges = (steps * 2.0**16 - 0.5) / 2**31  # where libsndfile's rounding turns from one PCM value to the next
    samples = np.concatenate([rng.uniform(-1.2, 1.2, 20000), rng.uniform(-1e-4, 1e-4, 2000), edges, steps / 2**15])
    samples = samples.astype(dtype)
    samples = np.concatenate([samples, np.nextafter(samples, dtype(2)), np.nextafter(samples, dtype(-2)), [1, -1, 0]])
    expected = wav_of(np.clip(samples, -1.0, 1.0), SAMPLING_RATE, "PCM_16")
    assert encode_wav(samples.astype(dtype)) == expected
    with pytest.raises(ValueError, match="mono"):
        encode_wav(np.zeros((4, 2), dtype))


def test_decode_then_encode_round_trips_16k_pcm():
    pcm = np.arange(-800, 800, dtype=np.int16) * 20
    data = wav(pcm, SAMPLING_RATE)
    assert encode_wav(decode_wav(data, "clip.wav")) == data
