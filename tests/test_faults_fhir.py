"""Issue 12 items 3 and 6, fault injection against a real service and a misbehaving FHIR server on 127.0.0.1:
whatever the FHIR server does (garbage with 200, slow drip, gzip bomb, huge legal pages, resets, odd encodings),
the hook call is answered — 200 with what could be read, or 412 saying what could not — never a 5xx; the
deadline bounds the answer, and the byte budget bounds the memory of the call."""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.builders import hook_request, observation, patient, searchset
from tests.contract import response_problems
from tests.servers import ServerProcess, running_server

MAS = "/cds-services/mas-screen"
DEADLINE_SECONDS = 1.0
CALL_BUDGET = 8 * 1024 * 1024  # the default of CDS_FHIR_MAX_CALL_BYTES
PAGE_OBSERVATIONS = 12_000  # ~3 MiB per page


def _ferritin(index: int) -> dict[str, Any]:
    return observation(
        f"o{index}",
        subject={"reference": "Patient/pat1"},
        effectiveDateTime="2026-03-10T10:00:00Z",
        valueQuantity={"value": 100 + index, "unit": "ng/mL", "system": "http://unitsofmeasure.org", "code": "ng/mL"},
    )


def _big_page(count: int, next_url: str | None) -> bytes:
    return json.dumps(searchset(*(_ferritin(i) for i in range(count)), next_url=next_url)).encode()


