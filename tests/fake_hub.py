"""A loopback fake of the Hugging Face Hub serving one dataset repo from a folder, as huggingface_hub 2.4 reads it.

Routes (those huggingface_hub 2.4 calls for `dataset_info` / `repo_info`, `list_repo_tree`, `get_paths_info`,
`hf_hub_download`):

- GET  /api/datasets/{repo}[/revision/{rev}]          repo info (`sha`, `siblings`; sizes and LFS with `?blobs=true`)
- GET  /api/datasets/{repo}/tree/{rev}[/{dir}]        tree listing, `recursive`, paginated with a `Link` header
- POST /api/datasets/{repo}/paths-info/{rev}          entries of the form field `paths`
- HEAD|GET /datasets/{repo}/resolve/{rev}/{path}      a plain file: 200 (`ETag` = git blob sha1); an LFS file: 302
                                                      to the CDN with `X-Linked-Etag` = sha256, `X-Linked-Size`
- HEAD|GET {cdn}/lfs/{sha256}/{path}                  LFS content on a second port, i.e. another origin: like the
                                                      real CDN, huggingface_hub neither follows it on HEAD nor
                                                      sends it the token

Every response about a repo carries `X-Repo-Commit`; 404s carry the Hub's `X-Error-Code` (RepoNotFound,
RevisionNotFound, EntryNotFound). No Xet header is ever sent, so huggingface_hub downloads over plain HTTP.
Files are read from the folder when served and hashed once, on first need.
"""

import dataclasses
import fnmatch
import hashlib
import http.server
import io
import json
import re
import threading
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

LFS_GLOBS = ("*.pickle", "*.tsv", "*.wav")
LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub stores files above 10 MB in LFS
TREE_PAGE_SIZE = 1000  # the Hub's page size for tree listings
_CHUNK = 64 * 1024
_DATE = "2024-01-01T00:00:00.000Z"


@dataclasses.dataclass(frozen=True)
class Request:
    """One request the fake received."""

    method: str
    path: str  # URL path, percent-decoded, without the query
    file: str | None  # repo path of the file a resolve or CDN request is about
    range: str | None  # the Range header
    authorized: bool  # a Bearer token was sent


@dataclasses.dataclass
class _Fault:
    kind: str  # "fail", "drop", "stall" or "corrupt"
    glob: str
    methods: tuple[str, ...]
    left: int | None  # None: every matching request
    status: int = 503
    retry_after: int | None = None
    after_bytes: int = 0
    bytes_per_second: float = 1.0


