"""Where each LUMA file comes from, and what it must hash to.

- `data_dir`: a local folder or a mirror URL in the published layout. A local folder may be a `git clone` of the
  Hub repo, which has no CIFAR and no split files: those then come from `cifar_dir` / `split_dir` or their
  published locations.
- No `data_dir`: the Hub repo (`bezirganyan/LUMA`) at a commit resolved once per build from `hub_revision`, read
  through huggingface_hub into the shared HF cache; CIFAR and the split files from their pinned locations.
- `cifar_dir`: CIFAR as users have it, the tarballs or torchvision's extracted folders.
- `split_dir`: the six split files.

Published pins (CIFAR md5s, split files' sha256) hold for files from their published locations, `cifar_dir` and
`split_dir`; a `data_dir` is checked against its own SHA256SUMS; Hub files against the Hub's own checksums.
`LUMA_SOURCE_MANIFEST` may name a JSON file that replaces the published table (a mirror for an air-gapped site).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import posixpath
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path

from luma_builders.errors import SourceError
from luma_builders.pickling import reduce_in_one_piece
from luma_builders.sources.readers import (
    CHECKSUM_FILE,
    check_not_lfs_pointer,
    cifar_members,
    cifar_members_from_folder,
    is_url,
    parse_checksum_file,
)
from luma_builders.sources.transfer import cached_url, fetch_url, hub_file, hub_offline, in_parallel, resolve_revision

CIFAR_ARCHIVES = {"cifar-10-python.tar.gz": "cifar10", "cifar-100-python.tar.gz": "cifar100"}
SPLIT_PREFIX = "split_indices/"
CONCURRENT_READS = 8


def published() -> dict:
    """The published locations and pins (data: `default_source.json`, or the file `LUMA_SOURCE_MANIFEST` names): a
    copy the caller may change."""
    return copy.deepcopy(_published_table())


def _published_table() -> dict:
    """The same table, shared and read-only: `location` asks for it once per file read, so it is not copied."""
    return _read_published_table(os.environ.get("LUMA_SOURCE_MANIFEST"))


@functools.lru_cache(maxsize=4)
def _read_published_table(manifest: str | None) -> dict:
    if manifest:
        return json.loads(Path(manifest).read_text())
    return json.loads(resources.files(__package__).joinpath("default_source.json").read_text())


def _local_tree_identity(folder: str, prefix: str = "") -> list:
    """(path, size, mtime) of every file: cheap, and changes whenever a file is replaced or edited. Links to folders
    are not followed (as `os.walk` does not); `scandir` spares a full-scale source's 30k path joins."""
    entries = []
    with os.scandir(folder) as found:
        for entry in found:
            if not entry.is_dir():
                stat = entry.stat()
                entries.append((prefix + entry.name, stat.st_size, stat.st_mtime_ns))
            elif not entry.is_symlink():
                entries += _local_tree_identity(entry.path, prefix + entry.name + os.sep)
    return sorted(entries)


