"""Audit records: one per authenticated hook call (who, what, which rules, which cards, how long, outcome).

No token and no patient data: the card summary is the only clinical text, and it names lab values only.
Feedback links to the audit through the card uuid (cds_audit_card)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Dialect, Engine, Insert, PoolProxiedConnection, Table, insert, text
from sqlalchemy.exc import DBAPIError, InvalidatePoolError, StatementError

from cds_service.storage.database import UNAVAILABLE_ERRORS, audit, audit_card, fitted, storable
from cds_service.storage.errors import StoreUnavailableError
from cds_service.storage.sqlite_files import check_held_connection


@dataclass(frozen=True)
class AuditCard:
    uuid: str
    indicator: str
    summary: str


@dataclass(frozen=True)
class AuditRecord:
    service_id: str
    hook: str | None
    hook_instance: str | None
    issuer: str | None
    tenant: str | None
    status: int
    outcome: str
    latency_ms: float
    rule_versions: dict[str, str] = field(default_factory=dict)
    cards: tuple[AuditCard, ...] = ()
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def write_audit_batch(engine: Engine, records: list[AuditRecord]) -> None:
    """Commit `records` in one transaction (SQLAlchemy Core; the writer thread uses `_AuditSink`)."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(_POSTGRES_ASYNC_COMMIT))
        for record in records:
            result = connection.execute(insert(audit).returning(audit.c.id), _record_values(record))
            audit_id = result.scalar_one()
            if record.cards:
                connection.execute(insert(audit_card), _card_values(audit_id, record))


# The commit returns once PostgreSQL has the records (durable if this service is killed); not waiting for
# PostgreSQL's own disk flush saves ~3 ms per call. Only a crash of the database server itself could drop
# the last fraction of a second of audit.
_POSTGRES_ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF"


def _record_values(record: AuditRecord) -> dict[str, Any]:
    """The row, with every text cut to its column and NUL replaced (PostgreSQL refuses both otherwise)."""
    return {
        "received_at": record.received_at,
        "service_id": fitted(audit.c.service_id, record.service_id),
        "hook": fitted(audit.c.hook, record.hook),
        "hook_instance": fitted(audit.c.hook_instance, record.hook_instance),
        "issuer": fitted(audit.c.issuer, record.issuer),
        "tenant": fitted(audit.c.tenant, record.tenant),
        "status": record.status,
        "outcome": storable(record.outcome[:2000]),
        "latency_ms": record.latency_ms,
        "rule_versions": json.dumps(record.rule_versions, sort_keys=True),
    }


def _card_values(audit_id: int, record: AuditRecord) -> list[dict[str, Any]]:
    return [
        {
            "audit_id": audit_id,
            "card_uuid": c.uuid,
            "indicator": c.indicator,
            "summary": fitted(audit_card.c.summary, c.summary),
        }
        for c in record.cards
    ]