class _Blob:
    """A file's content, on disk or in memory, with its ids computed on first use."""

    def __init__(self, path: Path | None = None, data: bytes | None = None):
        self._path, self._data = path, data
        self._ids: tuple[str, str] | None = None

    @property
    def size(self) -> int:
        return len(self._data) if self._data is not None else self._path.stat().st_size

    def open(self):
        return io.BytesIO(self._data) if self._data is not None else self._path.open("rb")

    def ids(self) -> tuple[str, str]:
        """(git blob sha1, sha256) of the content."""
        if self._ids is None:
            git, sha256 = hashlib.sha1(b"blob %d\0" % self.size), hashlib.sha256()
            with self.open() as file:
                for chunk in iter(lambda: file.read(1 << 20), b""):
                    git.update(chunk)
                    sha256.update(chunk)
            self._ids = (git.hexdigest(), sha256.hexdigest())
        return self._ids


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) asked for by a Range header (the whole file without one); None if unsatisfiable."""
    if header is None:
        return 0, size
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first:
        start, end = int(first), min(int(last) + 1, size) if last else size
    else:
        start, end = max(size - int(last), 0), size
    return (start, end) if start < end else None


class FakeHub:
    """The dataset repo `repo_id` on 127.0.0.1, its `revision_name` branch holding `folder`'s files.

    Use as a context manager. `fail`, `drop`, `stall` and `corrupt` queue faults for the next matching requests:
    a fault's glob is matched (fnmatch, `*` crosses `/`) against the repo path for resolve and CDN requests, and
    against the URL path for API requests. Files are LFS when they match `lfs_globs` or weigh `lfs_threshold`
    bytes or more.
    """

    def __init__(
        self,
        folder: Path,
        *,
        repo_id: str = "bezirganyan/LUMA",
        revision_name: str = "main",
        lfs_globs: tuple[str, ...] = LFS_GLOBS,
        lfs_threshold: int = LFS_THRESHOLD,
        tree_page_size: int = TREE_PAGE_SIZE,
    ):
        self.repo_id, self.revision_name = repo_id, revision_name
        self._lfs_globs, self._lfs_threshold, self._page_size = lfs_globs, lfs_threshold, tree_page_size
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._faults: list[_Fault] = []
        self._base = {p.relative_to(folder).as_posix(): _Blob(path=p) for p in Path(folder).rglob("*") if p.is_file()}
        self._commits: dict[str, dict[str, _Blob]] = {}
        self._head: str | None = None  # hashing the folder waits for the first request
        self._lfs_blobs: dict[str, _Blob] = {}  # sha256 -> content, for the CDN
        self._servers: list[_Server] = []

    def __enter__(self) -> "FakeHub":
        self._servers = [_Server(self, serves_cdn=False), _Server(self, serves_cdn=True)]
        for server in self._servers:
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        for server in self._servers:
            server.stopping.set()  # ends stalled bodies
            server.shutdown()
            server.server_close()

    @property
    def endpoint(self) -> str:
        return self._servers[0].url

    @property
    def cdn(self) -> str:
        return self._servers[1].url

    @property
    def commit(self) -> str:
        """The commit `revision_name` points at."""
        with self._lock:
            return self._head_commit()

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def patch_huggingface_hub(self, monkeypatch) -> None:
        """Point huggingface_hub at this fake.

        huggingface_hub reads HF_ENDPOINT once, at import, into `constants.ENDPOINT` and the resolve-URL template;
        HfApi objects copy `constants.ENDPOINT` when created (the module-level `huggingface_hub.dataset_info` & co.
        are bound to one created at import, so they keep the real Hub). HF_HUB_OFFLINE would block loopback too.
        """
        from huggingface_hub import constants

        monkeypatch.setenv("HF_ENDPOINT", self.endpoint)
        monkeypatch.setattr(constants, "ENDPOINT", self.endpoint)
        monkeypatch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", self.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        )
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    def set_file(self, relpath: str, data: bytes) -> str:
        """Commit `data` at `relpath` on top of the head; `revision_name` moves there, older commits keep their
        content. Returns the new commit."""
        blob = _Blob(data=bytes(data))
        with self._lock:
            parent = self._head_commit()
            commit = hashlib.sha1(f"{parent}\n{relpath}\0{blob.ids()[0]}".encode()).hexdigest()
            self._commits[commit] = {**self._commits[parent], relpath: blob}
            self._head = commit
        return commit

    def fail(
        self,
        glob: str,
        status: int = 503,
        *,
        times: int | None = 1,
        retry_after: int | None = None,
        methods: tuple[str, ...] = ("GET", "HEAD"),
    ) -> None:
        """Answer the next `times` matching requests with `status` (and `Retry-After` if given)."""
        self._add(_Fault("fail", glob, methods, times, status=status, retry_after=retry_after))

    def drop(self, glob: str, after_bytes: int, *, times: int | None = 1) -> None:
        """Send the headers and `after_bytes` bytes of the body of the next matching GETs, then close the socket."""
        self._add(_Fault("drop", glob, ("GET",), times, after_bytes=after_bytes))

    def stall(self, glob: str, bytes_per_second: float, *, times: int | None = 1) -> None:
        """Trickle the body of the next matching GETs at `bytes_per_second`."""
        self._add(_Fault("stall", glob, ("GET",), times, bytes_per_second=bytes_per_second))

    def corrupt(self, glob: str, *, times: int | None = 1) -> None:
        """Send the next matching GETs' bodies with every byte inverted: same size, wrong content."""
        self._add(_Fault("corrupt", glob, ("GET",), times))

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, kinds: tuple[str, ...], subject: str, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                matches = fault.kind in kinds and method in fault.methods and fnmatch.fnmatch(subject, fault.glob)
                if matches and fault.left != 0:
                    fault.left = None if fault.left is None else fault.left - 1
                    return fault
        return None

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def _head_commit(self) -> str:
        if self._head is None:
            lines = "".join(f"{rel}\0{blob.ids()[0]}\n" for rel, blob in sorted(self._base.items()))
            self._head = hashlib.sha1(lines.encode()).hexdigest()
            self._commits[self._head] = self._base
        return self._head

    def _snapshot(self, revision: str) -> tuple[str, dict[str, _Blob]] | None:
        """(commit, files) of a branch name or full commit sha."""
        with self._lock:
            commit = self._head_commit() if revision == self.revision_name else revision
            files = self._commits.get(commit)
        return None if files is None else (commit, files)

    def _is_lfs(self, relpath: str, blob: _Blob) -> bool:
        return blob.size >= self._lfs_threshold or any(fnmatch.fnmatch(relpath, g) for g in self._lfs_globs)

    def _file_entry(self, relpath: str, blob: _Blob) -> dict:
        """The file's tree entry, as the Hub's tree and paths-info endpoints write it."""
        oid, sha256 = blob.ids()
        entry = {"type": "file", "oid": oid, "size": blob.size, "path": relpath}
        if self._is_lfs(relpath, blob):
            pointer = _lfs_pointer(sha256, blob.size)
            entry["oid"] = _git_oid(pointer)  # git holds the pointer, not the content
            entry["lfs"] = {"oid": sha256, "size": blob.size, "pointerSize": len(pointer)}
            with self._lock:
                self._lfs_blobs[sha256] = blob
        return entry

    def _dir_entry(self, files: dict[str, _Blob], path: str) -> dict:
        below = sorted((rel, blob) for rel, blob in files.items() if rel.startswith(path + "/"))
        lines = "".join(f"{rel}\0{blob.ids()[0]}\n" for rel, blob in below)
        return {"type": "directory", "oid": hashlib.sha1(lines.encode()).hexdigest(), "size": 0, "path": path}

    def _entry(self, files: dict[str, _Blob], path: str) -> dict | None:
        if path in files:
            return self._file_entry(path, files[path])
        if any(rel.startswith(path + "/") for rel in files):
            return self._dir_entry(files, path)
        return None

    def _tree(self, files: dict[str, _Blob], path: str, recursive: bool) -> list[dict] | None:
        """Entries below directory `path` ("" for the root), sorted by path; None if there is no such directory."""
        prefix = path + "/" if path else ""
        paths = set()
        for rel in files:
            if rel.startswith(prefix):
                parts = rel[len(prefix) :].split("/")
                depth = len(parts) if recursive else 1
                paths.update(prefix + "/".join(parts[:i]) for i in range(1, depth + 1))
        if path and not paths:
            return None
        return [self._entry(files, p) for p in sorted(paths)]

    def _info(self, commit: str, files: dict[str, _Blob], blobs: bool) -> dict:
        siblings = []
        for rel in sorted(files):
            sibling = {"rfilename": rel}
            if blobs:
                entry = self._file_entry(rel, files[rel])
                sibling.update(size=entry["size"], blobId=entry["oid"])
                if "lfs" in entry:
                    lfs = entry["lfs"]
                    sibling["lfs"] = {"sha256": lfs["oid"], "size": lfs["size"], "pointerSize": lfs["pointerSize"]}
            siblings.append(sibling)
        author = self.repo_id.split("/")[0]
        return {
            "_id": commit[:24],
            "id": self.repo_id,
            "author": author,
            "sha": commit,
            "siblings": siblings,
            "private": False,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "createdAt": _DATE,
            "lastModified": _DATE,
        }


