"""A loopback HTTP server for a source folder, with Hub-style paths and byte ranges (fsspec needs them)."""

import contextlib
import functools
import http.server
import os
import threading

HUB_PREFIX = "/datasets/bezirganyan/LUMA/resolve/main"


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def translate_path(self, path):
        path = path.split("?", 1)[0]
        if not path.startswith(HUB_PREFIX + "/"):
            return os.path.join(self.directory, "__outside_the_repo__")
        return super().translate_path(path[len(HUB_PREFIX) :])

    def send_head(self):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return None
        size = os.path.getsize(path)
        start, end = 0, size - 1
        ranged = self.headers.get("Range", "").startswith("bytes=")
        if ranged:
            first, _, last = self.headers["Range"][len("bytes=") :].partition("-")
            start = int(first) if first else max(size - int(last), 0)
            end = min(int(last), size - 1) if first and last else end
        file = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        file.seek(start)
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        self._remaining = end - start + 1
        return file

    def copyfile(self, source, outputfile):
        outputfile.write(source.read(self._remaining))


@contextlib.contextmanager
def serve(directory):
    """Serve `directory` on 127.0.0.1; yields the base URL that plays the Hub repo's root."""
    handler = functools.partial(_RangeHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{HUB_PREFIX}"
    finally:
        server.shutdown()
        server.server_close()
