"""Room: sources (`locations`, `transfer`, `download`). The published data path against a loopback fake Hub: builds
equal to a folder build, retries, stalls, 404s, corrupt downloads, `luma download` then offline builds, a moved
branch; and the layouts users have (a clone of the Hub repo, CIFAR as torchvision extracts it, own split files)."""

import hashlib
import json
import logging
import re
import shutil
import tarfile
import threading
import time
from pathlib import Path

import huggingface_hub
import pytest
from conftest import serve
from fake_hub import FakeHub
from test_builder import build, rows, streamed_rows
from tqdm import tqdm

from luma import Luma
from luma_builders.cli import main
from luma_builders.errors import SourceError
from luma_builders.sources.locations import CIFAR_ARCHIVES, published
from luma_builders.sources.readers import SPLIT_FILES
from luma_builders.sources.transfer import fetch_url, showing_url_progress

PUBLISHED_ELSEWHERE = [*CIFAR_ARCHIVES, *SPLIT_FILES.values()]  # not in the Hub repo


def hub_part(mini_source: Path, target: Path) -> Path:
    """What the Hub repo holds: the mini source less CIFAR and the split files (a clone looks like this)."""
    shutil.copytree(mini_source, target, ignore=shutil.ignore_patterns("split_indices", "cifar-*", "SHA256SUMS"))
    return target


@pytest.fixture
def mini_manifest(mini_source, tmp_path, monkeypatch):
    """The published table, but with the CIFAR and split URLs on loopback and the mini source's checksums: the real
    ones cannot be reached from here (LUMA_SOURCE_MANIFEST is the project's own switch for mirrors)."""
    with serve(mini_source) as web:
        table = published()
        table["files"] = {
            relpath: {"url": f"{web}/{relpath}", "algorithm": "sha256", "checksum": sha256(mini_source / relpath)}
            for relpath in PUBLISHED_ELSEWHERE
        }
        table["cifar_extracted"]["md5"] = extracted_md5s(mini_source)
        path = tmp_path / "manifest.json"
        path.write_text(json.dumps(table))
        monkeypatch.setenv("LUMA_SOURCE_MANIFEST", str(path))
        yield table


@pytest.fixture
def hub(mini_source, mini_manifest, tmp_path, monkeypatch):
    with FakeHub(hub_part(mini_source, tmp_path / "repo")) as fake:
        fake.patch_huggingface_hub(monkeypatch)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
        yield fake