class _Server(http.server.ThreadingHTTPServer):
    def __init__(self, hub: FakeHub, serves_cdn: bool):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hub, self.serves_cdn = hub, serves_cdn
        self.stopping = threading.Event()
        self.url = f"http://127.0.0.1:{self.server_port}"


def _route(segments: list[str], cdn: bool) -> tuple[str, str | None, str, str | None] | None:
    """(what, repo, revision or sha256, repo path) of a decoded URL path, or None."""
    match segments:
        case ["", "lfs", sha256, *rest] if cdn and rest:
            return "cdn", None, sha256, "/".join(rest)
        case _ if cdn:
            return None
        case ["", "api", "datasets", user, name]:
            return "info", f"{user}/{name}", "", None
        case ["", "api", "datasets", user, name, "revision", revision]:
            return "info", f"{user}/{name}", revision, None
        case ["", "api", "datasets", user, name, "tree", revision, *rest]:
            return "tree", f"{user}/{name}", revision, "/".join(rest)
        case ["", "api", "datasets", user, name, "paths-info", revision]:
            return "paths-info", f"{user}/{name}", revision, None
        case ["", "datasets", user, name, "resolve", revision, *rest] if rest:
            return "resolve", f"{user}/{name}", revision, "/".join(rest)
    return None


_METHODS = {
    "info": ("GET",),
    "tree": ("GET",),
    "paths-info": ("POST",),
    "resolve": ("GET", "HEAD"),
    "cdn": ("GET", "HEAD"),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlsplit(self.path)
        route = _route([unquote(s) for s in url.path.split("/")], self.server.serves_cdn)
        file = route[3] if route and route[0] in ("resolve", "cdn") else None
        authorized = self.headers.get("Authorization", "").startswith("Bearer ")
        hub = self.server.hub
        hub._record(Request(self.command, unquote(url.path), file, self.headers.get("Range"), authorized))
        fault = hub._take_fault(("fail",), file or unquote(url.path), self.command)
        if fault is not None:
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            return self._send_error(fault.status, None, f"Injected {fault.status}", headers)
        if route is None or self.command not in _METHODS[route[0]]:
            return self._send_error(404, None, "Not found")
        what, repo, revision, path = route
        if what == "cdn":
            return self._serve_cdn(revision, path)
        if repo != hub.repo_id:
            return self._send_error(404, "RepoNotFound", "Repository not found")
        snapshot = hub._snapshot(revision or hub.revision_name)
        if snapshot is None:
            return self._send_error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        serve = {"info": self._serve_info, "tree": self._serve_tree, "paths-info": self._serve_paths_info}
        serve.get(what, self._serve_resolve)(*snapshot, path, parse_qs(url.query))

    do_HEAD = do_POST = do_GET

    def _serve_info(self, commit, files, path, query):
        self._send_json(self.server.hub._info(commit, files, query.get("blobs", [""])[0].lower() == "true"), commit)

    def _serve_tree(self, commit, files, path, query):
        params = {key: values[0] for key, values in query.items()}
        entries = self.server.hub._tree(files, path, params.get("recursive", "").lower() == "true")
        if entries is None:
            return self._send_error(404, "EntryNotFound", f"{path} does not exist on {commit}", commit=commit)
        start, size = int(params.pop("cursor", 0)), self.server.hub._page_size
        headers = {}
        if start + size < len(entries):
            next_url = f"{self.server.url}{urlsplit(self.path).path}?{urlencode({**params, 'cursor': start + size})}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        self._send_json(entries[start : start + size], commit, headers)

    def _serve_paths_info(self, commit, files, path, query):
        form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
        entries = [self.server.hub._entry(files, p.strip("/")) for p in form.get("paths", [])]
        self._send_json([e for e in entries if e is not None], commit)

    def _serve_resolve(self, commit, files, path, query):
        hub = self.server.hub
        blob = files.get(path)
        if blob is None:
            return self._send_error(404, "EntryNotFound", f"{path} does not exist on {commit}", commit=commit)
        entry = hub._file_entry(path, blob)
        headers = {"X-Repo-Commit": commit, "ETag": f'"{entry["oid"]}"'}
        if "lfs" not in entry:
            return self._send_file(blob, path, headers)
        sha256 = entry["lfs"]["oid"]
        headers.update({"X-Linked-Etag": f'"{sha256}"', "X-Linked-Size": str(blob.size), "Content-Length": "0"})
        headers["Location"] = f"{hub.cdn}/lfs/{sha256}/{quote(path)}"
        self._start(302, headers)

    def _serve_cdn(self, sha256, path):
        with self.server.hub._lock:
            blob = self.server.hub._lfs_blobs.get(sha256)
        if blob is None:
            return self._send_error(404, None, "No such object")
        name = quote(path.rsplit("/", 1)[-1])
        disposition = f"attachment; filename*=UTF-8''{name}; filename=\"{name}\";"
        self._send_file(blob, path, {"ETag": f'"{sha256}"', "Content-Disposition": disposition})

    def _send_file(self, blob: _Blob, path: str, headers: dict) -> None:
        span = _byte_range(self.headers.get("Range"), blob.size)
        if span is None:
            return self._send_error(416, None, "Range not satisfiable", {"Content-Range": f"bytes */{blob.size}"})
        start, end = span
        headers.update({"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"})
        headers["Content-Length"] = str(end - start)
        if "Range" in self.headers:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
        self._start(206 if "Range" in self.headers else 200, headers)
        if self.command == "GET":
            self._write_body(blob, start, end, self.server.hub._take_fault(("drop", "stall", "corrupt"), path, "GET"))

    def _write_body(self, blob: _Blob, start: int, end: int, fault: _Fault | None) -> None:
        kind = fault.kind if fault else None
        if kind == "drop":
            end = min(end, start + fault.after_bytes)
            self.close_connection = True
        step = max(1, int(fault.bytes_per_second / 10)) if kind == "stall" else _CHUNK
        with blob.open() as file:
            file.seek(start)
            for offset in range(start, end, step):
                chunk = file.read(min(step, end - offset))
                if kind == "stall" and self.server.stopping.wait(len(chunk) / fault.bytes_per_second):
                    self.close_connection = True
                    return
                try:
                    self.wfile.write(bytes(255 - b for b in chunk) if kind == "corrupt" else chunk)
                except OSError:  # the client gave up
                    self.close_connection = True
                    return

    def _send_json(self, data, commit: str, headers: dict | None = None) -> None:
        body = json.dumps(data).encode()
        headers = {**(headers or {}), "X-Repo-Commit": commit, "Content-Type": "application/json"}
        self._start(200, {**headers, "Content-Length": str(len(body))}, body)

    def _send_error(self, status, code, message, headers=None, commit=None) -> None:
        body = json.dumps({"error": message}).encode()
        headers = {**(headers or {}), "Content-Type": "application/json", "Content-Length": str(len(body))}
        headers["X-Error-Message"] = message
        if code is not None:
            headers["X-Error-Code"] = code
        if commit is not None:
            headers["X-Repo-Commit"] = commit
        self._start(status, headers, body)

    def _start(self, status: int, headers: dict, body: bytes = b"") -> None:
        if self.command == "POST" and status >= 400:
            self.close_connection = True  # the request body may be unread
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
