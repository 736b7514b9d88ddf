"""Getting source files over the network without hanging, half-writing or trusting: bounded retries with backoff
(honouring Retry-After) on 429, 5xx and dropped connections, a stall guard, and verification before a file becomes
a cache entry.

Two transports, each its ecosystem's own: the LUMA Hub repo through huggingface_hub (revision, the user's token,
the shared HF cache), and any other URL (CIFAR, the split files, a mirror given as `data_dir`) through urllib into
LUMA's download cache.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import json
import logging
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from luma_builders.errors import SourceError

T = TypeVar("T")
logger = logging.getLogger(__name__)
TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)
_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. A transfer that moves fewer than `stall_min_bytes` in `stall_seconds` has stalled: it fails
    (naming the URL) rather than trickling on for hours; stalls are not retried, so one fails within that window."""

    attempts: int = 5
    base_wait: float = 1.0  # doubled after each failure, up to max_wait
    max_wait: float = 30.0
    max_retry_after: float = 300.0  # a server's Retry-After (rate limits) is honoured up to this
    timeout: float = 20.0  # connect and per-read timeout
    stall_seconds: float = 45.0
    stall_min_bytes: int = 16 * 1024


RETRY = RetryPolicy()


class TransientError(OSError):
    """A failure worth retrying; `retry_after` is the server's Retry-After in seconds, if it sent one."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def luma_home() -> Path:
    """LUMA's own cache root (mini sources, downloads of non-Hub files, features): $LUMA_HOME or ~/.cache/luma."""
    return Path(os.environ.get("LUMA_HOME", Path.home() / ".cache" / "luma"))


def with_retries(action: Callable[[], T], what: str, policy: RetryPolicy | None = None) -> T:
    """`action()`, retried on `TransientError` with exponential backoff; the last failure names `what`."""
    policy = policy or RETRY
    wait, attempt = policy.base_wait, 1
    while True:
        try:
            return action()
        except TransientError as err:
            if attempt == policy.attempts:
                raise SourceError(f"{what}: failed after {attempt} attempts ({err})") from err
            asked = err.retry_after
            time.sleep(min(asked, policy.max_retry_after) if asked is not None else wait)
            wait, attempt = min(wait * 2, policy.max_wait), attempt + 1


def _retry_after(headers) -> float | None:
    value = (headers or {}).get("Retry-After")
    return float(value) if value and value.strip().isdigit() else None


# --------------------------------------------------------------------------- plain URLs (urllib)


class StallGuard:
    """Counts bytes per window and raises once a window moves fewer than the policy's minimum."""

    def __init__(self, what: str, policy: RetryPolicy):
        self.what, self.policy = what, policy
        self.window_start, self.received = time.monotonic(), 0

    def add(self, count: int) -> None:
        self.received += count
        elapsed = time.monotonic() - self.window_start
        if elapsed >= self.policy.stall_seconds:
            if self.received < self.policy.stall_min_bytes:
                raise SourceError(
                    f"{self.what}: the transfer stalled ({self.received} bytes in {elapsed:.0f} s); "
                    "the server or the network is too slow, try again later"
                )
            self.window_start, self.received = time.monotonic(), 0


# A tqdm-like factory for a byte bar per URL download, set only by `luma download` (`showing_url_progress`):
# library calls and builds print no bar for these.
_url_progress: ContextVar[Callable | None] = ContextVar("url_progress", default=None)


@contextmanager
def showing_url_progress(progress_factory: Callable) -> Iterator[None]:
    """Within this block, URL downloads of this thread show a byte bar (total, rate, ETA) made by `progress_factory`."""
    token = _url_progress.set(progress_factory)
    try:
        yield
    finally:
        _url_progress.reset(token)


def _byte_bar(url: str, response, resumed_at: int):
    """A byte bar for `response`'s body if one was asked for (else None); its total is the Content-Length, if sent."""
    factory = _url_progress.get()
    if factory is None:
        return None
    length = response.headers.get("Content-Length", "")
    total = resumed_at + int(length) if length.isdigit() else None
    return factory(total=total, initial=resumed_at, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1])