class _Statement:
    """An INSERT compiled once for the engine's dialect, with the dialect's own value conversions (e.g.
    SQLite's datetime text), to run on the DB-API cursor exactly as SQLAlchemy would run it."""

    def __init__(self, statement: Insert, table: Table, keys: Sequence[str], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql = str(compiled)
        self._order = tuple(compiled.positiontup or ()) if dialect.positional else None
        converters = {key: table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys}
        self._converters = {key: convert for key, convert in converters.items() if convert is not None}

    def parameters(self, values: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        for key, convert in self._converters.items():
            values[key] = convert(values[key])
        return values if self._order is None else tuple(values[key] for key in self._order)


class _AuditSink:
    """The writer thread's own database connection and precompiled INSERTs: the same rows as
    `write_audit_batch`, without SQLAlchemy's per-statement work and pool checkout (with its ping) on every
    batch: one record costs 0.18 M instructions this way against 0.73 M through SQLAlchemy Core."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        dialect = engine.dialect
        record_keys = [column.name for column in audit.columns if column.name != "id"]
        self._record = _Statement(insert(audit).returning(audit.c.id), audit, record_keys, dialect)
        card_keys = ["audit_id", "card_uuid", "indicator", "summary"]
        self._card = _Statement(insert(audit_card), audit_card, card_keys, dialect)
        self._postgres = dialect.name == "postgresql"
        self._connection: PoolProxiedConnection | None = None

    def write(self, records: list[AuditRecord]) -> None:
        try:
            self._write(records, first_try=True)
        except _StaleConnectionError:
            self._write(records, first_try=False)  # nothing was written: a fresh connection, once

    def _write(self, records: list[AuditRecord], *, first_try: bool) -> None:
        if self._connection is not None:
            try:
                # The pool's checkout checks do not run for a held connection: e.g. a SQLite file deleted
                # since the last batch would otherwise take writes that vanish (answered 200, then lost).
                check_held_connection(self._engine, self._connection.info)
            except InvalidatePoolError:
                self._discard(invalidate=True)
        try:
            connection = self._connection = self._connection or self._engine.raw_connection()
        except self._engine.dialect.loaded_dbapi.Error as error:  # e.g. the SQLite file is gone
            raise self._wrapped(error, invalidated=False) from error
        cursor = connection.cursor()
        written = False
        try:
            if self._postgres:
                cursor.execute(_POSTGRES_ASYNC_COMMIT)
            for record in records:
                cursor.execute(self._record.sql, self._record.parameters(_record_values(record)))
                written = True
                row = cursor.fetchone()
                assert row is not None  # INSERT ... RETURNING id
                if record.cards:
                    rows: Any = [self._card.parameters(values) for values in _card_values(row[0], record)]
                    cursor.executemany(self._card.sql, rows)
            connection.commit()
        except Exception as error:
            dialect = self._engine.dialect
            stale = isinstance(error, dialect.loaded_dbapi.Error) and dialect.is_disconnect(
                cast(Any, error), connection.dbapi_connection, cursor
            )
            self._discard(invalidate=stale)
            if stale and first_try and not written:
                raise _StaleConnectionError from error  # e.g. PostgreSQL restarted since the last batch
            if isinstance(error, dialect.loaded_dbapi.Error):
                raise self._wrapped(error, invalidated=stale) from error
            raise
        finally:
            with contextlib.suppress(Exception):
                cursor.close()

    def _wrapped(self, error: Exception, *, invalidated: bool) -> StatementError:
        """The raw driver error as SQLAlchemy would raise it (OperationalError...): callers tell "the database
        cannot take this now" (503) from a bug by these classes."""
        dbapi_error = self._engine.dialect.loaded_dbapi.Error
        return DBAPIError.instance(self._record.sql, None, error, dbapi_error, connection_invalidated=invalidated)

    def _discard(self, *, invalidate: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with contextlib.suppress(Exception):
            if invalidate:
                connection.invalidate()
            else:
                connection.rollback()
                connection.close()

    def close(self) -> None:
        """Give the connection back to the pool (from the writer thread, which owns it)."""
        self._discard(invalidate=False)


class _StaleConnectionError(Exception):
    pass


class AuditWriter:
    """Group commit: one writer thread takes every record waiting in the queue and commits them in one
    transaction; each call awaits its own record's commit, so nothing is answered before it is durable.
    Concurrent calls share a commit instead of contending for the database's write lock."""

    MAX_BATCH = 200
    # A call waits this long for its record; then it is answered 503 (the record may still land: a 503 for a
    # kept record is harmless, a 200 for a lost one is not).
    WRITE_TIMEOUT_SECONDS = 10.0

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.Queue[tuple[AuditRecord, asyncio.Future[None], asyncio.AbstractEventLoop] | None] = (
            queue.Queue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def write(self, record: AuditRecord) -> None:
        """Return once the record is committed; StoreUnavailableError when the database cannot take it."""
        self._ensure_running()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queue.put((record, done, loop))
        try:
            await asyncio.wait_for(asyncio.shield(done), self.WRITE_TIMEOUT_SECONDS)
        except TimeoutError as error:
            raise StoreUnavailableError("audit database did not commit in time") from error
        except UNAVAILABLE_ERRORS as error:
            raise StoreUnavailableError(f"audit database unavailable ({type(error).__name__})") from error

    def _ensure_running(self) -> None:
        # Started on first use and again after close(): an app whose lifespan restarts keeps auditing.
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._queue.put(None)
                self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        sink = _AuditSink(self._engine)  # the thread's own connection and precompiled INSERTs
        try:
            self._serve(sink)
        finally:
            sink.close()

    def _serve(self, sink: _AuditSink) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            error = self._commit(sink, [record for record, _, _ in batch])
            if error is not None and len(batch) > 1 and not isinstance(error, UNAVAILABLE_ERRORS):
                # One record the database refuses (a bug, or data it cannot hold) must not fail the calls that
                # merely shared its transaction: each is committed on its own.
                for item in batch:
                    self._tell([item], self._commit(sink, [item[0]]))
                continue
            self._tell(batch, error)

    @staticmethod
    def _commit(sink: _AuditSink, records: list[AuditRecord]) -> BaseException | None:
        try:
            sink.write(records)
        except Exception as failure:
            return failure
        return None

    @staticmethod
    def _tell(
        batch: list[tuple[AuditRecord, asyncio.Future[None], asyncio.AbstractEventLoop]], error: BaseException | None
    ) -> None:
        for _, done, loop in batch:
            try:
                loop.call_soon_threadsafe(_settle, done, error)
            except RuntimeError:
                continue  # that call's event loop has closed: nobody is waiting any more


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
