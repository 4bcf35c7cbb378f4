"""Feedback survives a killed (SIGKILL) and restarted real server, on SQLite and on PostgreSQL."""

from __future__ import annotations

import httpx

from tests.conftest import CORE_HOOKS
from tests.contract import response_problems
from tests.servers import running_server

ITEM = {
    "card": "5f3c1e2a-8d4b-4c6e-9a7f-1b2c3d4e5f60",
    "outcome": "overridden",
    "outcomeTimestamp": "2026-03-10T12:02:00Z",
    "overrideReason": {"reason": {"system": "urn:x", "code": "c", "display": "C"}},
}


def _post_feedback(base: str) -> httpx.Response:
    response = httpx.post(f"{base}/cds-services/prefetch-probe/feedback", json={"feedback": [ITEM]}, timeout=10)
    assert not response_problems(
        "POST", "/cds-services/prefetch-probe/feedback", response.status_code, response.content
    )
    return response


def test_feedback_survives_kill_and_restart(database_url: str) -> None:
    env = {"CDS_HOOKS_DIR": str(CORE_HOOKS), "CDS_DATABASE_URL": database_url, "CDS_SANDBOX": "true"}
    with running_server(env) as server:
        assert _post_feedback(server.url).json() == {"stored": 1, "duplicates": 0}
        server.kill()
    with running_server(env) as server:
        assert _post_feedback(server.url).json() == {"stored": 0, "duplicates": 1}
        discovery = httpx.get(f"{server.url}/cds-services", timeout=5)
        assert discovery.json()["services"][0]["id"] == "prefetch-probe"
