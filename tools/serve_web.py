"""Serve the static page (web/dist, `make web`) on localhost, cross-origin isolated, as the static Space serves it.

    python -m tools.serve_web [--port 8000] [--dir web/dist]        # make web-serve (PORT=...)

Every response carries ISOLATION_HEADERS, the same table tools/deploy_space.py writes into the static Space's
README (`custom_headers`): with COOP same-origin and COEP require-corp the page is `crossOriginIsolated`, so
SharedArrayBuffer exists and onnxruntime-web runs its WASM on several threads (one otherwise); CORP lets the
page's own files load under require-corp. Compressible files (the WASM binary, scripts, JSON) go out gzipped
when the browser accepts it, compressed once when first asked for, as a CDN serves them.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import http.server
import io
import os
import sys
import threading
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WEB_DIST = REPO_ROOT / "web" / "dist"

# Header -> value on every response of the page's origin (lower case, as the Space's front matter spells them).
ISOLATION_HEADERS = {
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "cross-origin-resource-policy": "cross-origin",
}
GZIPPED_TYPES = ("application/wasm", "text/javascript", "application/json", "text/html", "text/css")


def gzipped(data: bytes) -> bytes:
    """A body as this server sends it to a browser that accepts gzip."""
    return gzip.compress(data, compresslevel=6, mtime=0)


class IsolatedHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the isolation headers, gzipped where that pays; quiet unless `verbose`."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".js": "text/javascript", ".wasm": "application/wasm", ".onnx": "application/octet-stream",
                      ".json": "application/json"}
    verbose = False
    _gzipped: dict[tuple[str, float], bytes] = {}  # (path, mtime) -> gzip body, shared by the server's threads

    def end_headers(self):
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        self.send_header("cache-control", "no-cache")
        super().end_headers()

    def send_head(self):
        path = self.translate_path(self.path)
        kind = self.guess_type(path)
        if not (os.path.isfile(path) and kind in GZIPPED_TYPES and "gzip" in self.headers.get("accept-encoding", "")):
            return super().send_head()
        key = (path, os.path.getmtime(path))
        body = self._gzipped.get(key)
        if body is None:
            body = self._gzipped[key] = gzipped(Path(path).read_bytes())
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-encoding", "gzip")
        self.send_header("content-length", str(len(body)))
        self.send_header("vary", "accept-encoding")
        self.end_headers()
        return io.BytesIO(body)

    def log_message(self, *args):
        if self.verbose:
            super().log_message(*args)


class Server(http.server.ThreadingHTTPServer):
    """Quiet about a browser dropping a connection (a page closed or reloaded mid-download)."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def make_server(directory: Path = WEB_DIST, port: int = 0, host: str = "127.0.0.1", verbose: bool = False) -> Server:
    """A threading server of `directory` with IsolatedHandler (port 0: any free one; see server_address)."""
    handler = type("Handler", (IsolatedHandler,), {"verbose": verbose})
    return Server((host, port), functools.partial(handler, directory=str(directory)))


@contextlib.contextmanager
def serving(directory: Path = WEB_DIST):
    """make_server's server of `directory` on a free loopback port, on a thread of its own, while the block runs;
    yields the page's address."""
    server = make_server(directory)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--dir", default=str(WEB_DIST), help="the built page (make web)")
    args = p.parse_args(argv)
    if not (Path(args.dir) / "index.html").is_file():
        print(f"error: no built page in {args.dir}: run `make web` first", file=sys.stderr)
        return 2
    server = make_server(Path(args.dir), args.port, args.host, verbose=True)
    print(f"serving {args.dir} on http://{args.host}:{server.server_address[1]}/ (cross-origin isolated)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
