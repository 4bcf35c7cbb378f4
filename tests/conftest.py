"""Shared fixtures: apps on SQLite (default) and PostgreSQL (machine service), contract-checked clients."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from cds_service.app import create_app
from cds_service.settings import PROJECT_ROOT, Settings
from tests.contract import check_exchange

CORE_HOOKS = Path(__file__).parent / "core_hooks"
FIXED_NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
POSTGRES_URL = os.environ.get("CDS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_schema_url() -> Iterator[str]:
    """A fresh schema per test run, dropped afterwards, so runs never see each other's rows."""
    schema = f"cds_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:
        admin.dispose()
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required for these tests: {error}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cds.sqlite3'}"
    else:
        yield from _postgres_schema_url()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_schema_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cds.sqlite3'}"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "sandbox": True,
        "hooks_dir": PROJECT_ROOT / "hooks",
        "database_url": database_url,
        "gc_freeze": False,
        "fhir_deadline_seconds": 1.0,
    }
    values.update(overrides)
    return Settings(**values)


def contract_client(app: Any) -> TestClient:
    client = TestClient(app, raise_server_exceptions=False)
    client.event_hooks = {"request": [], "response": [check_exchange]}
    return client


@pytest.fixture
def make_client(sqlite_url: str) -> Iterator[Callable[..., TestClient]]:
    """Build a contract-checked client; keyword arguments override settings."""
    clients: list[TestClient] = []

    def build(*, clock: Callable[[], datetime] = lambda: FIXED_NOW, **overrides: Any) -> TestClient:
        settings = make_settings(overrides.pop("database_url", sqlite_url), **overrides)
        client = contract_client(create_app(settings, clock=clock))
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def core_client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(hooks_dir=CORE_HOOKS)
