"""Bad input gets an error naming the file, row or parameter, and leaves nothing half-written in the cache."""

import os
import re
import shutil
from pathlib import Path

import http_server
import numpy as np
import pandas as pd
import pytest
import soundfile
from conftest import SMALL, serve

from luma import Luma
from luma_builders.classes import CLASS_ID, CLASS_NAMES, NUM_ID_CLASSES, OOD_CLASSES
from luma_builders.cli import main
from luma_builders.sources.readers import MODALITIES, SPLIT_FILES, SourceError, write_checksum_file


def build(data_dir, cache_dir, **parameters):
    builder = Luma(config_name="clean", data_dir=str(data_dir), cache_dir=str(cache_dir), **parameters)
    builder.download_and_prepare()
    return builder


def assert_nothing_half_written(cache_dir: Path):
    leftovers = [
        p
        for p in cache_dir.rglob("*")
        if p.suffix == ".arrow" or "incomplete" in p.name or p.name == "dataset_info.json"
    ]
    assert leftovers == []


def first_test_audio_id(root: Path) -> int:
    return int(float((root / "split_indices" / "audio_test.txt").read_text().split()[0]))


def first_test_wav(root: Path) -> Path:
    path = pd.read_csv(root / "audio" / "datalist.csv", keep_default_na=False)["path"][first_test_audio_id(root)]
    return root / "audio" / path


def rewrite_table(path: Path, sep: str, row: int, word: str):
    table = pd.read_csv(path, sep=sep, keep_default_na=False, dtype=str)
    table.loc[row, "label"] = word
    table.to_csv(path, sep=sep, index=False)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"config_name": "cleen"}, "unknown LUMA config 'cleen'"),
        ({"config_name": "clean", "sead": 1}, r"unknown LUMA parameter\(s\) \['sead'\]"),
        ({"config_name": "clean", "seed": -1}, "'seed' must be >= 0"),
        ({"config_name": "clean", "seed": 1.5}, "'seed' must be of type int"),
        ({"config_name": "clean", "ood_in_test": "yes"}, "'ood_in_test' must be of type bool"),
        ({"config_name": "clean", "data_dir": "here", "hub_revision": "main"}, "hub_revision applies to the published"),
        ({"config_name": "clean", "image_corruptions": ("fog", 3)}, "'image_corruptions' must be names"),
        ({"config_name": "sample_noise", "noise_splits": ()}, r"'noise_splits': unknown \(\)"),
        ({"config_name": "clean", "text_augmenters": '["OCRNoise", 5]'}, "'text_augmenters': expected a name"),
        ({"config_name": "clean", "cifar_dir": 3}, "'cifar_dir' must be of type str or None"),
    ],
)
def test_bad_config_or_parameter(parameters, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        Luma(cache_dir=str(tmp_path), **parameters)


def _damage_cases():
    def remove(root):
        (root / "text_data.tsv").unlink()

    def corrupt_wav(root):
        first_test_wav(root).write_bytes(b"RIFF not really a wav")

    def empty_wav(root):
        soundfile.write(first_test_wav(root), np.zeros(0, dtype=np.float32), 16_000)

    def unknown_audio_word(root):
        rewrite_table(root / "audio" / "datalist.csv", ",", 3, "dgo")

    def unknown_text_word(root):
        rewrite_table(root / "text_data.tsv", "\t", 5, "kat")

    def index_out_of_range(root):
        with open(root / "split_indices" / "image_test.txt", "a") as file:
            file.write("999999.000000\n")

    def truncated_archive(root):
        archive = root / "cifar-10-python.tar.gz"
        archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])

    return [
        (remove, True, r"text_data\.tsv: file not found"),
        (corrupt_wav, True, r"\.wav \(audio_id \d+\): not a readable audio file"),
        (empty_wav, True, r"\.wav \(audio_id \d+\): audio file has no samples"),
        (unknown_audio_word, True, r"datalist\.csv row 3 \(line 5\): unknown class word 'dgo'"),
        (unknown_text_word, True, r"text_data\.tsv row 5 \(line 7\): unknown class word 'kat'"),
        (index_out_of_range, True, r"image_test\.txt line \d+: index 999999\.000000 is out of range"),
        (truncated_archive, True, r"cifar-10-python\.tar\.gz: truncated or corrupt archive"),
        (truncated_archive, False, r"cifar-10-python\.tar\.gz: sha256 checksum mismatch"),
        (unknown_text_word, False, r"text_data\.tsv: sha256 checksum mismatch"),
    ]


@pytest.mark.parametrize(("damage", "update_checksums", "message"), _damage_cases())
def test_damaged_source(damage, update_checksums, message, source_copy, tmp_path):
    damage(source_copy)
    if update_checksums:  # so that the content check, not the checksum, has to catch it
        write_checksum_file(source_copy)
    with pytest.raises(SourceError, match=message):
        build(source_copy, tmp_path / "cache")
    assert_nothing_half_written(tmp_path / "cache")


def test_unreachable_url(tmp_path):
    with pytest.raises(SourceError, match=r"http://127\.0\.0\.1:9/luma/.*cannot be"):
        build("http://127.0.0.1:9/luma", tmp_path)
    assert_nothing_half_written(tmp_path)


