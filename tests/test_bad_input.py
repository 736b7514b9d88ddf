"""Bad input gets an error naming the file, row or parameter, and leaves nothing half-written in the cache."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from conftest import serve

from luma import Luma
from luma_builders.sources import SourceError, write_checksum_file


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


def first_test_wav(root: Path) -> Path:
    audio_id = int(float((root / "split_indices" / "audio_test.txt").read_text().split()[0]))
    path = pd.read_csv(root / "audio" / "datalist.csv", keep_default_na=False)["path"][audio_id]
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
