"""A cache of decoded sources: what `load_source` reads and checks, kept as .npy arrays and one JSON file under
`$LUMA_HOME/sources/<source identity>-v<FORMAT_VERSION>/`, so that later builds and streams of the same source skip
the CIFAR archives, the EDM pickle and the metadata tables.

An entry is written into a temporary folder and renamed into place, its manifest (size and sha256 of every file)
written last; a read checks the manifest and every file against it, and an entry that fails is rebuilt, never
trusted. Arrays are mapped read-only (`np.load(mmap_mode="r")`): processes that read one entry share its pages.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from luma_builders.plan.planning import SourceData, load_source
from luma_builders.sources.readers import ImagePool
from luma_builders.sources.transfer import luma_home

logger = logging.getLogger(__name__)
FORMAT_VERSION = 1  # bump whenever what an entry holds, or how, changes
MANIFEST = "manifest.json"
TABLES = "tables.json"  # the lists of strings and the checksums of what was read
POOL_ARRAYS = ("images", "labels", "sources")
# A writer killed mid-entry (SIGKILL, a crash) leaves its temporary folder; a live writer's is seconds old.
STALE_PARTIAL_SECONDS = 3600


def cached_source(source, identity: str) -> tuple[SourceData, PoolImages]:
    """`load_source(source)` through the cache entry of `identity` (`Source.identity()`), and the entry's image pools
    for the records' generation. An absent or damaged entry is (re)built from the source first."""
    folder = entry_folder(identity)
    data = read_entry(folder)
    if data is None:
        write_entry(folder, load_source(source))
        data = _mapped_entry(folder)  # verified as it was written: hashing it again would only slow a cold stream
    return data, PoolImages(str(folder))


def entry_folder(identity: str) -> Path:
    return luma_home() / "sources" / f"{identity}-v{FORMAT_VERSION}"


class PoolImages:
    """The image pools of a cache entry, mapped from their files on first use. Pickles as the entry's folder, so
    num_proc workers map the same pages rather than receive a copy (an np.memmap pickles its whole contents)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._mapped: dict[str, np.ndarray] = {}

    def __reduce__(self):
        return PoolImages, (self.folder,)

    def image(self, pool: str, image_id: int) -> np.ndarray:
        """The 32x32x3 uint8 pixels of `image_id` in `pool`, as a private (writable) copy."""
        if pool not in self._mapped:
            self._mapped[pool] = np.load(os.path.join(self.folder, f"{pool}_images.npy"), mmap_mode="r")
        return np.array(self._mapped[pool][image_id])


def _arrays(data: SourceData) -> dict[str, np.ndarray]:
    """Every array of `data`, by file name stem."""
    arrays = {"audio_labels": data.audio_labels, "text_labels": data.text_labels}
    for pool_name, pool in data.pools.items():
        arrays.update({f"{pool_name}_{field}": getattr(pool, field) for field in POOL_ARRAYS})
    for (modality, split), ids in data.split_ids.items():
        arrays[f"split_{modality}_{split}"] = ids
    return arrays


def write_entry(folder: Path, data: SourceData) -> None:
    """Write `data` as the entry `folder`, atomically: a reader sees the whole entry or none. A damaged entry in the
    way is replaced; one that another process completed meanwhile is kept."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(folder.parent)
    partial = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".partial-{folder.name}-"))
    try:
        for stem, array in _arrays(data).items():
            np.save(partial / f"{stem}.npy", np.ascontiguousarray(array), allow_pickle=False)
        tables = {"audio_paths": data.audio_paths, "texts": data.texts, "file_checksums": data.file_checksums}
        (partial / TABLES).write_text(json.dumps(tables))
        manifest = {"format_version": FORMAT_VERSION, "files": {p.name: _file_entry(p) for p in partial.iterdir()}}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1))  # last: it is what makes the entry valid
        if folder.exists() and _entry_problem(folder) is not None:
            shutil.rmtree(folder)
        try:
            os.rename(partial, folder)
        except OSError:
            if not folder.is_dir():
                raise  # not a concurrent writer that got there first
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def remove_stale_partials(parent: Path) -> None:
    """Remove the temporary folders of killed writers from `parent`: those untouched for STALE_PARTIAL_SECONDS."""
    cutoff = time.time() - STALE_PARTIAL_SECONDS
    for partial in parent.glob(".partial-*"):
        with contextlib.suppress(FileNotFoundError):  # another process removed it first
            if partial.stat().st_mtime < cutoff:
                shutil.rmtree(partial, ignore_errors=True)
                logger.info("removed %s, left by a source cache writer that did not finish", partial)


def _file_entry(path: Path) -> dict:
    with open(path, "rb") as file:
        return {"num_bytes": path.stat().st_size, "sha256": hashlib.file_digest(file, "sha256").hexdigest()}


def read_entry(folder: Path) -> SourceData | None:
    """The entry's data, or None if it is absent or damaged (then logged)."""
    if not folder.is_dir():
        return None
    problem = _entry_problem(folder)
    if problem is not None:
        logger.warning("ignoring the damaged source cache entry %s (%s): rebuilding it", folder, problem)
        return None
    return _mapped_entry(folder)


def _mapped_entry(folder: Path) -> SourceData:
    """The data of the entry in `folder`, unchecked (`read_entry` checks it)."""
    # only the pools' pixels are mapped: the rest is small, and a memmap's every item access is slow
    arrays = {
        p.stem: np.load(p, mmap_mode="r" if p.stem.endswith("_images") else None, allow_pickle=False)
        for p in sorted(folder.glob("*.npy"))
    }
    tables = json.loads((folder / TABLES).read_text())
    pools = {
        name: ImagePool(*(arrays[f"{name}_{field}"] for field in POOL_ARRAYS))
        for name in sorted({stem.split("_", 1)[0] for stem in arrays if stem.endswith("_images")})
    }
    split_ids = {tuple(stem.split("_", 2)[1:]): ids for stem, ids in arrays.items() if stem.startswith("split_")}
    return SourceData(
        tables["audio_paths"],
        arrays["audio_labels"],
        tables["texts"],
        arrays["text_labels"],
        pools,
        split_ids,
        tables["file_checksums"],
    )


def _entry_problem(folder: Path) -> str | None:
    """Why the entry in `folder` cannot be trusted, or None: the manifest must list exactly its files, each of the
    size and sha256 recorded."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest.get("format_version") != FORMAT_VERSION:
            return f"format version {manifest.get('format_version')}, expected {FORMAT_VERSION}"
        present = {p.name for p in folder.iterdir()} - {MANIFEST}
        if present != set(manifest["files"]):
            return f"holds {sorted(present)}, its manifest lists {sorted(manifest['files'])}"
        for name, expected in manifest["files"].items():
            if _file_entry(folder / name) != expected:
                return f"{name} does not match its size and sha256 in the manifest"
    except (OSError, ValueError, KeyError, AttributeError) as err:
        return f"{type(err).__name__}: {err}"
    return None