def test_bad_download_leaves_no_cache_entry_and_a_retry_succeeds(source_copy, tmp_path):
    tsv = source_copy / "text_data.tsv"
    good = tsv.read_bytes()
    tsv.write_bytes(good.replace(b"a", b"o", 1))
    cache = tmp_path / "cache"
    with serve(source_copy) as url:
        with pytest.raises(SourceError, match=re.escape(url) + r"/text_data\.tsv: sha256 checksum mismatch"):
            build(url, cache)
        assert not [p for p in cache.rglob("*") if p.is_file() and p.read_bytes() == tsv.read_bytes()]
        assert_nothing_half_written(cache)
        tsv.write_bytes(good)
        assert build(url, cache).info.splits["test"].num_examples > 0


def point_a_test_clip_outside(root: Path, outside: Path) -> int:
    """Copy the first test clip to `outside` (beside the source), point its datalist.csv row there, update the
    checksums: without the path check, the build would read and publish that file. Returns the row."""
    shutil.copyfile(first_test_wav(root), outside)
    os.utime(outside, (0, outside.stat().st_mtime))  # an atime of 0: any read of the file moves it
    row = first_test_audio_id(root)
    datalist = root / "audio" / "datalist.csv"
    table = pd.read_csv(datalist, keep_default_na=False, dtype=str)
    table.loc[row, "path"] = os.path.relpath(outside, root / "audio")
    table.to_csv(datalist, index=False, lineterminator="\n")
    write_checksum_file(root)
    return row


def outside_path_message(datalist: str, row: int) -> str:
    return re.escape(f"{datalist} row {row} (line {row + 2}): path '../../outside.wav' leaves the source folder")


def test_a_datalist_path_outside_the_folder_is_refused(source_copy, tmp_path):
    outside = tmp_path / "outside.wav"
    row = point_a_test_clip_outside(source_copy, outside)
    with pytest.raises(SourceError, match=outside_path_message(source_copy / "audio" / "datalist.csv", row)):
        build(source_copy, tmp_path / "cache")
    assert outside.stat().st_atime == 0
    assert_nothing_half_written(tmp_path / "cache")


def test_a_datalist_path_outside_the_url_is_refused(source_copy, tmp_path, monkeypatch):
    outside = tmp_path / "outside.wav"
    row = point_a_test_clip_outside(source_copy, outside)
    requested = []
    monkeypatch.setattr(http_server._RangeHandler, "log_message", lambda handler, *args: requested.append(handler.path))
    with serve(tmp_path) as url:  # the server would hand out outside.wav, beside the source's prefix
        data_dir = f"{url}/source"
        with pytest.raises(SourceError, match=outside_path_message(f"{data_dir}/audio/datalist.csv", row)):
            build(data_dir, tmp_path / "cache")
    assert any(path.endswith("/source/audio/datalist.csv") for path in requested)
    assert not [path for path in requested if "outside" in path]
    assert_nothing_half_written(tmp_path / "cache")


@pytest.mark.parametrize("num_proc", [0, -1, 1.5, True, "2"])
def test_bad_num_proc_fails_before_any_work(num_proc, tmp_path):
    builder = Luma(config_name="clean", data_dir=str(tmp_path / "no_source"), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=re.escape(f"num_proc must be None or an integer >= 1, got {num_proc!r}")):
        builder.download_and_prepare(num_proc=num_proc)
    assert_nothing_half_written(tmp_path / "cache")


@pytest.mark.parametrize("value", ["0", "-1", "two"])
@pytest.mark.parametrize("command", [["build", "clean"], ["export", "--configs", "clean", "--out", "exported"]])
def test_cli_num_proc_must_be_a_positive_integer(command, value, capsys):
    with pytest.raises(SystemExit):
        main([*command, "--num-proc", value])
    assert f"argument --num-proc: expected a positive integer, got '{value}'" in capsys.readouterr().err


def test_an_empty_split_fails_before_writing_and_the_fixed_source_builds(source_copy, mini_source, tmp_path):
    for modality in MODALITIES:
        (source_copy / SPLIT_FILES[modality, "test"]).write_text("")
    write_checksum_file(source_copy)
    cache = tmp_path / "cache"
    files = ", ".join(re.escape(str(source_copy / SPLIT_FILES[m, "test"])) for m in MODALITIES)
    with pytest.raises(SourceError, match=f"split 'test' would be empty: {files} list no items"):
        build(source_copy, cache)
    assert_nothing_half_written(cache)
    for modality in MODALITIES:
        shutil.copyfile(mini_source / SPLIT_FILES[modality, "test"], source_copy / SPLIT_FILES[modality, "test"])
    write_checksum_file(source_copy)
    assert build(source_copy, cache).info.splits["test"].num_examples == NUM_ID_CLASSES * SMALL["test_per_class"]


def test_a_source_without_ood_items_names_the_ood_classes(source_copy, tmp_path):
    # no clip of an OOD class (they are in no split file, so relabelling them changes nothing else)
    datalist = source_copy / "audio" / "datalist.csv"
    table = pd.read_csv(datalist, keep_default_na=False, dtype=str)
    table.loc[table["label"].map(CLASS_ID) >= NUM_ID_CLASSES, "label"] = CLASS_NAMES[0]
    table.to_csv(datalist, index=False, lineterminator="\n")
    write_checksum_file(source_copy)
    classes = ", ".join(CLASS_NAMES[c] for c in OOD_CLASSES)
    with pytest.raises(SourceError, match=re.escape(f"split 'ood' would be empty: no OOD class ({classes}) has")):
        build(source_copy, tmp_path / "cache")
    assert_nothing_half_written(tmp_path / "cache")
