"""A model container implementing the SageMaker container contract, run as its own process.

    python -m tests.integration.container_server [--port N]

prints ``PORT <n>`` on stdout once it listens, then serves until terminated:

- ``GET /ping``: 200.
- ``POST /invocations``: a JSON body ``{"fail": STATUS, "message": TEXT}`` answers STATUS
  with TEXT as the body; ``{"sleep": SECONDS}`` waits first. Anything else answers 200 with
  JSON describing what arrived (the headers SageMaker forwards, the body as text), sets
  ``X-Amzn-SageMaker-Custom-Attributes`` to ``container-saw=<what arrived>``, and on
  ``X-Amzn-SageMaker-Session-Id: NEW_SESSION`` names the session ``ctr-<n>``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FORWARDED = (
    "Content-Type",
    "Accept",
    "X-Amzn-SageMaker-Custom-Attributes",
    "X-Amzn-SageMaker-Inference-Id",
    "X-Amzn-SageMaker-Target-Model",
    "X-Amzn-SageMaker-Session-Id",
    "X-Amzn-SageMaker-Enable-Explanations",
)

_sessions = itertools.count(1)


class ContainerHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/ping":
            self._answer(200, b"", "text/plain")
        else:
            self._answer(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/invocations":
            self._answer(404, b"not found", "text/plain")
            return
        command = _command(body)
        if "sleep" in command:
            time.sleep(float(command["sleep"]))
        if "fail" in command:
            self._answer(int(command["fail"]), str(command.get("message", "")).encode(), "text/plain")
            return
        received: dict[str, object] = {name: self.headers.get(name) for name in FORWARDED}
        received["Other-Headers"] = {name: value for name, value in self.headers.items() if name not in FORWARDED}
        extra = {"X-Amzn-SageMaker-Custom-Attributes": f"container-saw={received['X-Amzn-SageMaker-Custom-Attributes']}"}
        if self.headers.get("X-Amzn-SageMaker-Session-Id") == "NEW_SESSION":
            extra["X-Amzn-SageMaker-New-Session-Id"] = f"ctr-{next(_sessions)}; Expires=2099-01-01T00:00:00Z"
        document = {"received": received, "body": body.decode("utf-8", errors="replace")}
        self._answer(200, json.dumps(document).encode(), "application/json", extra)

    def _answer(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # the stdlib's name
        pass  # keep the test output clean


def _command(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), ContainerHandler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