def _append_body(url: str, response, into: bytearray, guard: StallGuard) -> None:
    """Append `response`'s body to `into`, under `guard` and with a byte bar if one was asked for."""
    bar = _byte_bar(url, response, len(into))
    try:
        while chunk := response.read1(1 << 16):
            into += chunk
            guard.add(len(chunk))
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()


def _get_once(url: str, into: bytearray, policy: RetryPolicy) -> None:
    """Append the rest of `url`'s body to `into` (a Range request resumes after what it holds)."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={len(into)}-"} if into else {})
    guard = StallGuard(url, policy)
    try:
        with urllib.request.urlopen(request, timeout=policy.timeout) as response:  # noqa: S310 - http(s) only
            if into and response.status != 206:
                into.clear()  # the server ignored the range: start over
            _append_body(url, response, into, guard)
    except urllib.error.HTTPError as err:
        if err.code in TRANSIENT_STATUS:
            raise TransientError(f"HTTP {err.code}", _retry_after(err.headers)) from err
        if err.code == 404:
            raise FileNotFoundError(f"{url}: not found (HTTP 404)") from err
        raise SourceError(f"{url}: HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        raise TransientError(f"cannot be reached ({err.reason})") from err
    except (http.client.IncompleteRead, ConnectionError, TimeoutError) as err:
        raise TransientError(f"connection dropped or timed out ({type(err).__name__}: {err})") from err


def fetch_url(url: str, policy: RetryPolicy | None = None) -> bytes:
    """The body of an http(s) URL, resuming after drops; FileNotFoundError on 404."""
    if not url.startswith(("http://", "https://")):
        raise SourceError(f"{url}: only http(s) URLs are read")
    body = bytearray()
    with_retries(lambda: _get_once(url, body, policy or RETRY), url, policy)
    return bytes(body)


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` is either absent or complete (temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def cached_url(url: str, verify: Callable[[bytes], None], offline: bool) -> bytes:
    """`url`'s body through LUMA's download cache: a cache entry exists only once `verify` accepted the bytes."""
    path = luma_home() / "downloads" / hashlib.sha256(url.encode()).hexdigest()[:24] / url.rsplit("/", 1)[-1]
    if path.is_file():
        data = path.read_bytes()
        verify(data)
        return data
    if offline:
        raise SourceError(
            f"{url}: not in the download cache ({path.parent}) and HF_HUB_OFFLINE is set: "
            "run `luma download` while online first"
        )
    data = fetch_url(url)
    verify(data)
    atomic_write(path, data)
    return data


# --------------------------------------------------------------------------- the Hub (huggingface_hub)


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def resolve_revision(repo_id: str, revision: str, token) -> str:
    """The commit `revision` (branch, tag or commit) of the dataset repo points at. Online resolutions are recorded
    in LUMA's cache, so an offline build (HF_HUB_OFFLINE=1, after `luma download`) reads the same commit, and a
    branch that moved is reported: a build reads one commit throughout, never a mix."""
    if _COMMIT.fullmatch(revision):
        return revision
    what = f"hf://datasets/{repo_id}@{revision}"
    known = _recorded_refs()
    if hub_offline():
        if f"{repo_id}@{revision}" not in known:
            raise SourceError(
                f"{what}: HF_HUB_OFFLINE is set and this revision was never resolved here; "
                "run `luma download` while online first (or pass hub_revision=<commit>)"
            )
        return known[f"{repo_id}@{revision}"]
    from huggingface_hub import HfApi

    def resolve() -> str:
        with _hub_errors(what):
            return HfApi().dataset_info(repo_id, revision=revision, token=token).sha

    commit = with_retries(resolve, what)
    previous = known.get(f"{repo_id}@{revision}")
    if previous != commit:
        if previous is not None:
            logger.warning(
                f"{what} moved from {previous} to {commit} since this machine last read it: this build reads "
                f"{commit} throughout; pass hub_revision={previous} to reproduce earlier builds"
            )
        atomic_write(_REFS(), json.dumps({**known, f"{repo_id}@{revision}": commit}, indent=1).encode())
    return commit


def _REFS() -> Path:  # noqa: N802 - a path constant that follows $LUMA_HOME
    return luma_home() / "hub_refs.json"


def _recorded_refs() -> dict[str, str]:
    return json.loads(_REFS().read_text()) if _REFS().is_file() else {}


@contextmanager
def _hub_errors(what: str):
    """Maps huggingface_hub's and httpx2's failures to TransientError (retried) or SourceError (final)."""
    import httpx2
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        yield
    except LocalEntryNotFoundError as err:
        raise SourceError(
            f"{what}: not in the HF cache, and the Hub cannot be reached or HF_HUB_OFFLINE is set: "
            "run `luma download` while online first"
        ) from err
    except EntryNotFoundError as err:
        raise SourceError(f"{what}: file not found in the repo (HTTP 404)") from err
    except (RepositoryNotFoundError, RevisionNotFoundError) as err:
        raise SourceError(f"{what}: {type(err).__name__}: no such repo or revision, or it needs a token") from err
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status in TRANSIENT_STATUS:
            raise TransientError(f"HTTP {status}", _retry_after(err.response.headers)) from err
        raise SourceError(f"{what}: HTTP {status} ({err})") from err
    except httpx2.TransportError as err:
        raise TransientError(f"{type(err).__name__}: {err}") from err


def _verified_blob(path: str, what: str) -> bytes:
    """The HF cache names each blob by its ETag: the sha256 of an LFS file, the git blob sha1 of any other (see
    `hf_hub_download`'s docs). A blob that does not match is removed, so a retry downloads it again."""
    blob = Path(path).resolve()
    name, data = blob.name, blob.read_bytes()
    if len(name) == 64:
        actual = hashlib.sha256(data).hexdigest()
    elif len(name) == 40:
        actual = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    else:
        return data  # no symlinks on this file system: huggingface_hub checked the size only
    if actual != name:
        for leftover in (blob, Path(path)):
            leftover.unlink(missing_ok=True)
        raise SourceError(f"{what}: content does not match the Hub's checksum {name} (got {actual}); removed it")
    return data


@functools.cache
def _silent_tqdm():
    """One disabled tqdm class for every Hub file (the progress bar for many files is ours). Made once, with no
    monitor thread: tqdm starts one per class, and a disabled bar never stops it."""
    from tqdm.auto import tqdm

    class Silent(tqdm):
        monitor_interval = 0

        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return Silent


def hub_file(repo_id: str, commit: str, relpath: str, token) -> bytes:
    """The verified bytes of a file of the dataset repo at `commit`, from the shared HF cache (downloaded if
    absent)."""
    from huggingface_hub import hf_hub_download

    what = f"hf://datasets/{repo_id}@{commit[:8]}/{relpath}"
    _install_stall_guard()

    def download() -> str:
        with _hub_errors(what):
            return hf_hub_download(
                repo_id, relpath, repo_type="dataset", revision=commit, token=token, tqdm_class=_silent_tqdm()
            )

    return _verified_blob(with_retries(download, what), what)


def _install_stall_guard() -> None:
    """Guard every Hub response body of huggingface_hub's shared client (public: `get_session`, event hooks):
    its own read timeout never fires on a server that trickles a byte at a time."""
    from huggingface_hub import get_session

    hooks = get_session().event_hooks
    if _guard_response not in hooks["response"]:
        hooks["response"] = [*hooks["response"], _guard_response]


def _guard_response(response) -> None:
    response.stream = _guarded_stream_class()(response.stream, str(response.request.url), RETRY)


@functools.cache
def _guarded_stream_class():
    import httpx2

    class GuardedStream(httpx2.SyncByteStream):
        def __init__(self, stream, what: str, policy: RetryPolicy):
            self.stream, self.guard = stream, StallGuard(what, policy)

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self.stream:
                self.guard.add(len(chunk))
                yield chunk

        def close(self) -> None:
            self.stream.close()

    return GuardedStream


def in_parallel(work: Callable[[T], object], items: Iterable[T], workers: int = 16, progress=None) -> None:
    """Run `work` on every item with a thread pool (network-bound); the first failure is raised."""
    items = list(items)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(work, items):
            if progress is not None:
                progress.update(1)
