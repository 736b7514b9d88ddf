"""Readers of single source files: confined paths, CIFAR as a tarball or torchvision's folders, LFS pointers."""

import hashlib
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

from luma_builders.codecs import encode_wav
from luma_builders.sources.locations import published
from luma_builders.sources.readers import (
    CIFAR_LAYOUTS,
    METADATA_FILES,
    SourceError,
    check_not_lfs_pointer,
    cifar_members,
    cifar_members_from_folder,
    parse_checksum_file,
    read_cifar10,
    read_cifar100,
    read_datalist,
    safe_relpath,
)

DIGEST = "0" * 64


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../../outside.wav", "leaves the source folder"),
        ("cv_audio/../../../outside.wav", "leaves the source folder"),
        ("cv_audio/../sw_audio/x.wav", "has a '..' segment"),
        ("/etc/passwd", "is absolute"),
        ("C:\\luma\\x.wav", "is absolute"),
        ("C:/luma/x.wav", "is absolute"),
        ("\\\\server\\share\\x.wav", "is absolute"),
        ("http://example.org/x.wav", "is a URL"),
        ("file:x.wav", "is a URL"),
        ("zip://x.wav::audio.zip", "is a URL"),
        ("cv_audio/x.wav::http://example.org/y.wav", "is a URL"),
        ("cv_audio\\x.wav", "contains a backslash"),
        ("cv_audio//x.wav", "has an empty segment"),
        ("cv_audio/", "has an empty segment"),
        ("", "names no file"),
        ("./.", "names no file"),
        ("cv_audio/x\0.wav", "contains a NUL character"),
        ("cv_audio/%2e%2e/%2e%2e/outside.wav", "contains '%'"),
    ],
)
def test_safe_relpath_refuses_every_way_out(path, problem):
    with pytest.raises(SourceError, match=re.escape(f"audio/datalist.csv row 7 (line 9): path {path!r} {problem}")):
        safe_relpath(path, "audio/datalist.csv row 7 (line 9)")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("cv_audio/common_voice_en_1001.wav", "cv_audio/common_voice_en_1001.wav"),
        ("./cv_audio/./x.wav", "cv_audio/x.wav"),  # `find . | xargs sha256sum` writes ./ paths
        ("..hidden.wav", "..hidden.wav"),
        ("sw_audio/Title: a word.wav", "sw_audio/Title: a word.wav"),
    ],
)
def test_safe_relpath_keeps_paths_inside(path, expected):
    assert safe_relpath(path, "name") == expected


def test_datalist_names_the_row_of_a_path_that_leaves_the_folder():
    rows = [f"cv_audio/common_voice_en_{i}.wav,dog,dog" for i in range(10)]
    rows[7] = "../../outside.wav,dog,dog"
    data = "\n".join(["path,label,tts_label", *rows]).encode()
    with pytest.raises(SourceError, match=re.escape("datalist.csv row 7 (line 9): path '../../outside.wav' leaves")):
        read_datalist(data, "audio/datalist.csv")
    rows[7] = "./cv_audio/x.wav,dog,dog"
    paths, _ = read_datalist("\n".join(["path,label,tts_label", *rows]).encode(), "audio/datalist.csv")
    assert paths[7] == "cv_audio/x.wav" and paths[6] == "cv_audio/common_voice_en_6.wav"


def test_checksum_file_entries_stay_inside_the_source():
    text = f"{DIGEST}  ./audio/x.wav\n\n{DIGEST}  text_data.tsv\n{DIGEST}  ../secret.tsv\n"
    with pytest.raises(SourceError, match=re.escape("SHA256SUMS line 4: path '../secret.tsv' leaves the source")):
        parse_checksum_file(text, "SHA256SUMS")
    assert set(parse_checksum_file(text.rsplit(DIGEST, 1)[0], "SHA256SUMS")) == {"audio/x.wav", "text_data.tsv"}


def _md5s(folder: Path) -> dict[str, str]:
    """The md5 of every file under `folder`, by path relative to it (= member name)."""
    return {
        p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize(("which", "read"), [("cifar10", read_cifar10), ("cifar100", read_cifar100)])
def test_extracted_folder_gives_the_archives_members(which, read, mini_source, tmp_path):
    archive = mini_source / METADATA_FILES[which]
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="data")
    members = cifar_members(archive.read_bytes(), str(archive))
    assert cifar_members_from_folder(tmp_path, which, _md5s(tmp_path)) == members
    train, test = read(members, str(archive))
    assert len(train.labels) > 0 and len(test.labels) > 0 and train.images.shape[1:] == (32, 32, 3)


def test_a_tampered_or_missing_extracted_file_is_named(mini_source, tmp_path):
    with tarfile.open(mini_source / METADATA_FILES["cifar10"]) as tar:
        tar.extractall(tmp_path, filter="data")
    md5s = _md5s(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    tampered = bytearray(batch.read_bytes())
    tampered[-100] ^= 1
    batch.write_bytes(bytes(tampered))
    expected = md5s["cifar-10-batches-py/data_batch_3"]
    with pytest.raises(SourceError, match=re.escape(f"{batch}: md5 mismatch (expected {expected}, got ")):
        cifar_members_from_folder(tmp_path, "cifar10", md5s)
    # without md5s (files that are not the published ones) the folder is read as it is
    assert cifar_members_from_folder(tmp_path, "cifar10", None)["cifar-10-batches-py/data_batch_3"] == tampered
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(SourceError, match=re.escape(f"{tmp_path / 'cifar-10-batches-py' / 'test_batch'} is missing")):
        cifar_members_from_folder(tmp_path, "cifar10", None)


def test_published_md5s_cover_every_extracted_file():
    expected = {f"{layout.folder}/{file}" for layout in CIFAR_LAYOUTS.values() for file in layout.files()}
    md5s = published()["cifar_extracted"]["md5"]
    assert set(md5s) == expected
    assert all(re.fullmatch(r"[0-9a-f]{32}", md5) for md5 in md5s.values())


LFS_POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    b"size 12345\n"
)


def test_an_lfs_pointer_is_not_the_data():
    with pytest.raises(
        SourceError, match=re.escape("edm_images.pickle is a Git LFS pointer, not the data: run `git lfs pull` in /src")
    ):
        check_not_lfs_pointer(LFS_POINTER, "edm_images.pickle", "/src")


@pytest.mark.parametrize(
    "data",
    [
        encode_wav(np.zeros(1600, dtype=np.float32)),
        b"text\tlabel\nversion https://git-lfs.github.com/spec/v1\tdog\n",
        LFS_POINTER + b"x" * 1024,  # pointers are under 1024 bytes: this is a file that starts like one
    ],
)
def test_data_is_not_taken_for_an_lfs_pointer(data):
    check_not_lfs_pointer(data, "file", "/src")
