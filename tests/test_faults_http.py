"""Issue 12 item 5: bounded work before authentication, on a real server started as `make run` starts it.
Request heads (request line + headers) are bounded: 431 with an OperationOutcome, the connection closed
after at most the limit plus one read; a legitimate call still gets through while others send 8 MB headers."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cds_service.transport.http_limits import DEFAULT_MAX_HEADER_BYTES
from tests.builders import hook_request, patient
from tests.conftest import CORE_HOOKS
from tests.faults import run_concurrently
from tests.servers import ServerProcess, running_server

PROBE = "/cds-services/prefetch-probe"
EIGHT_MB = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    database = tmp_path_factory.mktemp("http-limits") / "cds.sqlite3"
    env = {"CDS_HOOKS_DIR": str(CORE_HOOKS), "CDS_DATABASE_URL": f"sqlite:///{database}", "CDS_SANDBOX": "true"}
    with running_server(env) as running:
        yield running


def _raw_exchange(server: ServerProcess, head: bytes, padding: int = 0) -> tuple[bytes, int]:
    """Send `head` (and `padding` more header bytes) on a raw socket; return what came back and how much of the
    padding could be sent before the server closed the connection."""
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        try:
            sock.sendall(head)
            chunk = b"x" * 65536
            while sent < padding:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while data := sock.recv(65536):
                answer += data
    return answer, sent


def _probe_body() -> bytes:
    return json.dumps(hook_request(prefetch={"patient": patient(), "labs": None, "encounter": None})).encode()


def test_an_8_mb_authorization_header_is_refused_with_431_without_being_read(server: ServerProcess) -> None:
    head = (
        f"POST {PROBE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer ".encode()
    )
    answer, sent = _raw_exchange(server, head, padding=EIGHT_MB)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 431 Request Header Fields Too Large"
    body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "too-costly"
    assert sent < EIGHT_MB  # the server hung up long before the header ended


def test_a_huge_request_line_is_refused_with_431(server: ServerProcess) -> None:
    path = "/cds-services?" + "a" * (DEFAULT_MAX_HEADER_BYTES * 3)
    answer, _ = _raw_exchange(server, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_a_large_but_plausible_header_is_served(server: ServerProcess) -> None:
    token = "e" * 12_000  # a big JWT with many claims
    response = httpx.post(
        f"{server.url}{PROBE}",
        content=_probe_body(),
        headers={"Content-Type": "application/json", "X-Large": token},
        timeout=10,
    )
    assert response.status_code == 200


def test_keep_alive_requests_are_counted_one_head_at_a_time(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        headers = {"X-Filler": "f" * (DEFAULT_MAX_HEADER_BYTES // 2)}
        statuses = [client.get("/cds-services", headers=headers).status_code for _ in range(5)]
    assert statuses == [200] * 5  # five heads of half the limit on one connection: each within the limit


def test_a_legitimate_call_gets_through_sixteen_8_mb_headers(server: ServerProcess, tmp_path: Path) -> None:
    head = b"GET /cds-services HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "

    def task(index: int) -> int:
        if index == 16:  # the legitimate call, sent while the sixteen others are being refused
            return httpx.post(
                f"{server.url}{PROBE}", content=_probe_body(), headers={"Content-Type": "application/json"}, timeout=20
            ).status_code
        answer, _ = _raw_exchange(server, head, padding=EIGHT_MB)
        return int(answer.split(b" ", 2)[1]) if answer else 0

    results = run_concurrently(task, 17, workers=17)
    assert results[16] == 200
    assert all(result in (431, 0) for result in results[:16])  # 0: reset before the 431 could be read
    assert 431 in results[:16]
