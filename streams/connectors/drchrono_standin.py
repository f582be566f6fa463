"""A local HTTP stand-in for the DrChrono endpoints the connector writes to, as DrChrono documents them.

Only what reference/platform-data-models.md section 1 documents, in memory:

* ``/api/comm_logs`` (PhoneCallLog; required ``patient`` and ``doctor``), ``/api/patient_messages``
  (PatientMessage; required ``doctor``, ``patient``, ``subject``), ``/api/patient_payments``
  (CashPayment; required ``patient``; ``amount`` cannot be zero);
* ``POST`` → ``201`` with the created object (integer ``id``, ``created_at``, ``updated_at``); ``GET`` of a
  list with the ``patient`` and ``since`` filters and cursor pagination (``cursor``, ``page_size`` →
  ``{"previous", "results", "next"}``); ``GET /api/<resource>/<id>``; ``400`` for a missing required field,
  ``401`` without the bearer token, ``404`` for an unknown path or id;
* fault injection for tests: `DrChronoStandIn.fail_next` answers the next requests with a status (``429``,
  ``503`` ...) before doing anything.

It is a test double, not an emulator: no OAuth flow, no scopes, no rate limiting unless injected.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

REQUIRED: dict[str, tuple[str, ...]] = {
    "comm_logs": ("patient", "doctor"),
    "patient_messages": ("doctor", "patient", "subject"),
    "patient_payments": ("patient",),
}


class DrChronoStandIn:
    """The in-memory store and the HTTP server around it (``start``/``stop``, or `running`)."""

    def __init__(self, token: str = "test-token", port: int = 0) -> None:
        self.token = token
        self.objects: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in REQUIRED}
        self.requests: list[tuple[str, str]] = []
        """(method, path) of every request, in order: what tests count writes with."""
        self._faults: list[int] = []
        self._next_id = 1000
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_next(self, *statuses: int) -> None:
        """Answer the next ``len(statuses)`` requests with these statuses, in order."""
        with self._lock:
            self._faults.extend(statuses)

    def writes(self, resource: str) -> int:
        return sum(1 for method, path in self.requests if method == "POST" and path == f"/api/{resource}")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the API ------------------------------------------------------------------------------------

    def _create(self, resource: str, body: dict[str, Any]) -> tuple[int, Any]:
        missing = [name for name in REQUIRED[resource] if body.get(name) in (None, "")]
        if missing:
            return 400, {name: ["This field is required."] for name in missing}
        if resource == "patient_payments" and not body.get("amount"):
            return 400, {"amount": ["Amount cannot be zero."]}
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
        with self._lock:
            self._next_id += 1
            item = {**body, "id": self._next_id, "created_at": now, "updated_at": now}
            self.objects[resource][self._next_id] = item
        return 201, item

    def _list(self, resource: str, query: dict[str, str]) -> tuple[int, Any]:
        items = sorted(self.objects[resource].values(), key=lambda item: item["id"])
        if "patient" in query:
            items = [i for i in items if str(i.get("patient")) == query["patient"]]
        if "since" in query:
            items = [i for i in items if i["updated_at"][:10] >= query["since"][:10]]
        size = int(query.get("page_size") or 20)
        start = int(query.get("cursor") or 0)
        page = items[start : start + size]

        def link(cursor: int) -> str:
            return f"{self.base_url}/api/{resource}?{urlencode({**query, 'cursor': cursor})}"

        return 200, {
            "previous": link(max(start - size, 0)) if start else None,
            "results": page,
            "next": link(start + size) if start + size < len(items) else None,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: tests read `requests`

            def _answer(self, status: int, body: Any = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                url = urlsplit(self.path)
                standin.requests.append((method, url.path))
                with standin._lock:
                    fault = standin._faults.pop(0) if standin._faults else None
                if fault is not None:
                    self._answer(fault, {"detail": "injected"})
                    return
                if self.headers.get("Authorization") != f"Bearer {standin.token}":
                    self._answer(401, {"detail": "Authentication credentials were not provided."})
                    return
                parts = url.path.strip("/").split("/")
                if len(parts) < 2 or parts[0] != "api" or parts[1] not in REQUIRED:
                    self._answer(404, {"detail": "Not found."})
                    return
                resource = parts[1]
                if method == "POST" and len(parts) == 2:
                    length = int(self.headers.get("Content-Length") or 0)
                    try:
                        body = json.loads(self.rfile.read(length) or b"{}")
                    except ValueError:
                        self._answer(400, {"detail": "JSON parse error"})
                        return
                    self._answer(*standin._create(resource, body))
                elif method == "GET" and len(parts) == 2:
                    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                    self._answer(*standin._list(resource, query))
                elif method == "GET" and len(parts) == 3 and parts[2].isdigit():
                    item = standin.objects[resource].get(int(parts[2]))
                    self._answer(200, item) if item else self._answer(404, {"detail": "Not found."})
                else:
                    self._answer(405, {"detail": f'Method "{method}" not allowed.'})

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

        return Handler


@contextmanager
def running(token: str = "test-token", port: int = 0) -> Iterator[DrChronoStandIn]:
    """A started stand-in, stopped on exit."""
    standin = DrChronoStandIn(token, port)
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()
