"""The fake Hub, read through huggingface_hub itself; also pins down how huggingface_hub 2.4 reacts to faults."""

import hashlib
import http.client
import shutil
import threading
import time
from pathlib import Path

import httpx2
import pytest
from fake_hub import FakeHub
from huggingface_hub import HfApi, constants, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile

REPO = "bezirganyan/LUMA"
FILES = {
    "README.md": b"# LUMA\n",
    "text_data.tsv": b"text\tlabel\nhello there\tdog\n",
    "audio/datalist.csv": b"path,label,tts_label\ncv_audio/a.wav,dog,dog\n",
    "audio/cv_audio/a.wav": bytes(range(256)) * 20,
    "edm_images.pickle": bytes(range(256))[::-1] * 8,
    "split_indices/big.txt": b"7\n" * 3000,  # LFS by size only, with lfs_threshold=5000 below
}


@pytest.fixture
def repo(tmp_path) -> Path:
    for relpath, data in FILES.items():
        (tmp_path / "repo" / relpath).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "repo" / relpath).write_bytes(data)
    return tmp_path / "repo"


@pytest.fixture
def hub(repo, monkeypatch):
    with FakeHub(repo, lfs_threshold=5000) as hub:
        hub.patch_huggingface_hub(monkeypatch)
        yield hub


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "hf-cache"


def download(filename: str, cache: Path, revision: str = "main") -> Path:
    path = hf_hub_download(REPO, filename, repo_type="dataset", revision=revision, token="secret", cache_dir=cache)
    return Path(path)


def file_requests(hub: FakeHub, relpath: str) -> list[tuple[str, str | None]]:
    return [(r.method, r.range) for r in hub.requests if r.file == relpath]


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_main_resolves_to_a_commit_derived_from_the_content(hub, repo, tmp_path):
    api = HfApi()
    assert api.dataset_info(REPO, revision="main", token="secret").sha == hub.commit
    assert api.repo_info(REPO, repo_type="dataset", token=False).sha == hub.commit
    assert len(hub.commit) == 40 and int(hub.commit, 16) >= 0
    with FakeHub(shutil.copytree(repo, tmp_path / "same")) as same:
        assert same.commit == hub.commit
    (tmp_path / "same" / "README.md").write_bytes(b"# changed\n")
    with FakeHub(tmp_path / "same") as changed:
        assert changed.commit != hub.commit
    with pytest.raises(RevisionNotFoundError):
        api.dataset_info(REPO, revision="v9", token=False)
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info("someone/else", token=False)
    info = [r for r in hub.requests if r.path.startswith("/api/datasets/")]
    assert [r.authorized for r in info[:2]] == [True, False]


