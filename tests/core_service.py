"""A test-only CDS service that reports what the transport resolved, so the core can be tested alone."""

from __future__ import annotations

import json
import uuid

from cds_service.call import HookCall
from cds_service.fhir.prefetch import ServiceData
from cds_service.registry import HandlerResult
from cds_service.spec.response import Card, Source

KEYS = ("patient", "labs", "encounter")


async def handle(call: HookCall, data: ServiceData) -> HandlerResult:
    report = {
        key: {
            "status": data[key].status.value,
            "ids": [resource.id for resource in data[key].resources],
            "notes": list(data[key].notes),
            "complete": data[key].complete,
        }
        for key in KEYS
    }
    card = Card(
        uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, call.hook_instance)),
        summary="prefetch report",
        detail=json.dumps(report, sort_keys=True),
        indicator="info",
        source=Source(label="probe"),
    )
    return HandlerResult([card], {"probe": "1"})
