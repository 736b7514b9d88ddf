"""Reading the real LUMA sources, from a local folder or from URLs, in their published formats.

Every reader takes the bytes of one file and the file's name, and raises `SourceError` naming the
file (and row or line) when the content is not what LUMA publishes.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import tarfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile
from scipy.signal import resample_poly

from . import safe_pickle
from .classes import CLASS_ID, CLASS_NAMES, NUM_ID_CLASSES, luma_word

SAMPLING_RATE = 16_000
IMAGE_SHAPE = (32, 32, 3)
MODALITIES = ("image", "audio", "text")
METADATA_FILES = {
    "datalist": "audio/datalist.csv",
    "texts": "text_data.tsv",
    "edm": "edm_images.pickle",
    "cifar10": "cifar-10-python.tar.gz",
    "cifar100": "cifar-100-python.tar.gz",
}
SPLIT_FILES = {
    (modality, split): f"split_indices/{modality}_{split}.txt"
    for modality in MODALITIES
    for split in ("train_clean", "test")
}
CHECKSUM_FILE = "SHA256SUMS"


class SourceError(ValueError):
    """A source file is missing, unreadable, or not in the published LUMA format."""


# --------------------------------------------------------------------------- locations and checksums


@dataclass(frozen=True)
class Source:
    """Where the LUMA files live and what their checksums must be.

    `root` is a local folder or a base URL holding every file at its published relative path;
    `None` means the published locations (the Hub repo, the CIFAR site, the authors' GitHub).
    """

    root: str | None
    checksums: dict[str, tuple[str, str]] = field(default_factory=dict)

    def location(self, relpath: str) -> str:
        if self.root is not None:
            return posixpath.join(self.root, relpath) if is_url(self.root) else str(Path(self.root, relpath))
        published = published_locations()
        if relpath in published["files"]:
            return published["files"][relpath]["url"]
        if relpath.startswith("split_indices/"):
            return published["split_indices_base"] + relpath.removeprefix("split_indices/")
        return published["hub_base"] + relpath

    def key(self) -> str:
        """Identifies the source's content for caches: its location and its checksums."""
        return json.dumps([self.root, sorted(self.checksums.items())])

    def verify(self, relpath: str, data: bytes) -> None:
        """Check `data` against the pinned checksum of `relpath`, if there is one."""
        if relpath not in self.checksums:
            return
        algorithm, expected = self.checksums[relpath]
        actual = hashlib.new(algorithm, data).hexdigest()
        if actual != expected:
            raise SourceError(
                f"{self.location(relpath)}: {algorithm} checksum mismatch "
                f"(expected {expected}, got {actual}); the file is corrupt or not the published one"
            )


def is_url(path: str) -> bool:
    return "://" in path


def read_location(location: str, download_config=None) -> bytes:
    """The bytes of a local file or URL; FileNotFoundError if absent, SourceError if unreachable."""
    from datasets.utils.file_utils import xopen

    try:
        with xopen(location, "rb", download_config=download_config) as file:
            return file.read()
    except OSError as err:
        raise_if_unreachable(location, err)
        raise


def raise_if_unreachable(location: str, err: BaseException) -> None:
    """fsspec and datasets report a refused connection as FileNotFoundError: look at the causes."""
    cause = err
    while cause is not None:
        if isinstance(cause, OSError) and not isinstance(cause, FileNotFoundError):
            raise SourceError(f"{location}: cannot be reached ({type(cause).__name__}: {cause})") from err
        cause = cause.__cause__ or cause.__context__


def published_locations() -> dict:
    """The pinned real locations and their checksums (data, kept in default_source.json)."""
    return json.loads(resources.files(__package__).joinpath("default_source.json").read_text())


def published_checksums() -> dict[str, tuple[str, str]]:
    return {
        relpath: (entry["algorithm"], entry["checksum"])
        for relpath, entry in published_locations()["files"].items()
        if entry.get("checksum")
    }


def parse_checksum_file(text: str, name: str) -> dict[str, tuple[str, str]]:
    """Parse `sha256sum` output: `<hex>  <relative path>` per line."""
    checksums = {}
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, relpath = line.partition("  ")
        if not sep or len(digest) != 64 or not relpath:
            raise SourceError(f"{name} line {line_no}: expected '<sha256>  <path>', got {line!r}")
        checksums[relpath.strip()] = ("sha256", digest.lower())
    return checksums


def write_checksum_file(root: Path) -> None:
    """Write SHA256SUMS for every file under `root` (except itself), sorted by path."""
    lines = [
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(root).as_posix()}"
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != CHECKSUM_FILE
    ]
    (root / CHECKSUM_FILE).write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- tabular metadata


