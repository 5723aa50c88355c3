"""A real HTTP server on loopback for alert webhooks, its answers set by the test."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer


class Receiver:
    """A real HTTP server on loopback whose answer to each POST the test sets: a status code,
    or None to hold the request past the client's timeout."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, str]] = []  # (payload, Idempotency-Key header)
        self.arrived: list[float] = []  # time.time() of each
        self.answers: Callable[[int], int | None] = lambda n: 204
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.received.append((payload, self.headers["Idempotency-Key"]))
                receiver.arrived.append(time.time())
                status = receiver.answers(len(receiver.received))
                if status is None:  # never answers within the client's timeout
                    receiver.release.wait(10)
                    return
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def payloads(self) -> list[dict]:
        return [payload for payload, _ in self.received]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
