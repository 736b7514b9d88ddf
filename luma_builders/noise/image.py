"""The 15 CIFAR-10-C corruptions as pure functions on 32x32 RGB uint8 images.

Reimplemented after Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations" (ICLR 2019); constants from Hendrycks & Dietterich, make_cifar_c.py, Apache-2.0
(github.com/hendrycks/robustness, ImageNet-C/create_c/make_cifar_c.py). The frost textures are the ones shipped
with the ``imagecorruptions-imaug`` package (Apache-2.0); its own constants are ImageNet-C's and are not used.

Deliberate differences from that generator:
- every random draw comes from the caller's ``numpy.random.Generator``; no global random state is touched;
- the result is always rounded and clipped to uint8 (the generator returned floats or truncated them);
- ImageMagick's motion blur (called through Wand there) is computed in numpy with the same kernel and offsets;
- intermediate images are not quantised to uint8 between steps.
"""

import functools
import importlib.util
import io
import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage

SIZE = 32

CORRUPTIONS: tuple[str, ...] = (
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

# Per-severity constants (severity 1..5), in [0, 1] intensity units unless noted.
_PARAMS: dict[str, tuple] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),  # noise std
    "shot_noise": (500, 250, 100, 75, 50),  # Poisson count at full intensity
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),  # fraction of values set to 0 or 1
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),  # disk radius, anti-alias sigma
    "frosted_glass_blur": ((0.05, 1), (0.25, 1), (0.4, 1), (0.25, 2), (0.4, 2)),  # gaussian sigma, shuffle passes
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),  # ImageMagick radius, sigma (pixels)
    "zoom_blur": (1.06, 1.11, 1.16, 1.21, 1.26),  # stop of np.arange(1, stop, 0.01) zoom factors
    "snow": (  # flake mean, std, zoom, threshold, blur radius, blur sigma, image weight
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),  # image weight, frost weight
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),  # fog strength, fractal decay
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),  # added to HSV value
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),  # scale of the deviation from the channel mean
    "elastic": (  # displacement alpha, field sigma, affine jitter (pixels: SIZE * 0, 0.05, ... as in the generator)
        (SIZE * 0, SIZE * 0, SIZE * 0.08),
        (SIZE * 0.05, SIZE * 0.2, SIZE * 0.07),
        (SIZE * 0.08, SIZE * 0.06, SIZE * 0.06),
        (SIZE * 0.1, SIZE * 0.04, SIZE * 0.05),
        (SIZE * 0.1, SIZE * 0.03, SIZE * 0.03),
    ),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),  # side of the downscaled image / SIZE
    "jpeg_compression": (80, 65, 58, 50, 40),  # JPEG quality
}

# The generator draws from the first five of the six textures (np.random.randint(5)).
_FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")