@dataclass(frozen=True)
class Source:
    """The resolved origin of every file of one build. Picklable (workers get it); `open` is the constructor."""

    data_dir: str | None = None
    hub_repo: str | None = None
    hub_commit: str | None = None
    cifar_dir: str | None = None
    split_dir: str | None = None
    checksums: dict[str, tuple[str, str]] = field(default_factory=dict)  # relpath -> (algorithm, digest)
    token: str | bool | None = None

    def __reduce__(self):
        # num_proc workers each get the source: its checksums are thousands of small objects
        return reduce_in_one_piece(_source_from_fields, {f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def open(cls, data_dir=None, hub_revision=None, cifar_dir=None, split_dir=None, token=None) -> Source:
        if data_dir is not None:
            data_dir = data_dir.rstrip("/") if is_url(data_dir) else os.path.abspath(data_dir)
        table = _published_table()
        source = cls(
            data_dir=data_dir,
            hub_repo=None if data_dir else table["hub_repo"],
            cifar_dir=os.path.abspath(cifar_dir) if cifar_dir else None,
            split_dir=os.path.abspath(split_dir) if split_dir else None,
            token=token,
        )
        if data_dir is None:
            commit = resolve_revision(table["hub_repo"], hub_revision or table["hub_revision"], token)
            source = replace(source, hub_commit=commit)
        return replace(source, checksums={**source._published_pins(table), **source._data_dir_checksums()})

    # ----------------------------------------------------------------- where a file is

    def location(self, relpath: str) -> str:
        """A path, a URL, or `hf://datasets/<repo>@<commit>/<relpath>`: where `relpath` is read from."""
        if relpath.startswith(SPLIT_PREFIX) and self.split_dir:
            return os.path.join(self.split_dir, relpath.removeprefix(SPLIT_PREFIX))
        if relpath in CIFAR_ARCHIVES and self.cifar_dir:
            archive = os.path.join(self.cifar_dir, relpath)
            return archive if os.path.exists(archive) else self.cifar_dir  # torchvision's root, extracted
        if self.data_dir is not None:
            if is_url(self.data_dir):
                return posixpath.join(self.data_dir, relpath)
            local = os.path.join(self.data_dir, relpath)
            # a clone of the Hub repo has no CIFAR and no split files: those come from their published places (a clip
            # is none of them, so it is not looked for on disk here: `read` looks once)
            if relpath not in _published_table()["files"] or os.path.exists(local):
                return local
        if relpath in _published_table()["files"]:
            return _published_table()["files"][relpath]["url"]
        return f"hf://datasets/{self.hub_repo}@{self.hub_commit}/{relpath}"

    def _pinned(self, relpath: str) -> bool:
        """Published pins hold unless the file comes from a data_dir (which has its own SHA256SUMS)."""
        location = self.location(relpath)
        return self.data_dir is None or not location.startswith(self.data_dir)

    # ----------------------------------------------------------------- reading

    def read(self, relpath: str, cache: bool = True) -> bytes:
        """The verified bytes of `relpath`; `cache=False` reads a URL without LUMA's download cache (streaming)."""
        location = self.location(relpath)
        try:
            if location.startswith("hf://"):
                data = hub_file(self.hub_repo, self.hub_commit, relpath, self.token)
            elif is_url(location) and cache:
                data = cached_url(location, lambda d: self.verify(relpath, d), hub_offline())
            elif is_url(location):
                data = fetch_url(location)
            else:
                data = _read_local(location, self._folder_of(location))
        except FileNotFoundError as err:
            raise SourceError(f"{location}: file not found") from err
        self.verify(relpath, data)
        return data

    def read_many(self, relpaths: list[str], cache: bool = True) -> list[bytes]:
        """`read` of each of `relpaths`: clips are single small files. Over a network `CONCURRENT_READS` at a time, to
        hide its latency; local files one after another (a thread pool costs them seven times the reading's CPU)."""
        read = {}

        def read_one(relpath: str) -> None:
            read[relpath] = self.read(relpath, cache=cache)

        unique = sorted(set(relpaths))
        if any(is_url(self.location(relpath)) for relpath in unique):
            in_parallel(read_one, unique, workers=CONCURRENT_READS)
        else:
            for relpath in unique:
                read_one(relpath)
        return [read[relpath] for relpath in relpaths]

    def _folder_of(self, location: str) -> str:
        """The local folder (split_dir, cifar_dir or data_dir) a local file is read from."""
        folders = [f for f in (self.split_dir, self.cifar_dir, self.data_dir) if f and not is_url(f)]
        return next((f for f in folders if location.startswith(f + os.sep)), os.path.dirname(location))

    def cifar_members(self, archive: str) -> dict[str, bytes]:
        """The members of a CIFAR archive, from the tarball or from torchvision's extracted folder."""
        location = self.location(archive)
        if os.path.isdir(location):
            md5s = _published_table()["cifar_extracted"]["md5"] if self._pinned(archive) else None
            return cifar_members_from_folder(Path(location), CIFAR_ARCHIVES[archive], md5s)
        return cifar_members(self.read(archive), location)

    def verify(self, relpath: str, data: bytes) -> None:
        """Check `data` against the checksum known for `relpath`, if any."""
        if relpath not in self.checksums:
            return
        algorithm, expected = self.checksums[relpath]
        actual = hashlib.new(algorithm, data).hexdigest()
        if actual != expected:
            raise SourceError(
                f"{self.location(relpath)}: {algorithm} checksum mismatch "
                f"(expected {expected}, got {actual}); the file is corrupt or not the published one"
            )

    # ----------------------------------------------------------------- identity and checksums

    def identity(self) -> str:
        """What the prepared dataset's cache key must change with: the Hub commit, the checksums, and the size and
        mtime of every local file."""
        folders = {"data_dir": self.data_dir, "cifar_dir": self.cifar_dir, "split_dir": self.split_dir}
        local = {
            name: _local_tree_identity(folder)
            for name, folder in folders.items()
            if folder and not is_url(folder) and os.path.isdir(folder)
        }
        described = [self.data_dir, self.hub_repo, self.hub_commit, sorted(self.checksums.items()), local]
        return hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]

    def _published_pins(self, table: dict) -> dict[str, tuple[str, str]]:
        return {
            relpath: (entry["algorithm"], entry["checksum"])
            for relpath, entry in table["files"].items()
            if entry.get("checksum") and self._pinned(relpath)
        }

    def _data_dir_checksums(self) -> dict[str, tuple[str, str]]:
        if self.data_dir is None:
            return {}
        location = posixpath.join(self.data_dir, CHECKSUM_FILE) if is_url(self.data_dir) else None
        try:
            if location:
                text = fetch_url(location).decode()
            else:
                location = os.path.join(self.data_dir, CHECKSUM_FILE)
                text = Path(location).read_text()
        except FileNotFoundError:
            return {}  # a custom source may carry no checksums
        return parse_checksum_file(text, location)


def _source_from_fields(values: dict) -> Source:
    return Source(**values)


def _read_local(path: str, folder: str) -> bytes:
    _check_inside(path, folder)
    try:
        with open(path, "rb") as file:
            data = file.read()
    except IsADirectoryError:
        raise SourceError(f"{path}: is a folder, expected a file") from None
    check_not_lfs_pointer(data, path, folder)
    return data


@functools.lru_cache(maxsize=64)
def _source_root(folder: str) -> str:
    """The real path that a source folder's files must stay inside: once per folder, not once per clip."""
    root = os.path.realpath(folder)
    return str(Path(root).parent.parent) if Path(root).parent.name == "snapshots" else root


def _check_inside(path: str, folder: str) -> None:
    """A symlink in a source (a git clone can hold one) must not lead out of it; an HF cache snapshot's links
    into its repo's blobs/ are fine."""
    real, root = os.path.realpath(path), _source_root(folder)
    if os.path.commonpath([real, root]) != root:
        raise SourceError(f"{path}: a link to {real}, which leaves the source folder {folder}")
