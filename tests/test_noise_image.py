"""The CIFAR-10-C image corruptions: output format, purity, calibration and severity ordering."""

import random

import numpy as np
import pytest
from scipy import ndimage

from luma_builders.noise.image import CORRUPTIONS, corrupt_image

SEVERITIES = (1, 2, 3, 4, 5)
RANDOM = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "frosted_glass_blur",
    "motion_blur",
    "snow",
    "frost",
    "fog",
    "elastic",
)
GAUSSIAN_SIGMAS = (0.04, 0.06, 0.08, 0.09, 0.10)  # CIFAR-10-C, in [0, 1] units


def natural_image(seed: int = 0) -> np.ndarray:
    """A 32x32 RGB picture with what corruptions act on: smooth gradients, edges, fine texture and sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    image = np.stack([40 + 150 * xx, 60 + 120 * yy, 110 + 50 * np.sin(2 * np.pi * (xx + yy))], axis=-1)
    grain = ndimage.gaussian_filter(rng.normal(0, 1, (32, 32)), 0.8)  # irregular texture, like foliage or fabric
    image += (25 / grain.std()) * grain[..., None]
    image[(xx - 0.35) ** 2 + (yy - 0.4) ** 2 < 0.04] = (220, 90, 40)  # a disk
    image[18:27, 6:14] = (30, 40, 160)  # a square
    image += rng.normal(0, 4, image.shape)  # sensor noise
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def mean_abs_change(name: str, severity: int, images: list[np.ndarray]) -> float:
    changes = [
        np.abs(corrupt_image(img, name, severity, np.random.default_rng(i)).astype(float) - img).mean()
        for i, img in enumerate(images)
    ]
    return float(np.mean(changes))


def test_names_are_the_fifteen_cifar10c_corruptions():
    assert CORRUPTIONS == (
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
        "defocus_blur",
        "frosted_glass_blur",
        "motion_blur",
        "zoom_blur",
        "snow",
        "frost",
        "fog",
        "brightness",
        "contrast",
        "elastic",
        "pixelate",
        "jpeg_compression",
    )


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", CORRUPTIONS)
def test_every_corruption_returns_a_changed_uint8_image(name, severity):
    image = natural_image()
    before = image.copy()
    out = corrupt_image(image, name, severity, np.random.default_rng(7))
    assert out.dtype == np.uint8
    assert out.shape == (32, 32, 3)
    assert np.array_equal(image, before), "the input must not be modified"
    assert np.abs(out.astype(int) - image).mean() > 0.2, f"{name} at severity {severity} barely changed the image"


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_same_seed_gives_the_same_output(name):
    image = natural_image()
    for severity in SEVERITIES:
        first = corrupt_image(image, name, severity, np.random.default_rng(42))
        second = corrupt_image(image, name, severity, np.random.default_rng(42))
        assert np.array_equal(first, second)


@pytest.mark.parametrize("name", RANDOM)
def test_different_seeds_give_different_outputs(name):
    image = natural_image()
    for severity in SEVERITIES:
        first = corrupt_image(image, name, severity, np.random.default_rng(1))
        second = corrupt_image(image, name, severity, np.random.default_rng(2))
        assert not np.array_equal(first, second)


def test_rng_stream_advances_so_consecutive_calls_differ():
    image = natural_image()
    rng = np.random.default_rng(3)
    assert not np.array_equal(
        corrupt_image(image, "gaussian_noise", 3, rng), corrupt_image(image, "gaussian_noise", 3, rng)
    )


def test_global_random_state_is_neither_read_nor_changed():
    image = natural_image()
    np.random.seed(1234)
    random.seed(1234)
    numpy_state, python_state = np.random.get_state(), random.getstate()
    outputs = [corrupt_image(image, name, 5, np.random.default_rng(9)) for name in CORRUPTIONS]

    after = np.random.get_state()
    assert after[0] == numpy_state[0]
    assert np.array_equal(after[1], numpy_state[1])
    assert after[2:] == numpy_state[2:]
    assert random.getstate() == python_state

    np.random.seed(999)  # a different global state must not change any result
    for name, expected in zip(CORRUPTIONS, outputs, strict=True):
        assert np.array_equal(corrupt_image(image, name, 5, np.random.default_rng(9)), expected), name


@pytest.mark.parametrize("severity", SEVERITIES)
def test_gaussian_noise_std_matches_cifar10c_sigma(severity):
    grey = np.full((32, 32, 3), 128, dtype=np.uint8)  # 0.5: clipping at 0 or 1 is > 5 sigma away
    rng = np.random.default_rng(severity)
    residuals = np.stack([corrupt_image(grey, "gaussian_noise", severity, rng) for _ in range(32)]) / 255.0 - 128 / 255
    sigma = GAUSSIAN_SIGMAS[severity - 1]
    # 98,304 values: the std estimate has a relative standard error of 0.23 %; 1.5 % is ~6 of them, and the
    # closest two sigmas (0.09, 0.10) are 11 % apart. Rounding to uint8 adds a negligible 1/(12 * 255^2) variance.
    assert residuals.std() == pytest.approx(sigma, rel=0.015)
    assert abs(residuals.mean()) < 3 * sigma / np.sqrt(residuals.size)


@pytest.mark.parametrize(
    "name", ["gaussian_noise", "shot_noise", "impulse_noise", "contrast", "brightness", "pixelate", "jpeg_compression"]
)
def test_effect_grows_with_severity(name):
    images = [natural_image(seed) for seed in range(4)]
    changes = [mean_abs_change(name, severity, images) for severity in SEVERITIES]
    assert np.all(np.diff(changes) > 0), changes


def test_contrast_and_brightness_act_in_their_direction():
    image = natural_image()
    low = corrupt_image(image, "contrast", 5, np.random.default_rng(0)).astype(float)
    # Severity 5 scales each channel's deviation from its mean by 0.15 (up to uint8 rounding).
    assert low.std(axis=(0, 1)) / image.std(axis=(0, 1)) == pytest.approx(0.15, abs=0.01)
    assert low.mean(axis=(0, 1)) == pytest.approx(image.mean(axis=(0, 1)), abs=1)
    bright = corrupt_image(image, "brightness", 5, np.random.default_rng(0)).astype(int)
    assert (bright >= image).all()
    assert bright.max(axis=2).mean() - image.max(axis=2).mean() > 0.2 * 255


@pytest.mark.parametrize("name", ["gaussian", "elastic_transform", "glass_blur", "", "GAUSSIAN_NOISE"])
def test_unknown_name_raises_value_error(name):
    with pytest.raises(ValueError, match="name must be one of .*gaussian_noise.*jpeg_compression"):
        corrupt_image(natural_image(), name, 1, np.random.default_rng(0))


@pytest.mark.parametrize("severity", [0, 6, -1, 2.0, True, "3", None])
def test_bad_severity_raises_value_error(severity):
    with pytest.raises(ValueError, match=r"severity must be one of 1, 2, 3, 4, 5"):
        corrupt_image(natural_image(), "contrast", severity, np.random.default_rng(0))


@pytest.mark.parametrize(
    "image", [np.zeros((32, 32), np.uint8), np.zeros((28, 28, 3), np.uint8), np.zeros((32, 32, 3), np.float32)]
)
def test_bad_image_raises_value_error(image):
    with pytest.raises(ValueError, match="image must be a 32x32x3 uint8 array"):
        corrupt_image(image, "contrast", 1, np.random.default_rng(0))
