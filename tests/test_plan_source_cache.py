"""The cache of decoded sources: written once per source and reused, rebuilt when damaged, one entry per source,
and the records built, streamed or made by num_proc workers from it are those of the source."""

import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import read_source_tables
from test_builder import build, rows, streamed_rows

from luma import Luma
from luma_builders.errors import SourceError
from luma_builders.plan.source_cache import MANIFEST, STALE_PARTIAL_SECONDS, PoolImages, entry_folder
from luma_builders.sources.readers import METADATA_FILES, SPLIT_FILES, write_checksum_file
from luma_builders.sources.transfer import luma_home

SPLITS = ("train", "test", "ood")
DECODED_FILES = [*METADATA_FILES.values(), *SPLIT_FILES.values()]  # every file load_source reads (not the clips)


def entries() -> list[Path]:
    return sorted((luma_home() / "sources").iterdir())


def entry_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def garble_keeping_size_and_mtime(path: Path) -> None:
    """New content, same size and mtime: the source's identity (and so its cache entry) stays, its checksum fails."""
    stat = path.stat()
    path.write_bytes(bytes(255 - b for b in path.read_bytes()))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_the_second_build_reads_no_metadata_file_of_the_source(source_copy, tmp_path, monkeypatch):
    first = build(source_copy, tmp_path / "first")
    assert len(entries()) == 1
    for relpath in DECODED_FILES:
        garble_keeping_size_and_mtime(source_copy / relpath)
    second = build(source_copy, tmp_path / "second")  # another cache_dir: datasets' tables are not reused
    assert len(entries()) == 1
    for split in SPLITS:
        assert rows(second, split) == rows(first, split)
    monkeypatch.setenv("LUMA_HOME", str(tmp_path / "empty_luma_home"))  # without the entry, the garbled files are read
    with pytest.raises(SourceError, match="checksum mismatch"):
        build(source_copy, tmp_path / "third")


def flip_a_pixel_byte(folder: Path) -> None:
    path = folder / "train_images.npy"
    data = bytearray(path.read_bytes())
    data[-1000] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate_the_labels(folder: Path) -> None:
    path = folder / "audio_labels.npy"
    path.write_bytes(path.read_bytes()[:-8])


def remove_the_manifest(folder: Path) -> None:
    (folder / MANIFEST).unlink()


def add_a_stray_file(folder: Path) -> None:
    (folder / "leftover.npy").write_bytes(b"\x93NUMPY")


@pytest.mark.parametrize("damage", [flip_a_pixel_byte, truncate_the_labels, remove_the_manifest, add_a_stray_file])
def test_a_damaged_entry_is_rebuilt(mini_source, tmp_path, damage, caplog):
    first = build(mini_source, tmp_path / "first")
    (folder,) = entries()
    written = entry_bytes(folder)
    damage(folder)
    second = build(mini_source, tmp_path / "second")
    assert "damaged source cache entry" in caplog.text
    assert entry_bytes(folder) == written
    for split in SPLITS:
        assert rows(second, split) == rows(first, split)


def test_a_changed_source_gets_its_own_entry(mini_source, source_copy, tmp_path):
    texts = source_copy / "text_data.tsv"
    header, *lines = texts.read_text().splitlines()
    edited = ["{} (edited)\t{}".format(*line.rsplit("\t", 1)) for line in lines]  # index, text, label
    texts.write_text("\n".join([header, *edited]) + "\n")
    write_checksum_file(source_copy)
    original = build(mini_source, tmp_path / "original")
    changed = build(source_copy, tmp_path / "changed")
    assert len(entries()) == 2 and entry_folder(original.hash) != entry_folder(changed.hash)
    for split in SPLITS:
        assert all(r["text"].endswith(" (edited)") for r in rows(changed, split))
        assert not any(r["text"].endswith(" (edited)") for r in rows(original, split))


def test_a_killed_writers_folders_are_removed_once_stale(mini_source, tmp_path):
    parent = luma_home() / "sources"
    parent.mkdir(parents=True)
    stale, live = parent / ".partial-x-killed", parent / ".partial-x-writing"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "images.npy").write_bytes(b"half written")
    hours_ago = time.time() - STALE_PARTIAL_SECONDS - 60
    os.utime(stale, (hours_ago, hours_ago))
    builder = build(mini_source, tmp_path)  # writes the source's entry
    assert not stale.exists() and (live / "images.npy").exists()
    assert entries() == [live, entry_folder(builder.hash)]  # hidden names sort first


def test_the_pools_pickle_as_their_folder_and_read_the_source_pixels(mini_source, tmp_path):
    builder = build(mini_source, tmp_path)
    images = pickle.loads(pickle.dumps(PoolImages(str(entry_folder(builder.hash)))))
    assert len(pickle.dumps(images)) < 1000  # a path, not the pools
    pools = read_source_tables(mini_source)["pools"]
    for pool in ("train", "test"):
        for image_id in (0, len(pools[pool]) - 1):
            np.testing.assert_array_equal(images.image(pool, image_id), pools[pool][image_id][0])


def test_num_proc_workers_build_from_the_entry_what_one_process_builds(mini_source, tmp_path):
    one = build(mini_source, tmp_path / "one")
    two = build(mini_source, tmp_path / "two", num_proc=2)  # the entry exists: the workers map it
    for split in SPLITS:
        assert rows(two, split) == rows(one, split)


def test_cold_and_warm_streams_give_the_built_records(mini_source, tmp_path):
    cold = Luma(config_name="clean", data_dir=str(mini_source), cache_dir=str(tmp_path / "stream"))
    streamed_cold = {split: streamed_rows(cold, split) for split in SPLITS}  # writes the entry
    assert len(entries()) == 1
    built = build(mini_source, tmp_path / "built")
    warm = Luma(config_name="clean", data_dir=str(mini_source), cache_dir=str(tmp_path / "stream"))
    for split in SPLITS:
        assert streamed_cold[split] == rows(built, split)
        assert streamed_rows(warm, split) == rows(built, split)