def corrupt_image(image: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``image`` (32x32x3 uint8) with corruption ``name`` at ``severity`` (1..5) as a new 32x32x3 uint8 array.

    The result depends only on the arguments and the state of ``rng``, which is the only source of randomness.
    """
    if name not in CORRUPTIONS:
        raise ValueError(f"name must be one of {', '.join(CORRUPTIONS)}; got {name!r}")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 1 <= severity <= 5:
        raise ValueError(f"severity must be one of 1, 2, 3, 4, 5; got {severity!r}")
    image = np.asarray(image)
    if image.shape != (SIZE, SIZE, 3) or image.dtype != np.uint8:
        raise ValueError(f"image must be a {SIZE}x{SIZE}x3 uint8 array; got {image.dtype} {image.shape}")
    params = _PARAMS[name][severity - 1]
    out = _CORRUPT[name](image / 255.0, rng, *(params if isinstance(params, tuple) else (params,)))
    return _to_uint8(out)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


# --- noise ---


def _gaussian_noise(x, rng, std):
    return x + rng.normal(0, std, x.shape)


def _shot_noise(x, rng, count):
    return rng.poisson(x * count) / count


def _impulse_noise(x, rng, amount):
    # Salt and pepper per channel value, half each, as skimage.util.random_noise(mode="s&p").
    hit = rng.random(x.shape) < amount
    salt = rng.random(x.shape) < 0.5
    return np.where(hit, salt, x)


# --- blur ---


def _gaussian(x, sigma):
    # skimage.filters.gaussian defaults used by the generator: edge replication, 4-sigma kernel, no channel mixing.
    return ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0)


@functools.cache
def _disk_kernel(radius, alias_sigma):
    half = math.ceil(radius) + 1  # the disk plus the 3x3 anti-alias blur fit in this support
    grid = np.arange(-half, half + 1)
    disk = (grid[:, None] ** 2 + grid[None, :] ** 2 <= radius**2).astype(float)
    blur = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * alias_sigma**2))
    kernel = ndimage.convolve(disk / disk.sum(), np.outer(blur, blur) / blur.sum() ** 2, mode="constant")
    kernel.flags.writeable = False
    return kernel


def _defocus_blur(x, _rng, radius, alias_sigma):
    return cv2.filter2D(x, -1, _disk_kernel(radius, alias_sigma), borderType=cv2.BORDER_REFLECT_101)


def _frosted_glass_blur(x, rng, sigma, passes):
    # The generator's pixel "swap" assigns numpy views, so it copies: each pixel (h, w) with 2 <= h, w < 32 takes
    # the value of itself or of its upper, left or upper-left neighbour, read before that pass changed anything.
    x = _gaussian(x, sigma)
    rows, cols = np.mgrid[2:SIZE, 2:SIZE]
    for _ in range(passes):
        dy, dx = rng.integers(-1, 1, size=(2, SIZE - 2, SIZE - 2))  # -1 or 0, as np.random.randint(-1, 1)
        x[2:, 2:] = x[rows + dy, cols + dx]
    return _gaussian(x, sigma)


def _motion(x, radius, sigma, angle):
    """ImageMagick's motion blur: a one-sided trail of 2 * radius + 1 Gaussian-weighted samples along ``angle``
    (degrees), edges replicated."""
    steps = np.arange(2 * radius + 1)
    weights = np.exp(-(steps**2) / (2 * sigma**2))
    weights /= weights.sum()
    theta = math.radians(angle)
    dys = np.ceil(steps * math.sin(theta) - 0.5).astype(int)
    dxs = np.ceil(steps * math.cos(theta) - 0.5).astype(int)
    pad = 2 * radius
    padded = np.pad(x, [(pad, pad), (pad, pad)] + [(0, 0)] * (x.ndim - 2), mode="edge")
    out = np.zeros_like(x)
    for weight, dy, dx in zip(weights, dys, dxs, strict=True):
        out += weight * padded[pad + dy : pad + dy + SIZE, pad + dx : pad + dx + SIZE]
    return out


def _motion_blur(x, rng, radius, sigma):
    return _motion(x, radius, sigma, rng.uniform(-45, 45))


@functools.cache
def _zoom_matrix(factor):
    """Matrix Z such that Z @ a @ Z.T is the generator's clipped zoom of a 32x32 plane a: the central
    ceil(32 / factor) pixels enlarged with scipy.ndimage.zoom(order=1) and centre-cropped back to 32.
    Linear interpolation is separable, so one 1-D operator per axis reproduces it (and is much faster)."""
    crop = math.ceil(SIZE / factor)
    top = (SIZE - crop) // 2
    zoomed = round(crop * factor)
    trim = (zoomed - SIZE) // 2
    source = top + (np.arange(SIZE) + trim) * (crop - 1) / (zoomed - 1)  # scipy's corner-aligned sampling
    low = np.minimum(np.floor(source).astype(int), SIZE - 2)
    frac = source - low
    matrix = np.zeros((SIZE, SIZE))
    matrix[np.arange(SIZE), low] = 1 - frac
    matrix[np.arange(SIZE), low + 1] += frac
    matrix.flags.writeable = False
    return matrix


@functools.cache
def _zoom_stack(stop):
    # np.arange's float steps decide the exact list (1.06 is in, 1.16 is not, 1.25 is 1.2500000000000002): kept.
    # float32 halves the matrix products' time; its error (~1e-6) is far below one grey level.
    stack = np.stack([_zoom_matrix(f) for f in np.arange(1, stop, 0.01)]).astype(np.float32)
    stack.flags.writeable = False
    return stack


def _zoom_blur(x, _rng, stop):
    zooms = _zoom_stack(stop)
    planes = x.astype(np.float32).transpose(2, 0, 1)
    zoomed = (zooms[:, None] @ planes[None] @ zooms.transpose(0, 2, 1)[:, None]).sum(axis=0).transpose(1, 2, 0)
    # Average of the image and all its zooms (the list starts at 1.0, so the unzoomed image counts twice).
    return (x + zoomed) / (len(zooms) + 1)


# --- weather ---


def _snow(x, rng, mean, std, zoom, threshold, radius, sigma, image_weight):
    flakes = rng.normal(mean, std, (SIZE, SIZE))
    flakes = _zoom_matrix(zoom) @ flakes @ _zoom_matrix(zoom).T  # larger flakes
    flakes[flakes < threshold] = 0
    flakes = _motion(np.clip(flakes, 0, 1), radius, sigma, rng.uniform(-135, -45))[..., None]
    grey = x @ np.array([0.299, 0.587, 0.114])
    x = image_weight * x + (1 - image_weight) * np.maximum(x, grey[..., None] * 1.5 + 0.5)  # washed-out light
    return x + flakes + np.rot90(flakes, 2)  # flakes falling both ways


@functools.cache
def _frost_textures():
    # Found without importing the package, whose import pulls in numba and scikit-image.
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the frost corruption needs the textures of the 'imagecorruptions-imaug' package")
    textures = []
    for file in _FROST_FILES:
        bgr = cv2.imread(str(Path(spec.origin).parent / "frost" / file))
        # Shrunk by 5 (bilinear, as the generator) so that ice crystals have a plausible size in a 32 px image.
        rgb = cv2.resize(bgr, (0, 0), fx=0.2, fy=0.2)[..., ::-1] / 255.0
        rgb.flags.writeable = False
        textures.append(rgb)
    return tuple(textures)


def _frost(x, rng, image_weight, frost_weight):
    textures = _frost_textures()
    texture = textures[rng.integers(len(textures))]
    top = rng.integers(texture.shape[0] - SIZE)
    left = rng.integers(texture.shape[1] - SIZE)
    return image_weight * x + frost_weight * texture[top : top + SIZE, left : left + SIZE]


def _plasma_fractal(rng, decay):
    """Diamond-square height map on a SIZE x SIZE torus, scaled to [0, 1]. The noise added at each level is
    wibble * U(-wibble, wibble) (wibble squared, as in the generator), with wibble = 100 divided by ``decay`` per
    level, so ``decay`` sets how much fine detail the fog has."""
    height = np.zeros((SIZE, SIZE))
    step, wibble = SIZE, 100.0
    while step >= 2:
        half = step // 2
        corners = height[::step, ::step]
        # Square step: the centre of each square is the mean of its four corners plus noise.
        around = corners + np.roll(corners, -1, axis=0)
        around = around + np.roll(around, -1, axis=1)
        height[half::step, half::step] = around / 4 + wibble * rng.uniform(-wibble, wibble, around.shape)
        centres = height[half::step, half::step]
        # Diamond step: each edge midpoint is the mean of its two corners and two neighbouring centres plus noise.
        across = corners + np.roll(corners, -1, axis=1) + centres + np.roll(centres, 1, axis=0)
        height[::step, half::step] = across / 4 + wibble * rng.uniform(-wibble, wibble, across.shape)
        down = corners + np.roll(corners, -1, axis=0) + centres + np.roll(centres, 1, axis=1)
        height[half::step, ::step] = down / 4 + wibble * rng.uniform(-wibble, wibble, down.shape)
        step, wibble = half, wibble / decay
    height -= height.min()
    return height / height.max()


def _fog(x, rng, strength, decay):
    peak = x.max()
    x = x + strength * _plasma_fractal(rng, decay)[..., None]
    return x * peak / (peak + strength)  # keeps the brightest pixel where it was


# --- digital ---


def _brightness(x, _rng, shift):
    # Adding to the HSV value with hue and saturation fixed scales a pixel's RGB by new_value / value
    # (a black pixel becomes grey), which is what the generator's rgb2hsv -> hsv2rgb round trip does.
    value = x.max(axis=2, keepdims=True)
    new_value = np.minimum(value + shift, 1)
    lit = value > 0
    return np.where(lit, x * new_value / np.where(lit, value, 1), new_value)


def _contrast(x, _rng, factor):
    mean = x.mean(axis=(0, 1), keepdims=True)
    return (x - mean) * factor + mean


# The generator's three reference points of its random affine (centre +- SIZE // 3), in (x, y) pixels.
_AFFINE_ANCHORS = np.float32([[26, 26], [26, 6], [6, 6]])


def _elastic(x, rng, alpha, sigma, jitter):
    moved = _AFFINE_ANCHORS + rng.uniform(-jitter, jitter, _AFFINE_ANCHORS.shape).astype(np.float32)
    affine = cv2.getAffineTransform(_AFFINE_ANCHORS, moved)
    # float32 as in the generator: OpenCV then samples at 1/32 px, as it did there (float64 would be exact).
    x = cv2.warpAffine(x.astype(np.float32), affine, (SIZE, SIZE), borderMode=cv2.BORDER_REFLECT_101)
    # Smooth random displacement field; sigma 0 leaves white noise, alpha 0 switches it off.
    dx, dy = (
        ndimage.gaussian_filter(field, sigma, mode="reflect", truncate=3) * alpha
        for field in rng.uniform(-1, 1, (2, SIZE, SIZE))
    )
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    coords = (rows + dy, cols + dx)
    return np.stack([ndimage.map_coordinates(x[..., c], coords, order=1, mode="reflect") for c in range(3)], axis=-1)


def _pixelate(x, _rng, scale):
    small = int(SIZE * scale)
    image = Image.fromarray(_to_uint8(x)).resize((small, small), Image.Resampling.BOX)
    return np.asarray(image.resize((SIZE, SIZE), Image.Resampling.BOX)) / 255.0


def _jpeg_compression(x, _rng, quality):
    buffer = io.BytesIO()
    Image.fromarray(_to_uint8(x)).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB")) / 255.0


_CORRUPT = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "defocus_blur": _defocus_blur,
    "frosted_glass_blur": _frosted_glass_blur,
    "motion_blur": _motion_blur,
    "zoom_blur": _zoom_blur,
    "snow": _snow,
    "frost": _frost,
    "fog": _fog,
    "brightness": _brightness,
    "contrast": _contrast,
    "elastic": _elastic,
    "pixelate": _pixelate,
    "jpeg_compression": _jpeg_compression,
}