class FhirFaults(BaseHTTPRequestHandler):
    """Patient, Condition and MedicationRequest answer normally; Observation searches misbehave per `mode`."""

    mode: ClassVar[str] = "normal"
    base: ClassVar[str] = ""
    drip_finished: ClassVar[threading.Event] = threading.Event()
    big_page: ClassVar[bytes] = b""
    bomb: ClassVar[bytes] = b""
    deflate_bomb: ClassVar[bytes] = b""
    pages_served: ClassVar[int] = 0

    def log_message(self, *_args: Any) -> None:
        return

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.endswith("/Patient/pat1"):
            self._send(json.dumps(patient()).encode())
        elif not path.endswith("/Observation"):
            self._send(json.dumps(searchset()).encode())
        else:
            getattr(self, f"_observations_{self.mode}")()

    def _send(self, body: bytes, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the service may hang up once it has read enough
            self.wfile.write(body)

    def _observations_normal(self) -> None:
        self._send(json.dumps(searchset(_ferritin(1))).encode())

    def _observations_garbage(self) -> None:
        self._send(b"<html><body>Scheduled maintenance</body></html>")

    def _observations_drip(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(200):  # 200 x 50 ms = 10 s, far beyond the call's deadline
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass
        finally:
            FhirFaults.drip_finished.set()

    def _observations_bomb(self) -> None:
        self._send(self.bomb, headers={"Content-Encoding": "gzip"})

    def _observations_deflate_bomb(self) -> None:
        self._send(self.deflate_bomb, headers={"Content-Encoding": "deflate"})

    def _observations_truncated_gzip(self) -> None:
        compressed = gzip.compress(json.dumps(searchset(_ferritin(1))).encode())
        self._send(compressed[: len(compressed) // 2], headers={"Content-Encoding": "gzip"})

    def _observations_not_gzip(self) -> None:
        self._send(b"this is not gzip at all", headers={"Content-Encoding": "gzip"})

    def _observations_brotli(self) -> None:
        self._send(b"\x1b\x00\x00", headers={"Content-Encoding": "br"})

    def _observations_big_pages(self) -> None:
        FhirFaults.pages_served += 1
        self._send(self.big_page)  # every page links to the next one

    def _observations_reset(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5000")
        self.end_headers()
        self.wfile.write(b'{"resourceType":"Bundle","entry":[')
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.connection.close()

    def _observations_server_error(self) -> None:
        self._send(b'{"resourceType":"OperationOutcome","issue":[]}', status=500)

    def _observations_redirect(self) -> None:
        self._send(b"", status=302, headers={"Location": "https://elsewhere.example/fhir/Observation"})

    def _observations_lies_about_length(self) -> None:
        self._send(json.dumps(searchset(_ferritin(1))).encode()[:40], headers={"Content-Length": "4000"})


@pytest.fixture(scope="module")
def fhir_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FhirFaults)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}/fhir"
    FhirFaults.base = base
    FhirFaults.big_page = _big_page(PAGE_OBSERVATIONS, f"{base}/Observation?page=next")  # endless paging
    FhirFaults.bomb = gzip.compress(b" " * (256 * 1024 * 1024), 9)  # ~250 KiB that inflate to 256 MiB
    FhirFaults.deflate_bomb = zlib.compress(b"[" * (64 * 1024 * 1024), 9)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield base
    server.shutdown()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    database = tmp_path_factory.mktemp("fhir-faults") / "cds.sqlite3"
    env = {
        "CDS_DATABASE_URL": f"sqlite:///{database}",
        "CDS_SANDBOX": "true",
        "CDS_FHIR_DEADLINE_SECONDS": str(DEADLINE_SECONDS),
    }
    with running_server(env) as server:
        yield server


def _call(service: ServerProcess, fhir_base: str, mode: str) -> httpx.Response:
    FhirFaults.mode = mode
    body = hook_request(fhirServer=fhir_base)  # no prefetch: every key is fetched from the faulty server
    response = httpx.post(f"{service.url}{MAS}", json=body, timeout=30)
    assert not response_problems("POST", MAS, response.status_code, response.content), response.text
    return response


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_well_behaved_server_is_read(service: ServerProcess, fhir_base: str) -> None:
    assert _call(service, fhir_base, "normal").status_code == 200


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("garbage", "FHIR server answer: not readable as FHIR"),
        ("truncated_gzip", "truncated"),
        ("not_gzip", "not valid compressed data"),
        ("brotli", "unsupported content-encoding"),
        ("reset", "unreachable"),
        ("server_error", "HTTP 500"),
        ("redirect", "HTTP 302"),
        ("lies_about_length", "unreachable"),
    ],
)
def test_unusable_answers_for_required_labs_are_412(
    service: ServerProcess, fhir_base: str, mode: str, reason: str
) -> None:
    response = _call(service, fhir_base, mode)
    assert response.status_code == 412
    assert "'labs' could not be obtained" in response.text
    assert reason in response.text


def test_a_slow_drip_is_cut_at_the_deadline(service: ServerProcess, fhir_base: str) -> None:
    FhirFaults.drip_finished.clear()
    response = _call(service, fhir_base, "drip")
    assert response.status_code == 412
    assert "within the deadline" in response.text
    assert not FhirFaults.drip_finished.is_set()  # answered while the FHIR server was still dripping


@pytest.mark.parametrize("mode", ["bomb", "deflate_bomb"])
def test_a_compression_bomb_stops_at_the_byte_budget(service: ServerProcess, fhir_base: str, mode: str) -> None:
    _call(service, fhir_base, "normal")
    before = _peak_rss_mib(service.process.pid)
    for _ in range(3):
        response = _call(service, fhir_base, mode)
        assert response.status_code == 412
        assert "larger than" in response.text
    assert _peak_rss_mib(service.process.pid) - before < 40  # the bombs inflate to 64-256 MiB each


def test_endless_large_legal_pages_stop_at_the_byte_budget(service: ServerProcess, fhir_base: str) -> None:
    page_bytes = len(FhirFaults.big_page)
    _call(service, fhir_base, "big_pages")
    before = _peak_rss_mib(service.process.pid)
    for _ in range(3):
        FhirFaults.pages_served = 0
        response = _call(service, fhir_base, "big_pages")
        assert response.status_code in (200, 412)
        if response.status_code == 200:  # what was read is used, and the card says the rest was not
            assert "only part of the results could be read" in response.text
        # labs and vitals both page through Observations: the budget, not the page cap (5 each), stops them
        assert FhirFaults.pages_served <= CALL_BUDGET // page_bytes + 2
    assert _peak_rss_mib(service.process.pid) - before < 64