def test_tree_and_paths_info_give_sizes_and_lfs_sha256(repo, monkeypatch):
    for i in range(1200):  # a mini source's worth of files: two pages of tree listing
        (repo / "audio" / "cv_audio" / f"c{i:04d}.wav").write_bytes(b"RIFF%d" % i)
    contents = {p.relative_to(repo).as_posix(): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    with FakeHub(repo, lfs_threshold=5000) as hub:
        hub.patch_huggingface_hub(monkeypatch)
        api = HfApi()
        tree = list(api.list_repo_tree(REPO, repo_type="dataset", recursive=True, token=False))
        paths_info = api.get_paths_info(REPO, ["audio", "text_data.tsv", "nope"], repo_type="dataset", token=False)
        siblings = api.dataset_info(REPO, files_metadata=True, token=False).siblings
    files = {entry.path: entry for entry in tree if isinstance(entry, RepoFile)}
    assert {e.path for e in tree} - set(files) == {"audio", "audio/cv_audio", "split_indices"}
    assert set(files) == set(contents) == {s.rfilename for s in siblings}
    assert sum(r.path.endswith("/tree/main") for r in hub.requests) == 2
    lfs = {path for path, entry in files.items() if entry.lfs is not None}
    assert lfs == {p for p in contents if p.endswith((".wav", ".tsv", ".pickle"))} | {"split_indices/big.txt"}
    for path, entry in files.items():
        assert entry.size == len(contents[path])
        if entry.lfs is None:
            assert entry.blob_id == git_oid(contents[path])
        else:
            assert entry.lfs.sha256 == hashlib.sha256(contents[path]).hexdigest()
    assert [e.path for e in paths_info] == ["audio", "text_data.tsv"]
    assert paths_info[1].lfs.sha256 == files["text_data.tsv"].lfs.sha256
    assert {s.rfilename: s.lfs.sha256 for s in siblings if s.lfs} == {p: files[p].lfs.sha256 for p in lfs}


def test_resolve_headers_ranges_and_the_cdn(hub):
    host = hub.endpoint.removeprefix("http://")
    conn = http.client.HTTPConnection(host)
    conn.request("HEAD", f"/datasets/{REPO}/resolve/main/README.md")
    plain = conn.getresponse()
    plain.read()
    assert plain.status == 200 and plain.getheader("X-Repo-Commit") == hub.commit
    assert plain.getheader("ETag") == f'"{git_oid(FILES["README.md"])}"'
    assert plain.getheader("Content-Length") == str(len(FILES["README.md"]))
    conn.request("GET", f"/datasets/{REPO}/resolve/{hub.commit}/edm_images.pickle")
    lfs = conn.getresponse()
    lfs.read()
    sha256 = hashlib.sha256(FILES["edm_images.pickle"]).hexdigest()
    assert lfs.status == 302 and lfs.getheader("X-Linked-Etag") == f'"{sha256}"'
    assert lfs.getheader("X-Linked-Size") == str(len(FILES["edm_images.pickle"]))
    assert lfs.getheader("Location").startswith(f"{hub.cdn}/lfs/{sha256}/")
    assert not any(name.lower().startswith("x-xet") for name in lfs.headers)
    cdn = http.client.HTTPConnection(hub.cdn.removeprefix("http://"))
    cdn.request("GET", lfs.getheader("Location").removeprefix(hub.cdn), headers={"Range": "bytes=10-19"})
    part = cdn.getresponse()
    assert (part.status, part.read()) == (206, FILES["edm_images.pickle"][10:20])
    assert part.getheader("Content-Range") == f"bytes 10-19/{len(FILES['edm_images.pickle'])}"
    cdn.request("GET", lfs.getheader("Location").removeprefix(hub.cdn), headers={"Range": "bytes=99999-"})
    assert cdn.getresponse().status == 416


def test_download_then_offline_from_the_cache(hub, cache, monkeypatch):
    for relpath in ("README.md", "text_data.tsv", "audio/cv_audio/a.wav"):
        assert download(relpath, cache).read_bytes() == FILES[relpath]
    assert file_requests(hub, "text_data.tsv") == [("HEAD", None), ("GET", None)]
    lfs_get = next(r for r in hub.requests if r.file == "text_data.tsv" and r.method == "GET")
    assert lfs_get.path.startswith("/lfs/") and not lfs_get.authorized  # the token stays on the Hub
    assert all(r.authorized for r in hub.requests if r.file and not r.path.startswith("/lfs/"))
    seen = len(hub.requests)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    for revision in (hub.commit, "main"):
        assert download("text_data.tsv", cache, revision).read_bytes() == FILES["text_data.tsv"]
    assert len(hub.requests) == seen


def test_a_missing_file_raises_entry_not_found(hub, cache):
    with pytest.raises(EntryNotFoundError):
        download("audio/missing.wav", cache)
    assert (cache / "datasets--bezirganyan--LUMA" / ".no_exist" / hub.commit / "audio" / "missing.wav").exists()


def test_a_503_on_head_is_retried(hub, cache):
    hub.fail("README.md", 503, times=2, methods=("HEAD",))
    assert download("README.md", cache).read_bytes() == FILES["README.md"]
    assert file_requests(hub, "README.md") == [("HEAD", None)] * 3 + [("GET", None)]


@pytest.mark.parametrize("relpath", ["README.md", "text_data.tsv"])
def test_a_503_on_get_is_not_retried_and_leaves_no_partial_file(hub, cache, relpath):
    hub.fail(relpath, 503, methods=("GET",))
    with pytest.raises(HfHubHTTPError) as error:
        download(relpath, cache)
    assert error.value.response.status_code == 503
    assert file_requests(hub, relpath) == [("HEAD", None), ("GET", None)]
    storage = cache / "datasets--bezirganyan--LUMA"
    assert list((storage / "blobs").iterdir()) == []
    assert list((storage / "snapshots" / hub.commit).iterdir()) == []
    assert (storage / "refs" / "main").read_text() == hub.commit


def test_a_429_on_get_waits_retry_after_plus_one_second(hub, cache):
    hub.fail("edm_images.pickle", 429, retry_after=1, methods=("GET",))
    start = time.monotonic()
    assert download("edm_images.pickle", cache).read_bytes() == FILES["edm_images.pickle"]
    assert time.monotonic() - start >= 2
    assert file_requests(hub, "edm_images.pickle") == [("HEAD", None), ("GET", None), ("GET", None)]


@pytest.mark.parametrize(("chunk_size", "resumed_range"), [(1024, "bytes=4096-"), (None, None)])
def test_a_drop_mid_body_resumes_from_the_last_whole_chunk(hub, cache, monkeypatch, chunk_size, resumed_range):
    # http_get counts only the chunks iter_bytes(DOWNLOAD_CHUNK_SIZE = 10 MiB) has yielded: a shorter tail is refetched.
    if chunk_size:
        monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", chunk_size)
    hub.drop("audio/cv_audio/a.wav", after_bytes=5000)
    assert download("audio/cv_audio/a.wav", cache).read_bytes() == FILES["audio/cv_audio/a.wav"]
    assert file_requests(hub, "audio/cv_audio/a.wav") == [("HEAD", None), ("GET", None), ("GET", resumed_range)]


def test_the_download_timeout_fires_on_silence_not_on_a_trickle(hub, cache, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
    hub.stall("README.md", bytes_per_second=4)  # 7 bytes, 0.25 s apart: slower in all than the timeout
    start = time.monotonic()
    assert download("README.md", cache).read_bytes() == FILES["README.md"]
    assert time.monotonic() - start > 1.5
    assert file_requests(hub, "README.md") == [("HEAD", None), ("GET", None)]
    hub.stall("text_data.tsv", bytes_per_second=0.5)  # 2 s of silence before the first byte
    assert download("text_data.tsv", cache).read_bytes() == FILES["text_data.tsv"]
    assert file_requests(hub, "text_data.tsv") == [("HEAD", None), ("GET", None), ("GET", None)]


def test_a_download_writes_to_an_incomplete_file_beside_its_blob(hub, cache):
    hub.stall("README.md", bytes_per_second=8)
    sha1 = git_oid(FILES["README.md"])
    worker = threading.Thread(target=download, args=("README.md", cache))
    worker.start()
    blobs = cache / "datasets--bezirganyan--LUMA" / "blobs"
    incomplete = []
    while worker.is_alive() and not incomplete:
        incomplete = [p.name for p in blobs.glob("*.incomplete")] if blobs.is_dir() else []
        time.sleep(0.02)
    worker.join()
    assert len(incomplete) == 1 and incomplete[0].startswith(sha1 + ".")
    assert sorted(p.name for p in blobs.iterdir()) == [sha1]


def test_an_lfs_body_is_cached_without_checking_its_sha256(hub, cache):
    hub.corrupt("edm_images.pickle")
    path = download("edm_images.pickle", cache)
    sha256 = hashlib.sha256(FILES["edm_images.pickle"]).hexdigest()
    assert path.resolve().name == sha256
    assert hashlib.sha256(path.read_bytes()).hexdigest() != sha256
    assert len(path.read_bytes()) == len(FILES["edm_images.pickle"])


def test_set_file_moves_main_and_keeps_the_old_commit(hub, cache):
    old = hub.commit
    new = hub.set_file("text_data.tsv", b"text\tlabel\nchanged\tcat\n")
    assert hub.commit == new != old
    assert HfApi().dataset_info(REPO, token=False).sha == new
    assert download("text_data.tsv", cache).read_bytes() == b"text\tlabel\nchanged\tcat\n"
    assert download("text_data.tsv", cache, revision=old).read_bytes() == FILES["text_data.tsv"]
    assert download("README.md", cache, revision=new).read_bytes() == FILES["README.md"]
    with pytest.raises(httpx2.HTTPStatusError):
        httpx2.get(f"{hub.endpoint}/datasets/{REPO}/resolve/{'0' * 40}/README.md").raise_for_status()
