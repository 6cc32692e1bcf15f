from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

OWN_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class CannedResponse:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


class ProviderServer:
    """A local stand-in for a provider API: records every request, answers from a queue."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._queue: list[CannedResponse] = []
        self.default = CannedResponse()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append(RecordedRequest(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                canned = server._queue.pop(0) if server._queue else server.default
                self.send_response(canned.status)
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(canned.body)))
                self.end_headers()
                self.wfile.write(canned.body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args) -> None:  # keep test output quiet
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def respond(self, status: int = 200, *, json_body=None, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> None:
        if json_body is not None:
            body = json.dumps(json_body).encode()
        self._queue.append(CannedResponse(status, body if body is not None else b"",
                                          headers if headers is not None else {"Content-Type": "application/json"}))

    @property
    def last(self) -> RecordedRequest:
        assert self.requests, "the provider server received no request"
        return self.requests[-1]


@pytest.fixture
def provider_server():
    server = ProviderServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def own_fixture():
    """Read one of OUR documentation-based fixtures from tests/fixtures/<provider>/."""

    def read(relative: str) -> bytes:
        return (OWN_FIXTURES / relative).read_bytes()

    return read