def _class_ids(words: pd.Series, name: str) -> np.ndarray:
    unknown = ~words.isin(list(CLASS_NAMES))
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise SourceError(f"{name} row {row} (line {row + 2}): unknown class word {words.iloc[row]!r}")
    return words.map(CLASS_ID).to_numpy(dtype=np.int64)


def read_table(data: bytes, name: str, sep: str, columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        table = pd.read_csv(io.BytesIO(data), sep=sep, keep_default_na=False, dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise SourceError(f"{name}: not a readable {'TSV' if sep == chr(9) else 'CSV'} file ({err})") from err
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise SourceError(f"{name}: missing column(s) {missing}; found {list(table.columns)}")
    return table


def read_datalist(data: bytes, name: str) -> tuple[list[str], np.ndarray]:
    """`audio/datalist.csv` -> (wav paths relative to audio/, class ids); row = audio id."""
    table = read_table(data, name, ",", ("path", "label"))
    return table["path"].tolist(), _class_ids(table["label"], name)


def read_texts(data: bytes, name: str) -> tuple[list[str], np.ndarray]:
    """`text_data.tsv` -> (texts, class ids); row = text id."""
    table = read_table(data, name, "\t", ("text", "label"))
    return table["text"].tolist(), _class_ids(table["label"], name)


def read_split_indices(data: bytes, name: str, pool_size: int) -> np.ndarray:
    """One index per line; the published files write some as floats (`82223.000000`)."""
    indices = []
    for line_no, line in enumerate(data.decode("ascii", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = float(line)
        except ValueError:
            raise SourceError(f"{name} line {line_no}: {line.strip()!r} is not an index") from None
        if not value.is_integer() or not 0 <= value < pool_size:
            raise SourceError(f"{name} line {line_no}: index {line.strip()} is out of range 0..{pool_size - 1}")
        indices.append(int(value))
    return np.asarray(indices, dtype=np.int64)


# --------------------------------------------------------------------------- images


def _unpickle(data: bytes, name: str, allowed: safe_pickle.AllowList):
    """The object pickled in `data`, loaded without running code (see safe_pickle)."""
    try:
        return safe_pickle.loads(data, allowed)
    except safe_pickle.RefusedGlobal as err:
        raise SourceError(f"{err.qualname} is not allowed in {name}: {allowed.holds}") from None
    except Exception as err:  # a corrupt pickle can raise nearly anything
        raise SourceError(f"{name}: not a readable pickle ({err})") from err


def _tar_members(data: bytes, name: str) -> dict[str, bytes]:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            return {
                member.name: archive.extractfile(member).read() for member in archive.getmembers() if member.isfile()
            }
    except (tarfile.TarError, EOFError, OSError) as err:
        raise SourceError(f"{name}: truncated or corrupt archive ({err})") from err


def _cifar_batch(members: dict[str, bytes], archive: str, member: str) -> dict:
    if member not in members:
        raise SourceError(f"{archive}: member {member} is missing")
    return _unpickle(members[member], f"{archive} member {member}", safe_pickle.CIFAR)


def _cifar_images(batch: dict, archive: str, member: str) -> np.ndarray:
    pixels = np.asarray(batch["data"], dtype=np.uint8)
    if pixels.ndim != 2 or pixels.shape[1] != 3072:
        raise SourceError(f"{archive}: member {member} has data of shape {pixels.shape}, expected N x 3072")
    # CIFAR stores each image channel-major (1024 R, 1024 G, 1024 B); LUMA uses HWC.
    return pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


@dataclass(frozen=True)
class ImageSet:
    """Images with their LUMA class ids (-1: not a LUMA word) and their origin."""

    images: np.ndarray
    labels: np.ndarray
    source: str

    def keep(self, classes) -> ImageSet:
        mask = np.isin(self.labels, list(classes))
        return ImageSet(self.images[mask], self.labels[mask], self.source)


def _luma_ids(cifar_labels, names: list[str]) -> np.ndarray:
    words = [luma_word(name) for name in names]
    lookup = np.array([CLASS_ID.get(word, -1) for word in words], dtype=np.int64)
    return lookup[np.asarray(cifar_labels, dtype=np.int64)]


def read_cifar10(data: bytes, name: str) -> tuple[ImageSet, ImageSet]:
    """CIFAR-10 archive -> (train batches 1-5 in order, test batch)."""
    members = _tar_members(data, name)
    names = _cifar_batch(members, name, "cifar-10-batches-py/batches.meta")["label_names"]

    def load(member_names):
        batches = [_cifar_batch(members, name, f"cifar-10-batches-py/{m}") for m in member_names]
        images = [_cifar_images(b, name, m) for b, m in zip(batches, member_names, strict=True)]
        labels = [_luma_ids(b["labels"], names) for b in batches]
        return ImageSet(np.concatenate(images), np.concatenate(labels), "cifar10")

    return load([f"data_batch_{i}" for i in range(1, 6)]), load(["test_batch"])


def read_cifar100(data: bytes, name: str) -> tuple[ImageSet, ImageSet]:
    """CIFAR-100 archive -> (train, test), fine labels."""
    members = _tar_members(data, name)
    names = _cifar_batch(members, name, "cifar-100-python/meta")["fine_label_names"]

    def load(member):
        batch = _cifar_batch(members, name, f"cifar-100-python/{member}")
        return ImageSet(_cifar_images(batch, name, member), _luma_ids(batch["fine_labels"], names), "cifar100")

    return load("train"), load("test")


def read_edm(data: bytes, name: str) -> ImageSet:
    """`edm_images.pickle`: a pandas DataFrame with `image` (32x32x3 uint8) and `label` (word)."""
    frame = _unpickle(data, name, safe_pickle.EDM)
    if not isinstance(frame, pd.DataFrame) or not {"image", "label"} <= set(frame.columns):
        raise SourceError(f"{name}: expected a DataFrame with columns 'image' and 'label'")
    labels = _class_ids(frame["label"].astype(str), name)
    images = np.stack([np.asarray(image) for image in frame["image"]]) if len(frame) else np.zeros((0, *IMAGE_SHAPE))
    if images.shape[1:] != IMAGE_SHAPE:
        raise SourceError(f"{name}: images have shape {images.shape[1:]}, expected {IMAGE_SHAPE}")
    return ImageSet(images.astype(np.uint8), labels, "edm")


@dataclass(frozen=True)
class ImagePool:
    """The renumbered image pool that LUMA's split files index into."""

    images: np.ndarray
    labels: np.ndarray
    sources: np.ndarray  # origin name per image

    @classmethod
    def concatenate(cls, parts: list[ImageSet]) -> ImagePool:
        return cls(
            np.concatenate([part.images for part in parts]),
            np.concatenate([part.labels for part in parts]),
            np.concatenate([np.full(len(part.labels), part.source) for part in parts]),
        )


def build_pools(cifar10: bytes, cifar100: bytes, edm: bytes, names: dict[str, str]) -> dict[str, ImagePool]:
    """The train pool (CIFAR-10 batches 1-5, CIFAR-100 train, EDM; all 50 words) and the test pool
    (CIFAR-10 test, CIFAR-100 test; the 42 ID words), each filtered and renumbered as LUMA does."""
    c10_train, c10_test = read_cifar10(cifar10, names["cifar10"])
    c100_train, c100_test = read_cifar100(cifar100, names["cifar100"])
    every_class = range(len(CLASS_NAMES))
    return {
        "train": ImagePool.concatenate(
            [s.keep(every_class) for s in (c10_train, c100_train, read_edm(edm, names["edm"]))]
        ),
        "test": ImagePool.concatenate([s.keep(range(NUM_ID_CLASSES)) for s in (c10_test, c100_test)]),
    }


# --------------------------------------------------------------------------- audio


def decode_wav(data: bytes, name: str) -> np.ndarray:
    """Any wav -> float32 mono at 16 kHz (LUMA's clips come at several native rates)."""
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as err:
        raise SourceError(f"{name}: not a readable audio file ({err})") from err
    if samples.shape[0] == 0:
        raise SourceError(f"{name}: audio file has no samples")
    mono = samples.mean(axis=1)
    if rate != SAMPLING_RATE:
        divisor = np.gcd(rate, SAMPLING_RATE)
        mono = resample_poly(mono, SAMPLING_RATE // divisor, rate // divisor).astype(np.float32)
    return mono


def encode_wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(samples, -1.0, 1.0), SAMPLING_RATE, subtype="PCM_16", format="WAV")
    return buffer.getvalue()
