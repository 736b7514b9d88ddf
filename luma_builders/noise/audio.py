"""Background noise for mono clips: mix a noise segment in at a chosen signal-to-noise ratio.

Every random draw comes from the caller's ``numpy.random.Generator``, so a noisy clip depends only on the clip, the
noise bank and that generator, never on call order or on the worker process.

Pure: the noise segments come from a bank (`luma_builders.noise.banks.NoiseBank`, which does the reading) through
its `sample(num_samples, rng)`.
"""

from __future__ import annotations

import numpy as np

from luma_builders.codecs import SAMPLING_RATE

COLOURS = ("white", "pink", "brown")
_POWER_EXPONENT = {"white": 0, "pink": 1, "brown": 2}  # power spectral density ~ 1 / f**exponent


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def mix_at_snr(clip: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`clip` plus `noise` (tiled or cropped to the clip's length from its first sample) scaled so that
    10 * log10(rms(clip)**2 / rms(scaled noise)**2) == snr_db, clipped to [-1, 1].

    A silent clip stays silent: the SNR is relative to the clip's own power.
    """
    clip = np.asarray(clip, dtype=np.float32)
    if clip.size == 0:
        raise ValueError("clip has no samples")
    if not np.isfinite(snr_db):
        raise ValueError(f"snr_db must be finite, got {snr_db}")
    noise = np.resize(np.asarray(noise, dtype=np.float64), clip.shape)
    noise_rms = rms(noise)
    if noise_rms == 0:
        raise ValueError("noise is silent: no gain gives it an SNR")
    gain = rms(clip) / noise_rms * 10.0 ** (-snr_db / 20)
    return np.clip(clip + gain * noise, -1.0, 1.0).astype(np.float32)


def coloured_noise(num_samples: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise shaped in the frequency domain to 1/f (pink) or 1/f^2 (brown) power; unit RMS."""
    if colour not in _POWER_EXPONENT:
        raise ValueError(f"unknown noise colour {colour!r}; choose one of {COLOURS}")
    if num_samples < 2:
        raise ValueError(f"coloured noise needs at least 2 samples, got {num_samples}")
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    frequencies = np.fft.rfftfreq(num_samples)
    # Amplitude ~ f**(-exponent / 2) gives power ~ 1 / f**exponent; the DC bin would be infinite, so it is dropped.
    spectrum[1:] *= frequencies[1:] ** (-_POWER_EXPONENT[colour] / 2)
    spectrum[0] = 0
    noise = np.fft.irfft(spectrum, n=num_samples)
    return (noise / rms(noise)).astype(np.float32)


def add_background_noise(
    clip: np.ndarray, bank, snr_range: tuple[float, float], rng: np.random.Generator, rate: int = SAMPLING_RATE
) -> tuple[np.ndarray, float, str]:
    """Noise from `bank` at the clip's `rate`, at an SNR drawn uniformly from `snr_range` (dB) -> (noisy clip,
    snr_db, noise id)."""
    try:
        low, high = (float(value) for value in snr_range)
    except (TypeError, ValueError):
        raise ValueError(f"snr_range must be a (min, max) pair of numbers in dB, got {snr_range!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and low <= high):
        raise ValueError(f"snr_range must be finite with min <= max, got {snr_range!r}")
    snr_db = float(rng.uniform(low, high))
    noise, noise_id = bank.sample(len(clip), rng, rate)
    return mix_at_snr(clip, noise, snr_db), snr_db, noise_id
