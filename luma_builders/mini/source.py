"""A miniature LUMA source tree, generated offline, for tests and benchmarks.

`write_mini_source` writes every file the builder reads, in the published layout and formats, for all
50 classes: class words spoken by espeak-ng (several voices, noise, at times a confusable word in the background),
texts that mostly describe their class without naming it, and procedurally drawn images. Same
arguments, same bytes: nothing depends on the clock, and all randomness comes from `generator(seed, ...)`.
"""

from __future__ import annotations

import gzip
import io
import pickle
import shutil
import struct
import subprocess
import tarfile
import wave
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from luma_builders.classes import CLASS_ID, CLASS_NAMES, ID_CLASSES, NUM_ID_CLASSES, luma_word
from luma_builders.mini.text import make_text
from luma_builders.rng import generator
from luma_builders.sources.readers import METADATA_FILES, SPLIT_FILES, write_checksum_file

CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_COARSE = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}
CIFAR100_NAMES = tuple(sorted(name for names in CIFAR100_COARSE.values() for name in names))
COARSE_ID = {name: i for i, names in enumerate(CIFAR100_COARSE.values()) for name in names}
# Non-LUMA CIFAR classes, so that readers must filter; each gets a prototype after the 50 LUMA ones.
EXTRA_CIFAR10 = ("airplane", "automobile", "deer")
EXTRA_CIFAR100 = ("apple", "tiger", "tractor", "maple_tree", "sunflower", "skyscraper")
EXTRA_TRAIN, EXTRA_TEST = 3, 2  # images per non-LUMA class; also OOD images in the test files (filtered out)

# Per OOD class: (audio, text, image) offsets from ood_per_class; each class has a single smallest one.
OOD_OFFSETS = np.array([(0, 2, -1), (-1, 0, 1), (1, -2, 0), (2, 1, 0), (0, 1, 2), (1, 0, 2), (-2, 0, 1), (1, 2, -1)])