@pytest.fixture(scope="module")
def folder_build(mini_source, tmp_path_factory):
    return build(mini_source, tmp_path_factory.mktemp("folder"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extracted_md5s(mini_source: Path) -> dict[str, str]:
    md5s = {}
    for archive in CIFAR_ARCHIVES:
        with tarfile.open(mini_source / archive) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    md5s[member.name] = hashlib.md5(tar.extractfile(member).read()).hexdigest()
    return md5s


def edited_texts(tsv: Path) -> bytes:
    header, rows = tsv.read_bytes().split(b"\n", 1)
    return header + b"\n" + rows.replace(b" a ", b" one ")


def published_build(cache_dir, **parameters) -> Luma:
    builder = Luma(config_name="clean", cache_dir=str(cache_dir), **parameters)
    builder.download_and_prepare()
    return builder


def assert_same_records(builder, expected):
    for split in ("train", "test", "ood"):
        assert rows(builder, split) == rows(expected, split)


def test_a_build_from_the_hub_equals_a_build_from_the_folder_and_records_what_it_read(hub, folder_build, tmp_path):
    builder = published_build(tmp_path / "cache", token="hf_test_token")
    assert_same_records(builder, folder_build)
    recorded = builder.info.download_checksums
    prefix = f"hf://datasets/bezirganyan/LUMA@{hub.commit}/"
    assert recorded[prefix + "text_data.tsv"]["checksum"] == sha256(Path(hub_file_path(hub, "text_data.tsv")))
    resolves = [request for request in hub.requests if request.path.startswith("/datasets/")]
    assert resolves and all(request.authorized for request in resolves)  # the token reaches the Hub, not the CDN
    # the commit is part of the cache key: the prepared dataset lives under it
    assert builder.cache_dir != folder_build.cache_dir


def hub_file_path(hub, relpath):
    cache = huggingface_hub.constants.HF_HUB_CACHE
    found = huggingface_hub.try_to_load_from_cache(
        "bezirganyan/LUMA", relpath, revision=hub.commit, repo_type="dataset", cache_dir=cache
    )
    return found if isinstance(found, str) else None


def test_streaming_from_the_hub_retries_too_and_gives_the_same_records(hub, folder_build):
    hub.fail("audio/*", 503, times=3, methods=("GET",))
    hub.drop("text_data.tsv", after_bytes=500)
    stream = Luma(config_name="clean")
    assert streamed_rows(stream, "test") == rows(folder_build, "test")
    failed_clips = [r for r in hub.requests if r.file and r.file.startswith("audio/") and r.method == "GET"]
    assert len({r.file for r in failed_clips}) < len(failed_clips)  # some clip was asked for again


def test_503s_429s_and_a_dropped_connection_are_retried(hub, folder_build, tmp_path):
    hub.fail("text_data.tsv", 503, times=2, methods=("GET",))  # huggingface_hub retries no 5xx on GET: we do
    hub.fail("audio/datalist.csv", 429, times=1, retry_after=0)
    hub.drop("edm_images.pickle", after_bytes=1000)
    assert_same_records(published_build(tmp_path / "cache"), folder_build)
    assert len([r for r in hub.requests if r.file == "text_data.tsv" and r.method == "GET"]) >= 3
    assert len([r for r in hub.requests if r.file == "edm_images.pickle" and r.method == "GET"]) >= 2


def test_a_stalled_transfer_fails_in_bounded_time_naming_the_url(hub, tmp_path):
    hub.stall("text_data.tsv", bytes_per_second=5, times=None)
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"text_data\.tsv.*stalled"):
        published_build(tmp_path / "cache")
    assert time.monotonic() - started < 30
    assert hub_file_path(hub, "text_data.tsv") is None  # no cache entry


def test_a_missing_clip_is_a_clear_404(hub, mini_source, tmp_path):
    used = int(float((mini_source / "split_indices" / "audio_test.txt").read_text().split()[0]))
    datalist = (tmp_path / "repo" / "audio" / "datalist.csv").read_text().splitlines(keepends=True)
    datalist[used + 1] = "cv_audio/not_in_the_repo.wav," + datalist[used + 1].split(",", 1)[1]
    hub.set_file("audio/datalist.csv", "".join(datalist).encode())
    with pytest.raises(SourceError, match=r"audio/cv_audio/not_in_the_repo\.wav: file not found in the repo"):
        published_build(tmp_path / "cache")


def test_a_corrupt_download_is_removed_and_the_next_try_succeeds(hub, folder_build, tmp_path):
    hub.corrupt("text_data.tsv")
    with pytest.raises(SourceError, match=r"text_data\.tsv: content does not match the Hub's checksum"):
        published_build(tmp_path / "cache")
    assert hub_file_path(hub, "text_data.tsv") is None
    assert_same_records(published_build(tmp_path / "cache"), folder_build)


def test_luma_download_then_builds_run_offline(hub, folder_build, tmp_path, monkeypatch, capsys):
    threads = threading.active_count()
    main(["download"])
    assert "clips verified and cached" in capsys.readouterr().out
    assert threading.active_count() - threads < 10  # no thread is left behind per file (there are hundreds)
    served = len(hub.requests)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    offline = published_build(tmp_path / "cache")
    assert_same_records(offline, folder_build)
    assert len(hub.requests) == served  # nothing asked of the Hub


@pytest.mark.parametrize("quiet", [False, True])
def test_luma_download_shows_bars_with_total_rate_and_eta_unless_quiet(
    quiet, hub, mini_source, capsys, restored_verbosity
):
    main(["--quiet", "download"] if quiet else ["download"])
    captured = capsys.readouterr()
    clips = int(re.search(r"and (\d+) clips verified", captured.out)[1])
    if quiet:
        assert captured.err == ""
        return
    assert re.search(rf"clips: 100%\|.*\| {clips}/{clips} \[\d\d:\d\d<\d\d:\d\d, +[\d.]+ ?clips?/s\]", captured.err)
    for archive in CIFAR_ARCHIVES:  # a byte bar per URL download, its total the archive's size
        size = tqdm.format_sizeof((mini_source / archive).stat().st_size)
        total = re.escape(f"{size}/{size}")
        bar = rf"{re.escape(archive)}: 100%\|.*\| {total} \[\d\d:\d\d<\d\d:\d\d, +[\d.]+ ?[kMG]?B/s\]"
        assert re.search(bar, captured.err), captured.err


def test_a_url_download_shows_a_byte_bar_only_when_asked(mini_manifest, capsys):
    url = mini_manifest["files"]["cifar-10-python.tar.gz"]["url"]
    fetch_url(url)  # a library call or a build: no bar
    assert capsys.readouterr().err == ""
    with showing_url_progress(tqdm):
        fetch_url(url)
    assert "cifar-10-python.tar.gz: 100%" in capsys.readouterr().err


def test_offline_without_a_download_says_what_to_run(hub, tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(SourceError, match="run `luma download`"):
        Luma(config_name="clean", cache_dir=str(tmp_path))


def test_a_moved_branch_is_reported_never_mixed_in_and_the_old_commit_stays_buildable(hub, tmp_path, caplog):
    first = published_build(tmp_path / "cache")
    old_commit = hub.commit
    hub.set_file("text_data.tsv", edited_texts((tmp_path / "repo") / "text_data.tsv"))
    with caplog.at_level(logging.WARNING):
        moved = Luma(config_name="clean", cache_dir=str(tmp_path / "cache"))
    assert f"moved from {old_commit} to {hub.commit}" in caplog.text
    assert moved.cache_dir != first.cache_dir  # the new commit never reuses the old tables
    moved.download_and_prepare()
    assert rows(moved, "test") != rows(first, "test")
    pinned = published_build(tmp_path / "cache", hub_revision=old_commit)
    assert rows(pinned, "test") == rows(first, "test")


# --------------------------------------------------------------------------- the layouts users have


def test_a_clone_with_cifar_and_split_files_of_ones_own_builds_the_same(
    mini_source, mini_manifest, folder_build, tmp_path
):
    clone = hub_part(mini_source, tmp_path / "clone")
    cifar = tmp_path / "cifar"
    for archive in CIFAR_ARCHIVES:  # torchvision's extracted layout
        with tarfile.open(mini_source / archive) as tar:
            tar.extractall(cifar, filter="data")
    split_dir = Path(shutil.copytree(mini_source / "split_indices", tmp_path / "splits"))
    builder = build(clone, tmp_path / "cache", cifar_dir=str(cifar), split_dir=str(split_dir))
    assert_same_records(builder, folder_build)


def test_a_git_lfs_pointer_says_to_run_git_lfs_pull(source_copy, tmp_path):
    (source_copy / "edm_images.pickle").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 137000000\n"
    )
    (source_copy / "SHA256SUMS").unlink()
    with pytest.raises(SourceError, match=r"edm_images\.pickle is a Git LFS pointer.*git lfs pull"):
        build(source_copy, tmp_path / "cache")


def test_a_fixed_source_is_rebuilt_not_served_from_the_old_cache(source_copy, tmp_path):
    first = build(source_copy, tmp_path / "cache")
    (source_copy / "text_data.tsv").write_bytes(edited_texts(source_copy / "text_data.tsv"))
    (source_copy / "SHA256SUMS").unlink()
    fixed = build(source_copy, tmp_path / "cache")
    assert fixed.cache_dir != first.cache_dir
    assert rows(fixed, "test") != rows(first, "test")


def test_a_symlink_out_of_the_source_is_refused(source_copy, tmp_path):
    clip = first_test_clip(source_copy)
    outside = tmp_path / "outside.wav"
    shutil.copyfile(clip, outside)
    clip.unlink()
    clip.symlink_to(outside)
    (source_copy / "SHA256SUMS").unlink()
    with pytest.raises(SourceError, match=r"\.wav: a link to .*outside\.wav, which leaves the source folder"):
        build(source_copy, tmp_path / "cache")


def first_test_clip(root: Path) -> Path:
    audio_id = int(float((root / "split_indices" / "audio_test.txt").read_text().split()[0]))
    return root / "audio" / (root / "audio" / "datalist.csv").read_text().splitlines()[audio_id + 1].split(",")[0]
