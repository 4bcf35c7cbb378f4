"""Issue 12 item 4, fault injection on real servers: a store that cannot write answers 503 with Retry-After for
the calls that need it, /readyz says not ready, the service reconnects when the store returns, and nothing
answered 200 is ever missing afterwards. The shared PostgreSQL and Redis are never stopped: PostgreSQL is
reached through a proxy that the test cuts, and Redis is a throw-away redis-server on a free port."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, make_url, select

from cds_service.storage.database import audit, feedback
from tests.builders import hook_request, patient
from tests.conftest import CORE_HOOKS
from tests.contract import response_problems
from tests.faults import cuttable_proxy, run_concurrently, throw_away_redis
from tests.jwt_helpers import PUBLIC_BASE, auth_settings, claims, es384
from tests.servers import ServerProcess, free_port, running_server

PROBE = "/cds-services/prefetch-probe"


def _checked(response: httpx.Response, path: str) -> httpx.Response:
    """The contract checker refuses every 5xx; a 503 is the one these tests expect, checked by _assert_unavailable."""
    if response.status_code != 503:
        assert not response_problems("POST", path, response.status_code, response.content), response.text
    return response


def _feedback(base: str, card: str, headers: dict[str, str] | None = None) -> httpx.Response:
    item = {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-03-10T12:02:00Z"}
    path = f"{PROBE}/feedback"
    return _checked(httpx.post(f"{base}{path}", json={"feedback": [item]}, headers=headers, timeout=20), path)


def _hook(base: str, headers: dict[str, str] | None = None) -> tuple[str, httpx.Response]:
    body = hook_request(prefetch={"patient": patient(), "labs": None, "encounter": None})
    response = httpx.post(f"{base}{PROBE}", json=body, headers=headers, timeout=20)
    return body["hookInstance"], _checked(response, PROBE)


def _ready(base: str) -> int:
    return httpx.get(f"{base}/readyz", timeout=10).status_code


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["issue"][0]["code"] == "transient"


def _rows(database_url: str, table: Any) -> list[dict[str, Any]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(select(table))]
    finally:
        engine.dispose()


def _wait_until(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def _sandbox_env(database_url: str) -> dict[str, str]:
    return {"CDS_HOOKS_DIR": str(CORE_HOOKS), "CDS_DATABASE_URL": database_url, "CDS_SANDBOX": "true"}


def test_sqlite_folder_deleted_while_running_answers_503_and_recovers_when_restored(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    url = f"sqlite:///{folder / 'cds.sqlite3'}"
    with running_server(_sandbox_env(url)) as server:
        assert _feedback(server.url, "card-before").status_code == 200
        kept_hook, response = _hook(server.url)
        assert response.status_code == 200
        backup = tmp_path / "backup"
        shutil.copytree(folder, backup)
        shutil.rmtree(folder)

        _assert_unavailable(_feedback(server.url, "card-while-gone"))
        _, hook_response = _hook(server.url)
        _assert_unavailable(hook_response)  # its audit record cannot be kept: no 200
        assert _ready(server.url) == 503

        shutil.copytree(backup, folder)  # the operator restores the folder: no restart needed
        _wait_until(lambda: _ready(server.url) == 200)
        assert _feedback(server.url, "card-after").status_code == 200
        server.kill()
    with running_server(_sandbox_env(url)):
        cards = {row["card_uuid"] for row in _rows(url, feedback)}
        assert cards == {"card-before", "card-after"}  # every 200 kept; the 503 one was never claimed
        assert kept_hook in {row["hook_instance"] for row in _rows(url, audit)}


def test_a_truncated_wal_index_neither_kills_the_process_nor_loses_a_record(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cds.sqlite3'}"
    shm = tmp_path / "cds.sqlite3-shm"
    with running_server(_sandbox_env(url)) as server:
        assert _feedback(server.url, "card-1").status_code == 200
        assert shm.stat().st_size > 0
        os.truncate(shm, 0)  # once this was SIGBUS at the next statement
        assert _feedback(server.url, "card-2").status_code == 200
        assert server.process.poll() is None
        assert _ready(server.url) == 200
        server.kill()
    assert {row["card_uuid"] for row in _rows(url, feedback)} == {"card-1", "card-2"}


@pytest.mark.postgres
def test_postgresql_down_answers_503_then_reconnects(postgres_url: str) -> None:
    direct = make_url(postgres_url)
    with cuttable_proxy(direct.host or "127.0.0.1", direct.port or 5432) as proxy:
        via_proxy = direct.set(port=proxy.port).render_as_string(hide_password=False)
        with running_server(_sandbox_env(via_proxy)) as server:
            assert _feedback(server.url, "card-up").status_code == 200
            proxy.cut()
            started = time.monotonic()
            _assert_unavailable(_feedback(server.url, "card-down"))
            _, hook_response = _hook(server.url)
            _assert_unavailable(hook_response)
            assert _ready(server.url) == 503
            assert time.monotonic() - started < 20  # answered, not hung on the driver's defaults
            proxy.restore()
            _wait_until(lambda: _ready(server.url) == 200)
            assert _feedback(server.url, "card-back").status_code == 200
            instance, response = _hook(server.url)
            assert response.status_code == 200
    assert {row["card_uuid"] for row in _rows(postgres_url, feedback)} == {"card-up", "card-back"}
    assert instance in {row["hook_instance"] for row in _rows(postgres_url, audit)}


def test_redis_down_answers_503_with_an_audit_record_and_the_first_call_after_it_returns_works(
    tmp_path: Path, sqlite_url: str
) -> None:
    key = es384("redis-fault")
    issuers = auth_settings(tmp_path, key)

    def bearer() -> dict[str, str]:
        return {"Authorization": f"Bearer {key.sign(claims(PROBE))}"}

    with throw_away_redis() as redis_server:
        env = {
            "CDS_HOOKS_DIR": str(CORE_HOOKS),
            "CDS_DATABASE_URL": sqlite_url,
            "CDS_TRUSTED_ISSUERS_FILE": str(issuers["trusted_issuers_file"]),
            "CDS_PUBLIC_BASE_URL": PUBLIC_BASE,
            "CDS_REDIS_URL": redis_server.url,
        }
        with running_server(env) as server:
            assert _hook(server.url, bearer())[1].status_code == 200  # a pooled connection to Redis now exists
            redis_server.stop()
            failed_instance, response = _hook(server.url, bearer())
            _assert_unavailable(response)
            assert _ready(server.url) == 503
            redis_server.start()  # same port; the pooled connection is stale
            instance, response = _hook(server.url, bearer())
            assert response.status_code == 200, response.text
            assert _ready(server.url) == 200
    statuses = {row["hook_instance"]: row["status"] for row in _rows(sqlite_url, audit)}
    assert statuses[failed_instance] == 503  # a call ending in a 5xx still leaves its audit record
    assert statuses[instance] == 200


def test_kill_9_under_load_loses_nothing_that_was_answered_200(database_url: str) -> None:
    env = _sandbox_env(database_url)
    port = free_port()
    server = ServerProcess(env, port)
    try:
        server.wait_ready()
        run_id = uuid.uuid4().hex[:8]

        def call(index: int) -> tuple[str, str, int]:
            if index == 40:
                server.kill()  # SIGKILL in the middle of the load, calls in flight
            if index % 2:
                card = f"{run_id}-{index}"
                return "feedback", card, _feedback(server.url, card).status_code
            instance, response = _hook(server.url)
            return "hook", instance, response.status_code

        outcomes = run_concurrently(call, 80, workers=8)
    finally:
        server.kill()
    answered = [outcome for outcome in outcomes if isinstance(outcome, tuple)]
    assert all(status < 500 for _, _, status in answered)  # zero 5xx
    assert any(status == 200 for _, _, status in answered)
    with running_server(env, port=port):
        cards = {row["card_uuid"] for row in _rows(database_url, feedback)}
        instances = {row["hook_instance"] for row in _rows(database_url, audit)}
    assert {card for kind, card, status in answered if kind == "feedback" and status == 200} <= cards
    assert {hook for kind, hook, status in answered if kind == "hook" and status == 200} <= instances