# Folder -> (usual native rate, file name pattern); LUMA's clips come from four corpora at several rates.
AUDIO_FOLDERS = {
    "cv_audio": (48000, "common_voice_en_{}.wav"),
    "sw_audio": (44100, "sw_{:06d}.wav"),
    "ls_audio": (16000, "ls_{:06d}.wav"),
    "re_audio": (22050, "re_{:06d}.wav"),
}
OTHER_RATES = (16000, 22050, 24000, 32000, 44100, 48000)
MIN_SECONDS, MAX_SECONDS = 0.25, 0.85
TAKES_PER_CLASS = 8  # espeak-ng takes (voice, speed, pitch) per class; every clip derives from one of them
SNR_DB = (10.0, 35.0)  # speech-to-noise ratio of each clip, drawn uniformly
CROSSTALK = 0.3  # share of clips where a second voice says a confusable word ...
CROSSTALK_DB = (6.0, 15.0)  # ... this much quieter than the speech
# Says that a folder is this generator's output, so an export's card can call its data synthetic.
MINI_MARKER = "MINI_SOURCE.txt"
# espeak-ng honours these language+variant pairs (plain en-gb silently ignores any +variant).
LANGUAGES = ("en", "en-us", "en-029", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan")
VARIANTS = ("m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3", "f4", "f5", "croak", "klatt2", "Andy", "linda")
VOICES = tuple(f"{language}+{variant}" for language in LANGUAGES for variant in VARIANTS)

# Per class: the classes whose word starts with the same letter (else every other class), for crosstalk.
CONFUSABLE = tuple(
    tuple(d for d, other in enumerate(CLASS_NAMES) if d != c and other[0] == word[0])
    or tuple(d for d in range(len(CLASS_NAMES)) if d != c)
    for c, word in enumerate(CLASS_NAMES)
)

# Image prototypes: shape family x palette (foreground, background); classes share one or the other.
SHAPES = ("disc", "ring", "stripes", "triangle", "cross", "checker", "blob")
PALETTES = np.array(
    [
        [(230, 60, 50), (30, 40, 90)],
        [(250, 210, 60), (40, 110, 50)],
        [(240, 240, 240), (110, 70, 40)],
        [(60, 160, 230), (240, 220, 180)],
        [(40, 40, 40), (170, 200, 230)],
        [(150, 60, 180), (220, 240, 200)],
        [(250, 140, 30), (60, 60, 70)],
        [(80, 200, 140), (120, 30, 60)],
    ],
    dtype=np.float64,
)
_Y, _X = np.mgrid[0:32, 0:32] + 0.5


def source_counts(
    train_per_class: int = 20, test_per_class: int = 6, ood_per_class: int = 12, spare_per_class: int = 4
) -> dict[str, np.ndarray]:
    """Items per class id: audio rows, text rows, and images in the train and test pools.

    ID classes have train + test + spare audio clips and texts, train + spare images in the train pool and
    test + spare in the test pool; the spares are in no split file. OOD classes have about ood_per_class
    of each, with one modality short (records take the minimum), and no test-pool images.
    """
    ood = np.maximum(ood_per_class + OOD_OFFSETS, min(ood_per_class, 1))

    def per_class(id_count, ood_counts):
        return np.concatenate([np.full(NUM_ID_CLASSES, id_count), ood_counts])

    return {
        "audio": per_class(train_per_class + test_per_class + spare_per_class, ood[:, 0]),
        "text": per_class(train_per_class + test_per_class + spare_per_class, ood[:, 1]),
        "image_train": per_class(train_per_class + spare_per_class, ood[:, 2]),
        "image_test": per_class(test_per_class + spare_per_class, np.zeros(len(ood), int)),
    }


def write_mini_source(
    out_dir,
    *,
    seed: int = 0,
    train_per_class: int = 20,
    test_per_class: int = 6,
    ood_per_class: int = 12,
    spare_per_class: int = 4,
) -> Path:
    """Write a complete LUMA source tree into `out_dir` (created, or empty) and return its path."""
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; the mini source needs a fresh folder")
    counts = source_counts(train_per_class, test_per_class, ood_per_class, spare_per_class)
    with ThreadPoolExecutor(max_workers=4) as pool:
        audio_labels = _write_audio(root, seed, counts["audio"], pool)
    text_labels = _write_texts(root, seed, counts["text"])
    train_labels, from_edm, test_labels = _write_images(root, seed, counts)

    rng = generator(seed, "splits")
    chosen = {key: [] for key in SPLIT_FILES}
    for c in ID_CLASSES:
        for modality, labels in (("audio", audio_labels), ("text", text_labels)):
            ids = _take(rng, np.flatnonzero(labels == c), train_per_class + test_per_class)
            chosen[modality, "train_clean"].append(ids[:train_per_class])
            chosen[modality, "test"].append(ids[train_per_class:])
        ids = np.flatnonzero(train_labels == c)
        chosen["image", "train_clean"].append(_take(rng, ids, train_per_class, first=from_edm[ids]))
        chosen["image", "test"].append(_take(rng, np.flatnonzero(test_labels == c), test_per_class))
    (root / "split_indices").mkdir()
    for key, relpath in SPLIT_FILES.items():
        _write_split(root / relpath, np.concatenate(chosen[key]), rng)
    _write_esc50(root / "esc50", seed)
    (root / MINI_MARKER).write_text("A synthetic LUMA source written offline by `luma mini`; not the LUMA data.\n")
    write_checksum_file(root)
    return root


def _take(rng, ids: np.ndarray, count: int, first: np.ndarray | None = None) -> np.ndarray:
    """`count` of `ids` in a seeded order; those flagged in `first` are taken before the others."""
    order = rng.permutation(len(ids))
    if first is not None:
        order = order[np.argsort(~first[order], kind="stable")]
    return ids[order[:count]]


def _write_split(path: Path, ids: np.ndarray, rng) -> None:
    ids = rng.permutation(ids)
    as_float = rng.random(len(ids)) < 0.3
    as_float[:1] = True  # the published files mix "82" and "82.000000"
    path.write_text("".join(f"{i:.6f}\n" if f else f"{i}\n" for i, f in zip(ids, as_float, strict=True)))


def _shuffled_labels(counts: np.ndarray, rng) -> np.ndarray:
    """Class id per row, rows of all classes mixed like the published tables."""
    return rng.permutation(np.repeat(np.arange(len(counts)), counts))


# --------------------------------------------------------------------------- text


def _write_texts(root: Path, seed: int, counts: np.ndarray) -> np.ndarray:
    labels = _shuffled_labels(counts, generator(seed, "text order"))
    texts = np.empty(len(labels), dtype=object)
    for c, word in enumerate(CLASS_NAMES):
        rng = generator(seed, "text", c)
        rows = np.flatnonzero(labels == c)
        texts[rows] = [make_text(word, rng) for _ in rows]
    table = pd.DataFrame({"text": texts, "label": np.asarray(CLASS_NAMES)[labels]})
    table.to_csv(root / METADATA_FILES["texts"], sep="\t", lineterminator="\n")  # with the unnamed index
    return labels


# --------------------------------------------------------------------------- audio


def _write_audio(root: Path, seed: int, counts: np.ndarray, pool: ThreadPoolExecutor) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("the mini source speaks its audio with espeak-ng: install it (apt-get install espeak-ng)")
    labels = _shuffled_labels(counts, generator(seed, "audio order"))
    rng = generator(seed, "audio files")
    folders = list(AUDIO_FOLDERS)
    folder = rng.integers(len(folders), size=len(labels))
    usual = np.array([AUDIO_FOLDERS[name][0] for name in folders])[folder]
    rates = np.where(rng.random(len(labels)) < 0.8, usual, rng.choice(OTHER_RATES, len(labels)))
    numbers = rng.permutation(len(labels)) + 1000
    paths = [f"{folders[f]}/{AUDIO_FOLDERS[folders[f]][1].format(k)}" for f, k in zip(folder, numbers, strict=True)]
    for name in folders:
        (root / "audio" / name).mkdir(parents=True)

    # espeak is the slow part: speak a few takes per class, derive every clip from them.
    jobs = []  # (class, voice, words per minute, pitch)
    for c, n in enumerate(counts):
        voice_rng = generator(seed, "voices", c)
        for v in voice_rng.choice(len(VOICES), min(n, TAKES_PER_CLASS, len(VOICES)), replace=False):
            jobs.append((c, VOICES[v], int(voice_rng.integers(120, 260)), int(voice_rng.integers(5, 95))))
    takes = [[] for _ in CLASS_NAMES]
    for job, take in zip(jobs, pool.map(lambda job: _speak(CLASS_NAMES[job[0]], *job[1:]), jobs), strict=True):
        takes[job[0]].append(take)

    def write_class(c):
        clip_rng = generator(seed, "clips", c)
        for i, row in enumerate(np.flatnonzero(labels == c)):
            samples, rate = takes[c][i % len(takes[c])]
            other = None
            if clip_rng.random() < CROSSTALK:
                confusable = CONFUSABLE[c][clip_rng.integers(len(CONFUSABLE[c]))]
                other = takes[confusable][clip_rng.integers(len(takes[confusable]))]
            clip = _derive_clip(samples, rate, int(rates[row]), clip_rng, other)
            _write_wav(root / "audio" / paths[row], clip, int(rates[row]))

    list(pool.map(write_class, range(len(CLASS_NAMES))))
    words = np.asarray(CLASS_NAMES)[labels]
    table = pd.DataFrame({"path": paths, "label": words, "tts_label": words})
    table.to_csv(root / METADATA_FILES["datalist"], index=False, lineterminator="\n")
    return labels


@lru_cache(maxsize=1024)  # repeated calls (tests) reuse the takes; ~50 kB each
def _speak(word: str, voice: str, speed: int, pitch: int) -> tuple[np.ndarray, int]:
    """espeak-ng saying `word`, trimmed to the voiced part: (read-only float samples, rate)."""
    command = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word]
    with wave.open(io.BytesIO(subprocess.run(command, capture_output=True, check=True).stdout)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.float32) / 32768
    loud = np.flatnonzero(np.abs(samples) > 0.05 * np.abs(samples).max())
    samples = samples[max(loud[0] - rate // 100, 0) : loud[-1] + rate // 100]
    samples.flags.writeable = False
    return samples, rate


def _derive_clip(samples: np.ndarray, rate_in: int, rate_out: int, rng, other=None) -> np.ndarray:
    """A new take of a spoken word: faster or slower (pitch follows), shifted, scaled, over `other` (a take of
    another word, or None), in coloured noise; int16."""
    speed = rng.uniform(0.9, 1.1)
    lead, trail = rng.uniform(0.02, 0.12), rng.uniform(0.02, 0.1)
    voiced = min(len(samples) / rate_in / speed, MAX_SECONDS - lead - trail)
    n_voiced = int(voiced * rate_out)
    take = np.interp(np.arange(n_voiced) * (speed * rate_in / rate_out), np.arange(len(samples)), samples)
    fade = min(n_voiced, rate_out // 50)
    take[n_voiced - fade :] *= np.linspace(1, 0, fade)  # a word cut short must not end in a click
    clip = np.zeros(int(max(lead + voiced + trail, MIN_SECONDS) * rate_out))
    start = int(lead * rate_out)
    clip[start : start + n_voiced] = take
    speech_rms = np.sqrt(np.mean(take**2))
    if other is not None:
        clip += _crosstalk(*other, rate_out, len(clip), speech_rms, rng)
    clip += _noise(len(clip), speech_rms, rng)
    clip *= rng.uniform(0.2, 0.9) / max(np.abs(clip).max(), 1e-3)  # the mix peaks below full scale: nothing clips
    if rng.random() < 0.03:  # a few stereo files, as in the real corpora
        clip = np.stack([clip, clip * rng.uniform(0.6, 1.0)], axis=1)
    return np.round(clip * 32767).astype("<i2")


def _crosstalk(samples: np.ndarray, rate_in: int, rate_out: int, n: int, speech_rms: float, rng) -> np.ndarray:
    """`n` samples of a second voice (`samples`), CROSSTALK_DB under the speech, starting in the clip's first half."""
    voice = np.interp(
        np.arange(len(samples) * rate_out // rate_in) * (rate_in / rate_out), np.arange(len(samples)), samples
    )
    at = int(rng.integers(n // 2))
    voice = voice[: n - at]
    level = speech_rms * 10 ** (-rng.uniform(*CROSSTALK_DB) / 20) / max(np.sqrt(np.mean(voice**2)), 1e-9)
    return np.pad(voice * level, (at, n - at - len(voice)))


def _noise(n: int, speech_rms: float, rng) -> np.ndarray:
    """Room noise at SNR_DB below the speech: white, or a moving average of it (wider ones are darker)."""
    width = int(rng.integers(1, 64))
    summed = np.cumsum(rng.normal(0, 1, n + width))  # a moving average in O(n), whatever its width
    coloured = summed[width:] - summed[:-width]
    snr = rng.uniform(*SNR_DB)
    return coloured * (speech_rms * 10 ** (-snr / 20) / max(coloured.std(), 1e-9))


# --------------------------------------------------------------------------- background noise (ESC-50 layout)

ESC50_RATE, ESC50_SECONDS = 44_100, 5
# Synthetic stand-ins for four ESC-50 categories (target ids as in ESC-50), two takes each.
ESC50_SOUNDS = {"rain": 10, "engine": 44, "chirping_birds": 14, "clock_tick": 38}


def _esc50_sound(category: str, rng) -> np.ndarray:
    t = np.arange(ESC50_RATE * ESC50_SECONDS) / ESC50_RATE
    white = rng.normal(0, 1, len(t))
    if category == "rain":  # broadband hiss with random drops
        sound = np.convolve(white, np.ones(4) / 4, "same") + (rng.random(len(t)) < 2e-3) * rng.normal(0, 4, len(t))
    elif category == "engine":  # a low harmonic hum over rumble
        f0 = rng.uniform(30, 60)
        sound = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) / h for h in range(1, 6)) + 0.3 * white
    elif category == "chirping_birds":  # short rising chirps at random times
        sound = 0.05 * white
        for start in rng.uniform(0, ESC50_SECONDS - 0.2, 12):
            n = int(0.12 * ESC50_RATE)
            at = int(start * ESC50_RATE)
            sweep = np.linspace(rng.uniform(2500, 3500), rng.uniform(4500, 6000), n)
            sound[at : at + n] += np.sin(2 * np.pi * np.cumsum(sweep) / ESC50_RATE) * np.hanning(n)
    else:  # clock_tick: clicks once a second
        sound = 0.02 * white
        for second in range(ESC50_SECONDS):
            at = int((second + rng.uniform(0, 0.05)) * ESC50_RATE)
            sound[at : at + 200] += np.hanning(200) * rng.normal(0, 1, 200)
    return np.round(sound / np.abs(sound).max() * 0.7 * 32767).astype("<i2")


def _write_esc50(root: Path, seed: int) -> None:
    """A tiny noise corpus in ESC-50's layout (meta/esc50.csv, audio/*.wav at 44.1 kHz, 5 s), so the ESC-50 path
    of audio noise runs offline; the real ESC-50 is CC BY-NC, these sounds are synthetic."""
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rows = []
    for category, target in ESC50_SOUNDS.items():
        for take in "AB":
            rng = generator(seed, "esc50", category, take)
            fold, clip_id = int(rng.integers(1, 6)), int(rng.integers(10_000, 999_999))
            filename = f"{fold}-{clip_id}-{take}-{target}.wav"
            _write_wav(root / "audio" / filename, _esc50_sound(category, rng), ESC50_RATE)
            rows.append((filename, fold, target, category, False, clip_id, take))
    pd.DataFrame(rows, columns=["filename", "fold", "target", "category", "esc10", "src_file", "take"]).to_csv(
        root / "meta" / "esc50.csv", index=False, lineterminator="\n"
    )


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1 if samples.ndim == 1 else samples.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())


# --------------------------------------------------------------------------- images


def _draw_images(proto: int, n: int, rng) -> np.ndarray:
    """`n` jittered drawings (n x 32 x 32 x 3 uint8) of prototype `proto`: a shape family on a palette."""
    size = (6.5 + 1.5 * (proto % 3)) * rng.uniform(0.75, 1.3, (n, 1, 1))
    # Small turns and shifts: a linear probe on pixels still finds the shape (most of CIFAR's objects are centred).
    theta = 0.7 * proto + rng.normal(0, 0.15, (n, 1, 1))
    cx, cy = 16 + np.clip(rng.normal(0, 1.2, (2, n, 1, 1)), -3, 3)
    dx, dy = _X - cx, _Y - cy
    u = (dx * np.cos(theta) + dy * np.sin(theta)) / size
    v = (dy * np.cos(theta) - dx * np.sin(theta)) / size
    r = np.hypot(u, v)
    shape = SHAPES[proto % len(SHAPES)]
    if shape == "disc":
        mask = r < 1
    elif shape == "ring":
        mask = (r < 1) & (r > 0.55)
    elif shape == "stripes":
        mask = (np.cos(2.5 * np.pi * u) > 0) & (r < 1.5)
    elif shape == "triangle":
        mask = (v < 0.7) & (np.abs(u) < 0.6 * (v + 0.9))
    elif shape == "cross":
        mask = ((np.abs(u) < 0.3) & (np.abs(v) < 1)) | ((np.abs(v) < 0.3) & (np.abs(u) < 1))
    elif shape == "checker":
        mask = ((np.floor(2.5 * u) + np.floor(2.5 * v)) % 2 == 0) & (np.maximum(np.abs(u), np.abs(v)) < 1.1)
    else:  # blob
        mask = r < 0.85 + 0.25 * np.sin(3 * np.arctan2(v, u) + rng.uniform(0, 2 * np.pi, (n, 1, 1)))

    # One image in ten borrows another palette, so colour alone never decides the class.
    palette = np.where(rng.random(n) < 0.1, rng.integers(len(PALETTES), size=n), proto // len(SHAPES) % len(PALETTES))
    light = rng.uniform(0.8, 1.2, (n, 1))
    fg = (PALETTES[palette, 0] + rng.normal(0, 20, (n, 3))) * light
    bg = (PALETTES[palette, 1] + rng.normal(0, 20, (n, 3))) * light
    gx, gy = rng.normal(0, 0.012, (2, n, 1, 1))
    shade = (1 + gx * (_X - 16) + gy * (_Y - 16))[..., None]
    image = np.where(mask[..., None], fg[:, None, None], bg[:, None, None] * shade)
    ox, oy = rng.uniform(0, 32, (2, n, 1, 1))
    ow, oh = rng.uniform(2, 6, (2, n, 1, 1))
    occluded = (rng.random((n, 1, 1)) < 0.25) & (np.abs(_X - ox) < ow) & (np.abs(_Y - oy) < oh)
    image = np.where(occluded[..., None], rng.uniform(0, 255, (n, 1, 1, 3)), image)
    image += rng.normal(0, 8, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _image_parts(counts: dict[str, np.ndarray]) -> dict[str, list[tuple[str, int, int]]]:
    """(CIFAR name or EDM label, prototype, count) for each image file part."""
    parts = {part: [] for part in ("cifar10_train", "cifar100_train", "edm", "cifar10_test", "cifar100_test")}
    cifar100_name = {luma_word(name): name for name in CIFAR100_NAMES}
    for c, word in enumerate(CLASS_NAMES):
        n = int(counts["image_train"][c])
        edm = -(-n // 4) if c % 4 == 1 else 0  # every fourth class (ID and OOD) has some EDM images
        parts["edm"].append((word, c, edm))
        cifar10 = 0
        if word in CIFAR10_NAMES:
            cifar10 = (n - edm) // 2 if word in cifar100_name else n - edm  # truck is in both
            parts["cifar10_train"].append((word, c, cifar10))
        if word in cifar100_name:
            parts["cifar100_train"].append((cifar100_name[word], c, n - edm - cifar10))
        # Test files hold OOD images too; readers keep only the 42 ID words there.
        test = int(counts["image_test"][c]) if c < NUM_ID_CLASSES else EXTRA_TEST
        if word in CIFAR10_NAMES:
            parts["cifar10_test"].append((word, c, test))
        else:
            parts["cifar100_test"].append((cifar100_name[word], c, test))
    for i, name in enumerate(EXTRA_CIFAR10 + EXTRA_CIFAR100):
        dataset = "cifar10" if name in EXTRA_CIFAR10 else "cifar100"
        parts[dataset + "_train"].append((name, len(CLASS_NAMES) + i, EXTRA_TRAIN))
        parts[dataset + "_test"].append((name, len(CLASS_NAMES) + i, EXTRA_TEST))
    return parts


def _write_images(root: Path, seed: int, counts: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write both CIFAR archives and the EDM pickle.

    Returns the class ids of the train pool, which of its items are EDM images, and the test pool's ids.
    """
    drawn = {}
    for part, entries in _image_parts(counts).items():
        names = np.array([name for name, _, n in entries for _ in range(n)], dtype=object)
        images = np.concatenate([_draw_images(p, n, generator(seed, "image", part, name)) for name, p, n in entries])
        order = generator(seed, "image order", part).permutation(len(names))
        drawn[part] = names[order], images[order]

    names, images = drawn["cifar10_train"]
    members = {}
    for b, rows in enumerate(np.array_split(np.arange(len(names)), 5), 1):
        members[f"data_batch_{b}"] = _cifar10_batch(f"training batch {b} of 5", names[rows], images[rows])
    members["test_batch"] = _cifar10_batch("testing batch 1 of 1", *drawn["cifar10_test"])
    batch_size = -(-len(names) // 5)
    members["batches.meta"] = _py2_pickle(
        {"num_cases_per_batch": batch_size, "label_names": list(CIFAR10_NAMES), "num_vis": 3072}
    )
    _write_tar_gz(root / METADATA_FILES["cifar10"], "cifar-10-batches-py", members)
    _write_tar_gz(
        root / METADATA_FILES["cifar100"],
        "cifar-100-python",
        {
            "train": _cifar100_batch("training batch 1 of 1", *drawn["cifar100_train"]),
            "test": _cifar100_batch("testing batch 1 of 1", *drawn["cifar100_test"]),
            "meta": _py2_pickle(
                {"fine_label_names": list(CIFAR100_NAMES), "coarse_label_names": list(CIFAR100_COARSE)}
            ),
        },
    )
    names, images = drawn["edm"]
    pd.DataFrame({"image": list(images), "label": list(names)}).to_pickle(root / METADATA_FILES["edm"], protocol=4)

    def luma_ids(part):
        return np.array([CLASS_ID.get(luma_word(name), -1) for name in drawn[part][0]], dtype=np.int64)

    train = [(luma_ids(part), part == "edm") for part in ("cifar10_train", "cifar100_train", "edm")]
    test = [luma_ids(part) for part in ("cifar10_test", "cifar100_test")]
    return (
        np.concatenate([ids[ids >= 0] for ids, _ in train]),
        np.concatenate([np.full((ids >= 0).sum(), is_edm) for ids, is_edm in train]),
        np.concatenate([ids[(ids >= 0) & (ids < NUM_ID_CLASSES)] for ids in test]),
    )


def _pixels(images: np.ndarray) -> np.ndarray:
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)  # CIFAR rows: R plane, G plane, B plane


def _filenames(names) -> list[str]:
    return [f"{name}_s_{i:06d}.png" for i, name in enumerate(names)]


def _cifar10_batch(label: str, names: np.ndarray, images: np.ndarray) -> bytes:
    labels = [CIFAR10_NAMES.index(name) for name in names]
    return _py2_pickle(
        {"batch_label": label, "labels": labels, "data": _pixels(images), "filenames": _filenames(names)}
    )


def _cifar100_batch(label: str, names: np.ndarray, images: np.ndarray) -> bytes:
    return _py2_pickle(
        {
            "filenames": _filenames(names),
            "batch_label": label,
            "fine_labels": [CIFAR100_NAMES.index(name) for name in names],
            "coarse_labels": [COARSE_ID[name] for name in names],
            "data": _pixels(images),
        }
    )


class _Py2Pickler(pickle._Pickler):
    """Pickles strings and bytes as Python 2 `str` (BINSTRING), as the published CIFAR pickles do.

    Python 3's protocol 2 wraps bytes in a `_codecs.encode` call instead; with `encoding="latin1"` these
    load as `str`.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str


def _py2_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def _write_tar_gz(path: Path, folder: str, members: dict[str, bytes]) -> None:
    """A tar.gz of `folder/` and its members, with no times, owners or file names recorded."""
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as packed,
        tarfile.open(fileobj=packed, mode="w", format=tarfile.USTAR_FORMAT) as archive,
    ):
        entry = tarfile.TarInfo(folder)  # TarInfo defaults: mtime 0, uid/gid 0, no owner names
        entry.type, entry.mode = tarfile.DIRTYPE, 0o755
        archive.addfile(entry)
        for name, data in members.items():
            entry = tarfile.TarInfo(f"{folder}/{name}")
            entry.size = len(data)
            archive.addfile(entry, io.BytesIO(data))
