"""Fuzzing the HTTP routes of a running worker: malformed requests get a clear 4xx, the worker lives on.

One worker (real broker, users file, webhook secrets) gets hypothesis-generated requests on every route
it serves (``/health``, ``/metrics``, ``/review``, ``/review/{action_id}``, ``/accounts/{account_id}``,
``/ui/review``, ``/ui/static/{name}``, ``/webhooks/{platform}``) and on paths it does not serve:
random methods, path segments, query strings, headers (bearer tokens valid or not, content types,
signatures) and bodies (random bytes, random JSON, oversized). Every answer must be below 500 (503 is
allowed only where a dependency answers "later": a publish the broker did not acknowledge), a 4xx from
the staff API or the webhooks must carry a JSON body naming the error, and after the run the worker is
still alive and healthy. Requests are bounded (`MAX_EXAMPLES` per test, loopback only).

Server-level limits are checked on the same worker: bodies over the limits are refused with 413
before they are read, and a client that trickles its body is cut off with 408.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.adapters import PLATFORMS
from streams.web.auth import token_sha256
from streams.web.views import BODY_TIMEOUT_S, MAX_BODY_BYTES
from streams.webhooks import DEFAULT_MAX_BYTES, secret_env_name
from tests.faults.harness import CrashableWorker

MAX_EXAMPLES = 120
TOKEN = "fuzz-manager-token"
WEBHOOK_SECRET = "fuzz-webhook-secret"
HTTP = settings(
    deadline=None,
    max_examples=MAX_EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrashableWorker]:
    workdir = tmp_path_factory.mktemp("http-fuzz")
    users = workdir / "users.json"
    users.write_text(
        json.dumps(
            {"users": [{"user_id": "u-fuzz", "role": "billing_manager", "token_sha256": token_sha256(TOKEN)}]}
        )
    )
    env = {"BILLWISE_USERS_FILE": str(users)}
    env.update({secret_env_name(platform): WEBHOOK_SECRET for platform in PLATFORMS})
    running = CrashableWorker(kafka_bootstrap, workdir, extra_env=env)
    running.create_topics()
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def client(worker: CrashableWorker) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{worker.web_port}", timeout=30.0) as http:
        yield http


segments = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/?#"), min_size=0, max_size=40
) | st.sampled_from(["..", "%2e%2e", "ACC-1", "act-0", "review.css", "x" * 300, "%00", "drchrono"])
paths = st.one_of(
    st.builds(lambda s: f"/review/{s}", segments),
    st.builds(lambda s: f"/accounts/{s}", segments),
    st.builds(lambda s: f"/ui/static/{s}", segments),
    st.builds(lambda s: f"/webhooks/{s}", segments | st.sampled_from(PLATFORMS)),
    st.sampled_from(["/health", "/metrics", "/review", "/ui/review", "/", "/table", "/router", "/stats/"]),
    st.builds(lambda a, b: f"/{a}/{b}", segments, segments),
)
queries = st.dictionaries(
    st.sampled_from(["limit", "kind", "state", "hub.challenge", "msg", "account", "x"]),
    st.text(max_size=20) | st.integers(-10, 10_000).map(str),
    max_size=3,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Authorization": st.sampled_from([f"Bearer {TOKEN}", "Bearer nope", "Basic abc", "Bearer", ""])
        | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
        "Content-Type": st.sampled_from(["application/json", "text/plain", "application/xml", "multipart/x"]),
        "X-drchrono-signature": st.sampled_from([WEBHOOK_SECRET, "wrong"]),
        "X-Billwise-Signature": st.text(alphabet="0123456789abcdef=sha", max_size=70),
    },
)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=500),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    ).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"decision": st.sampled_from(["approve", "reject", "edit", "nope"])},
        optional={"message": st.text(max_size=50), "note": st.text(max_size=50), "extra": st.integers()},
    ).map(lambda v: json.dumps(v).encode()),
)


def _check(response: httpx.Response, path: str) -> None:
    assert response.status_code < 500 or response.status_code == 503, (
        path,
        response.status_code,
        response.text[:300],
    )
    staff = path.startswith(("/review", "/accounts", "/webhooks"))
    has_body = response.request.method != "HEAD"  # HTTP: a response to HEAD never carries a body
    if staff and has_body and 400 <= response.status_code < 500 and response.status_code not in (404, 405):
        body = response.json()  # a JSON problem, not an HTML error page
        assert body, (path, response.status_code)


@HTTP
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    path=paths,
    query=queries,
    header=headers,
    body=bodies,
)
def test_fuzzed_requests_are_answered_below_500(
    client: httpx.Client, method: str, path: str, query: dict, header: dict, body: bytes | None
) -> None:
    try:
        request = client.build_request(method, path, params=query, headers=header, content=body)
        # h11 refuses some headers only when sending (a value of spaces, b' '): no client can send them.
        response = client.send(request)
    except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError, ValueError):
        return  # not a request a client can send
    _check(response, path)


def test_the_worker_is_still_healthy_after_the_fuzzing(worker: CrashableWorker, client: httpx.Client) -> None:
    assert worker.process is not None and worker.process.process.poll() is None
    assert client.get("/health").status_code == 200
    assert "unhandled error in" not in worker.logs()  # no handler fell through to the 500 net


def test_bodies_over_the_limits_are_refused_with_413(client: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    big = b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}"
    assert client.post("/review/act-1", content=big, headers=auth).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count while reading
        for _ in range(MAX_BODY_BYTES // 1024 + 8):
            yield b" " * 1024

    assert client.post("/review/act-1", content=chunks(), headers=auth).status_code == 413
    huge = b"[" + b" " * (DEFAULT_MAX_BYTES + 10) + b"]"
    response = client.post(
        "/webhooks/drchrono", content=huge, headers={"X-drchrono-signature": WEBHOOK_SECRET}
    )
    assert response.status_code == 413


def test_a_trickled_body_is_cut_off_with_408(worker: CrashableWorker) -> None:
    """Send the headers and a few bytes of a declared body, then nothing: the handler gives up."""
    with socket.create_connection(("127.0.0.1", worker.web_port), timeout=BODY_TIMEOUT_S + 15) as sock:
        head = (
            "POST /review/act-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"decision":')
        started = time.monotonic()
        answer = sock.recv(4096).decode(errors="replace")
        waited = time.monotonic() - started
    assert answer.startswith("HTTP/1.1 408"), answer[:200]
    assert waited < BODY_TIMEOUT_S + 10


def test_unknown_routes_are_404_and_faust_table_views_are_off(client: httpx.Client) -> None:
    for path in ("/table/accounts/", "/router/", "/nope"):
        assert client.get(path).status_code == 404, path


@pytest.mark.parametrize("path", ["/review", "/accounts/ACC-1"])
def test_every_staff_api_route_refuses_an_anonymous_caller(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.json()  # a JSON problem naming the error, not the data
