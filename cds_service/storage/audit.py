"""Audit records: one per authenticated hook call (who, what, which rules, which cards, how long, outcome).

No token and no patient data: the card summary is the only clinical text, and it names lab values only.
Feedback links to the audit through the card uuid (cds_audit_card)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, insert

from cds_service.storage.database import audit, audit_card


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


def write_audit(engine: Engine, record: AuditRecord) -> None:
    with engine.begin() as connection:
        result = connection.execute(
            insert(audit).returning(audit.c.id),
            {
                "received_at": datetime.now(UTC),
                "service_id": record.service_id,
                "hook": record.hook,
                "hook_instance": record.hook_instance,
                "issuer": record.issuer,
                "tenant": record.tenant,
                "status": record.status,
                "outcome": record.outcome[:2000],
                "latency_ms": record.latency_ms,
                "rule_versions": json.dumps(record.rule_versions, sort_keys=True),
            },
        )
        audit_id = result.scalar_one()
        if record.cards:
            connection.execute(
                insert(audit_card),
                [
                    {"audit_id": audit_id, "card_uuid": c.uuid, "indicator": c.indicator, "summary": c.summary}
                    for c in record.cards
                ],
            )
