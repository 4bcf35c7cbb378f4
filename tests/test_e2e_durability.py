"""Real servers on 127.0.0.1: feedback and audit records survive SIGKILL and restart (SQLite and
PostgreSQL); two instances sharing PostgreSQL and Redis refuse a JWT replayed across them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from cds_service.storage.database import audit
from tests.builders import hook_request, patient
from tests.conftest import CORE_HOOKS
from tests.contract import response_problems
from tests.jwt_helpers import PUBLIC_BASE, auth_settings, claims, es384
from tests.servers import running_server

REDIS_URL = os.environ.get("CDS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ITEM = {
    "card": "5f3c1e2a-8d4b-4c6e-9a7f-1b2c3d4e5f60",
    "outcome": "overridden",
    "outcomeTimestamp": "2026-03-10T12:02:00Z",
    "overrideReason": {"reason": {"system": "urn:x", "code": "c", "display": "C"}},
}


def _checked(response: httpx.Response, method: str, path: str) -> httpx.Response:
    assert not response_problems(method, path, response.status_code, response.content)
    return response


def _post_feedback(base: str) -> httpx.Response:
    path = "/cds-services/prefetch-probe/feedback"
    return _checked(httpx.post(f"{base}{path}", json={"feedback": [ITEM]}, timeout=10), "POST", path)


def _audit_rows(database_url: str) -> list[dict[str, Any]]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        found = [dict(r._mapping) for r in connection.execute(select(audit))]
    engine.dispose()
    return found


def test_feedback_and_audit_survive_kill_and_restart(database_url: str) -> None:
    env = {"CDS_HOOKS_DIR": str(CORE_HOOKS), "CDS_DATABASE_URL": database_url, "CDS_SANDBOX": "true"}
    body = hook_request(prefetch={"patient": patient(), "labs": None, "encounter": None})
    with running_server(env) as server:
        assert _post_feedback(server.url).json() == {"stored": 1, "duplicates": 0}
        call = httpx.post(f"{server.url}/cds-services/prefetch-probe", json=body, timeout=10)
        assert _checked(call, "POST", "/cds-services/prefetch-probe").status_code == 200
        server.kill()  # SIGKILL: no graceful shutdown
    with running_server(env) as server:
        assert _post_feedback(server.url).json() == {"stored": 0, "duplicates": 1}
        discovery = httpx.get(f"{server.url}/cds-services", timeout=5)
        assert discovery.json()["services"][0]["id"] == "prefetch-probe-patient-view"
    (record,) = _audit_rows(database_url)
    assert (record["hook_instance"], record["status"]) == (body["hookInstance"], 200)


@pytest.mark.postgres
def test_two_instances_share_postgres_and_redis_and_refuse_a_replayed_jwt(tmp_path: Path, postgres_url: str) -> None:
    key = es384("multi")
    issuers = auth_settings(tmp_path, key)
    env = {
        "CDS_HOOKS_DIR": str(CORE_HOOKS),
        "CDS_DATABASE_URL": postgres_url,
        "CDS_TRUSTED_ISSUERS_FILE": str(issuers["trusted_issuers_file"]),
        "CDS_PUBLIC_BASE_URL": PUBLIC_BASE,  # both instances sit behind the same public URL
        "CDS_REDIS_URL": REDIS_URL,
    }
    path = "/cds-services/prefetch-probe"
    body = hook_request(prefetch={"patient": patient(), "labs": None, "encounter": None})
    with running_server(env) as first, running_server(env) as second:
        assert httpx.get(f"{second.url}/readyz", timeout=5).json() == {"status": "ready"}
        token = key.sign(claims(path))
        accepted = httpx.post(f"{first.url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert accepted.status_code == 200
        replayed = httpx.post(
            f"{second.url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert replayed.status_code == 401 and replayed.content == b""
        fresh = key.sign(claims(path))
        assert (
            httpx.post(
                f"{second.url}{path}", json=body, headers={"Authorization": f"Bearer {fresh}"}, timeout=10
            ).status_code
            == 200
        )
    assert [r["status"] for r in _audit_rows(postgres_url)] == [200, 200]  # one shared audit trail
