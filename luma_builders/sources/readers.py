"""Reading the real LUMA sources, from a local folder or from URLs, in their published formats.

Every reader takes the bytes of one file (the CIFAR readers: an archive's members) and the file's name,
and raises `SourceError` naming the file (and row or line) when the content is not what LUMA publishes.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from luma_builders.classes import CLASS_ID, CLASS_NAMES, NUM_ID_CLASSES, luma_word
from luma_builders.errors import SourceError
from luma_builders.sources import safe_pickle

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


# --------------------------------------------------------------------------- locations and checksums


def is_url(path: str) -> bool:
    return "://" in path


def read_location(location: str, download_config=None) -> bytes:
    """The bytes of a local file or URL; FileNotFoundError if absent, SourceError if unreachable."""
    if not is_url(location):  # plain `open`: fsspec's `xopen` costs more than reading a clip
        with open(location, "rb") as file:
            return file.read()
    from datasets.utils.file_utils import xopen

    try:
        with xopen(location, "rb", download_config=download_config) as file:
            return file.read()
    except OSError as err:
        raise_if_unreachable(location, err)
        raise


_LFS_POINTER_START = b"version https://git-lfs.github.com/spec/"
_LFS_POINTER_MAX_BYTES = 1024  # the Git LFS spec keeps pointer files under 1024 bytes


def check_not_lfs_pointer(data: bytes, name: str, folder: str) -> None:
    """A clone made without `git lfs pull` holds small pointer files where the data should be."""
    if len(data) < _LFS_POINTER_MAX_BYTES and data.startswith(_LFS_POINTER_START):
        raise SourceError(f"{name} is a Git LFS pointer, not the data: run `git lfs pull` in {folder}")


def raise_if_unreachable(location: str, err: BaseException) -> None:
    """fsspec and datasets report a refused connection as FileNotFoundError: look at the causes."""
    cause = err
    while cause is not None:
        if isinstance(cause, OSError) and not isinstance(cause, FileNotFoundError):
            raise SourceError(f"{location}: cannot be reached ({type(cause).__name__}: {cause})") from err
        cause = cause.__cause__ or cause.__context__


def parse_checksum_file(text: str, name: str) -> dict[str, tuple[str, str]]:
    """Parse `sha256sum` output: `<hex>  <relative path>` per line."""
    checksums = {}
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, relpath = line.partition("  ")
        if not sep or len(digest) != 64 or not relpath:
            raise SourceError(f"{name} line {line_no}: expected '<sha256>  <path>', got {line!r}")
        checksums[safe_relpath(relpath.strip(), f"{name} line {line_no}")] = ("sha256", digest.lower())
    return checksums


# The usual case, checked fast: '/'-separated names free of the characters below, none of them '.' or '..'.
_PLAIN_RELPATH = re.compile(r"(?:(?!\.\.?(?:/|$))[^/\\\x00%:]+/)*(?!\.\.?$)[^/\\\x00%:]+")
_DRIVE = re.compile(r"[A-Za-z]:")
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")


def _relpath_problem(path: str) -> str | None:
    """Why `path` is not a plain relative path inside its folder, or None."""
    segments = path.split("/")
    problems = (
        ("\0" in path, "contains a NUL character"),
        (path.startswith(("/", "\\")) or _DRIVE.match(path) is not None, "is absolute"),
        # fsspec reads a leading `scheme:`, and `://` or `::` (chained file systems) anywhere, as a URL
        (_URL_SCHEME.match(path) is not None or "://" in path or "::" in path, "is a URL"),
        ("\\" in path, "contains a backslash (folders are separated by '/')"),
        ("%" in path, "contains '%', which a URL decodes into other characters"),
        (set(segments) <= {"", "."}, "names no file"),
        ("" in segments, "has an empty segment"),
        (posixpath.normpath(path).split("/")[0] == "..", "leaves the source folder"),
        (".." in segments, "has a '..' segment"),
    )
    return next((problem for found, problem in problems if found), None)


def safe_relpath(path: str, name: str) -> str:
    """`path` with its `.` segments dropped, if it is a relative path that stays inside its folder.

    Source paths are joined onto a local folder or a URL alike, so anything either could read as a way out
    (`..`, absolute, URL, backslash, percent escape, empty segment, NUL) raises SourceError naming `name`,
    the file and row or line the path comes from.
    """
    if _PLAIN_RELPATH.fullmatch(path):
        return path
    problem = _relpath_problem(path)
    if problem is not None:
        raise SourceError(f"{name}: path {path!r} {problem}")
    return "/".join(segment for segment in path.split("/") if segment != ".")


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
    paths = table["path"].tolist()
    # >135k rows: only the unusual paths go through safe_relpath, one by one
    for row in np.flatnonzero(~table["path"].str.fullmatch(_PLAIN_RELPATH).to_numpy(dtype=bool)):
        paths[row] = safe_relpath(paths[row], f"{name} row {row} (line {row + 2})")
    return paths, _class_ids(table["label"], name)


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


def cifar_members(data: bytes, name: str) -> dict[str, bytes]:
    """The files of a CIFAR .tar.gz by member name (`cifar-10-batches-py/data_batch_1`, ...)."""
    try:
        # one pass over the stream ("r|gz"): listing the members first, then seeking back to each one, decompresses
        # the archive twice
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|gz") as archive:
            return {member.name: archive.extractfile(member).read() for member in archive if member.isfile()}
    except (tarfile.TarError, EOFError, OSError) as err:
        raise SourceError(f"{name}: truncated or corrupt archive ({err})") from err


@dataclass(frozen=True)
class CifarLayout:
    """Which pickles of a CIFAR archive hold what; member names are `<folder>/<file>`."""

    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    label_names: str  # the key of the class names in the meta pickle
    labels: str  # the key of the labels in a batch pickle

    def files(self) -> tuple[str, ...]:
        return (*self.train, *self.test, self.meta)


CIFAR_LAYOUTS = {
    "cifar10": CifarLayout(
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
        "label_names",
        "labels",
    ),
    "cifar100": CifarLayout("cifar-100-python", ("train",), ("test",), "meta", "fine_label_names", "fine_labels"),
}


def cifar_members_from_folder(folder: Path, which: str, md5s: dict[str, str] | None) -> dict[str, bytes]:
    """The members of CIFAR archive `which` ("cifar10" or "cifar100") as torchvision extracts it: `folder`
    (torchvision's `root`) holds `cifar-10-batches-py/` or `cifar-100-python/`.

    With `md5s` (member name -> md5, the published ones in `default_source.json`) every file must match; pass None for
    files that are not the published ones (the mini source's).
    """
    layout = CIFAR_LAYOUTS[which]
    members = {}
    for file in layout.files():
        member = f"{layout.folder}/{file}"
        path = Path(folder, member)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SourceError(f"{path} is missing; {layout.folder}/ must hold {', '.join(layout.files())}") from None
        except OSError as err:
            raise SourceError(f"{path}: cannot be read ({err})") from err
        if md5s is not None and (actual := hashlib.md5(data).hexdigest()) != md5s[member]:
            raise SourceError(
                f"{path}: md5 mismatch (expected {md5s[member]}, got {actual}); "
                "the file is corrupt or not the published one"
            )
        members[member] = data
    return members


def _cifar_batch(members: dict[str, bytes], archive: str, member: str) -> dict:
    if member not in members:
        raise SourceError(f"{archive}: member {member} is missing")
    return _unpickle(members[member], f"{archive} member {member}", safe_pickle.CIFAR)


def _cifar_images(batch: dict, archive: str, member: str) -> np.ndarray:
    pixels = np.asarray(batch["data"], dtype=np.uint8)
    if pixels.ndim != 2 or pixels.shape[1] != 3072:
        raise SourceError(f"{archive}: member {member} has data of shape {pixels.shape}, expected N x 3072")
    # CIFAR stores each image channel-major (1024 R, 1024 G, 1024 B); LUMA uses HWC. Copied channel by channel into
    # a contiguous array: numpy's 4-d transposed copy is 5x slower, and masking a transposed view slower still.
    hwc = np.empty((len(pixels), 32 * 32, 3), np.uint8)
    for channel in range(3):
        hwc[:, :, channel] = pixels[:, channel * 1024 : (channel + 1) * 1024]
    return hwc.reshape(-1, *IMAGE_SHAPE)


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


def _read_cifar(members: dict[str, bytes], name: str, which: str) -> tuple[ImageSet, ImageSet]:
    layout = CIFAR_LAYOUTS[which]
    names = _cifar_batch(members, name, f"{layout.folder}/{layout.meta}")[layout.label_names]

    def load(files: tuple[str, ...]) -> ImageSet:
        member_names = [f"{layout.folder}/{file}" for file in files]
        batches = [_cifar_batch(members, name, member) for member in member_names]
        images = [_cifar_images(batch, name, member) for batch, member in zip(batches, member_names, strict=True)]
        labels = [_luma_ids(batch[layout.labels], names) for batch in batches]
        return ImageSet(np.concatenate(images), np.concatenate(labels), which)

    return load(layout.train), load(layout.test)


def read_cifar10(members: dict[str, bytes], name: str) -> tuple[ImageSet, ImageSet]:
    """CIFAR-10 members -> (train batches 1-5 in order, test batch); `name` says where they come from."""
    return _read_cifar(members, name, "cifar10")


def read_cifar100(members: dict[str, bytes], name: str) -> tuple[ImageSet, ImageSet]:
    """CIFAR-100 members -> (train, test), fine labels; `name` says where they come from."""
    return _read_cifar(members, name, "cifar100")


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


def build_pools(
    cifar10: dict[str, bytes], cifar100: dict[str, bytes], edm: bytes, names: dict[str, str]
) -> dict[str, ImagePool]:
    """The train pool (CIFAR-10 batches 1-5, CIFAR-100 train, EDM; all 50 words) and the test pool
    (CIFAR-10 test, CIFAR-100 test; the 42 ID words), each filtered and renumbered as LUMA does.
    `cifar10` and `cifar100` are the archives' members (`cifar_members`, `cifar_members_from_folder`)."""
    c10_train, c10_test = read_cifar10(cifar10, names["cifar10"])
    c100_train, c100_test = read_cifar100(cifar100, names["cifar100"])
    every_class = range(len(CLASS_NAMES))
    return {
        "train": ImagePool.concatenate(
            [s.keep(every_class) for s in (c10_train, c100_train, read_edm(edm, names["edm"]))]
        ),
        "test": ImagePool.concatenate([s.keep(range(NUM_ID_CLASSES)) for s in (c10_test, c100_test)]),
    }
