"""In-process harness for the SMART app and the sandbox's test authorization server: one app, whose
outbound HTTP (discovery, token, FHIR) goes back into the same app through an ASGI transport (or to
`extra_routes`, which may answer or rewrite a request), and a clock the test moves."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from cds_service.app import create_app
from cds_service.sandbox.smart_auth import SmartAuthServer
from tests.conftest import FIXED_NOW, make_settings

BASE = "http://testserver"
ISS = f"{BASE}/sandbox/fhir"


class Clock:
    def __init__(self, now: datetime = FIXED_NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Harness:
    client: TestClient  # the browser: keeps cookies, never follows redirects by itself
    clock: Clock
    auth: SmartAuthServer
    outbound: list[httpx.Request]  # every request the app sent (discovery, token, FHIR)

    def launch(self, patient: str, **options: Any) -> dict[str, str]:
        made = self.client.post("/sandbox/api/launch", json={"patient": patient, **options})
        assert made.status_code == 200, made.text
        launch: dict[str, str] = made.json()
        return launch

    def start(self, params: Mapping[str, str]) -> httpx.Response:
        return self.client.get("/app/launch", params=dict(params), follow_redirects=False)

    def get(self, url: str) -> httpx.Response:
        return self.client.get(url, follow_redirects=False)

    def run(self, patient: str, **options: Any) -> httpx.Response:
        """EHR launch to the app's redirect after the callback (or the first answer that is not a redirect)."""
        answer = self.start(self.launch(patient, **options))
        for _ in range(3):
            if answer.status_code not in (302, 303):
                return answer
            location = answer.headers["location"]
            if location.startswith("/app/?"):
                return answer
            answer = self.get(location)
        return answer


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


@contextmanager
def harness(
    database_url: str,
    *,
    extra_routes: Callable[[httpx.Request], httpx.Response | httpx.Request | None] | None = None,
    **overrides: Any,
) -> Iterator[Harness]:
    clock = Clock()
    holder: dict[str, ASGIApp] = {}
    outbound: list[httpx.Request] = []

    async def back_into_the_app(scope: Scope, receive: Receive, send: Send) -> None:
        await holder["app"](scope, receive, send)

    inner = httpx.ASGITransport(app=back_into_the_app)

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            outbound.append(request)
            answer = extra_routes(request) if extra_routes is not None else None
            if isinstance(answer, httpx.Response):
                return answer
            # A request in return: forwarded into the app (e.g. rewritten as a proxy would).
            return await inner.handle_async_request(answer or request)

    http = httpx.AsyncClient(transport=Recording())
    # The test client's host is not loopback, so the redirect URI is registered exactly (as in production).
    overrides.setdefault("app_redirect_uri", f"{BASE}/app/callback")
    # A generous FHIR deadline: these tests are about the OAuth flow and the app, not about timing, and the
    # in-process FHIR server shares a loaded machine with everything else.
    overrides.setdefault("fhir_deadline_seconds", 10.0)
    app = create_app(make_settings(database_url, **overrides), clock=clock, http_client=http)
    holder["app"] = app
    with TestClient(app, base_url=BASE) as client:
        yield Harness(client, clock, app.state.smart_auth, outbound)
