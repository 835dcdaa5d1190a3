"""A local HTTP server in a thread for the download tests: it serves bytes by path, honours ``Range``
(which ``http.server.SimpleHTTPRequestHandler`` does not) and records what it was asked.

``serve(files)`` yields a `Server` at ``http://127.0.0.1:PORT``; ``server.url(path)`` names a file;
``server.requests`` holds ``(path, Range header or None)`` of every GET. Switches: ``ranges=False``
answers every request whole (a server that cannot resume), ``cut_after=N`` sends N bytes of a body
then closes the connection (a broken download), ``content_type`` sets the answer's type.
"""

from __future__ import annotations

import http.server
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Server:
    """The served files, the switches, and what the server was asked."""

    files: dict[str, bytes]
    base: str = ""
    ranges: bool = True
    cut_after: int | None = None
    content_type: str = "application/octet-stream"
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server_state: Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        state = self.server_state
        asked = self.headers.get("Range")
        state.requests.append((self.path, asked))
        body = state.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if asked and state.ranges:
            start = int(re.fullmatch(r"bytes=(\d+)-", asked)[1])  # type: ignore[index]
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        rest = body[start:]
        self.send_header("Content-Type", state.content_type)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        if state.cut_after is not None:
            rest = rest[: state.cut_after]
            self.close_connection = True
        self.wfile.write(rest)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@contextmanager
def serve(files: dict[str, bytes], **switches: object) -> Iterator[Server]:
    """Serve ``files`` (path → bytes) on 127.0.0.1 until the block ends."""
    state = Server(dict(files), **switches)  # type: ignore[arg-type]
    handler = type("Handler", (_Handler,), {"server_state": state})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url(path: str) -> str:
    """A URL on 127.0.0.1 where nothing listens (the connection is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
