"""Audit records: one per authenticated hook call (who, what, which rules, which cards, how long, outcome).

No token and no patient data: the card summary is the only clinical text, and it names lab values only.
Feedback links to the audit through the card uuid (cds_audit_card)."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, insert, text

from cds_service.storage.database import UNAVAILABLE_ERRORS, audit, audit_card, fitted, storable
from cds_service.storage.errors import StoreUnavailableError


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
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # The commit returns once PostgreSQL has the records (durable if this service is killed);
            # not waiting for PostgreSQL's own disk flush saves ~3 ms per call. Only a crash of the
            # database server itself could drop the last fraction of a second of audit.
            connection.execute(text("SET LOCAL synchronous_commit TO OFF"))
        for record in records:
            _insert(connection, record)


def _insert(connection: Connection, record: AuditRecord) -> None:
    result = connection.execute(
        insert(audit).returning(audit.c.id),
        {
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
        },
    )
    audit_id = result.scalar_one()
    if record.cards:
        connection.execute(
            insert(audit_card),
            [
                {
                    "audit_id": audit_id,
                    "card_uuid": c.uuid,
                    "indicator": c.indicator,
                    "summary": fitted(audit_card.c.summary, c.summary),
                }
                for c in record.cards
            ],
        )


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
            error = self._commit([record for record, _, _ in batch])
            if error is not None and len(batch) > 1 and not isinstance(error, UNAVAILABLE_ERRORS):
                # One record the database refuses (a bug, or data it cannot hold) must not fail the calls that
                # merely shared its transaction: each is committed on its own.
                for item in batch:
                    self._tell([item], self._commit([item[0]]))
                continue
            self._tell(batch, error)

    def _commit(self, records: list[AuditRecord]) -> BaseException | None:
        try:
            write_audit_batch(self._engine, records)
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
