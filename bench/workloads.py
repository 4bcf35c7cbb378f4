"""Benchmark workloads: hook requests of a given prefetch size, built from the fixture patients."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from cds_service.registry import load_registry
from cds_service.sandbox.fixtures import build_request, load_order, load_patients
from cds_service.settings import PROJECT_ROOT

NOW = datetime.now(UTC)
REGISTRY = load_registry(PROJECT_ROOT / "hooks")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _grow(bundle: dict[str, Any], count: int, window: timedelta) -> dict[str, Any]:
    """A searchset of `count` Observations: the fixture's own, repeated with new ids and times spread over
    the window (so every copy is in the look-back and the rules really read them all)."""
    templates = [e["resource"] for e in bundle.get("entry", [])]
    entries = []
    for index in range(count):
        resource = copy.deepcopy(templates[index % len(templates)])
        resource["id"] = f"{resource['id']}-copy{index}"
        resource["effectiveDateTime"] = _iso(NOW - window * (index / max(count, 1)) - timedelta(minutes=5))
        entries.append({"fullUrl": f"Observation/{resource['id']}", "resource": resource, "search": {"mode": "match"}})
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


def patient_view(observations: int) -> dict[str, Any]:
    service = REGISTRY.get("mas-screen")
    assert service is not None
    body = build_request(load_patients()["adult-sepsis-mas-82kg"], service, hook="patient-view", now=NOW)
    body["prefetch"]["labs"] = _grow(body["prefetch"]["labs"], observations, timedelta(hours=70))
    return body


def order_select(observations: int) -> dict[str, Any]:
    service = REGISTRY.get("anakinra-dose")
    assert service is not None
    body = build_request(
        load_patients()["adult-sepsis-mas-82kg"],
        service,
        hook="order-select",
        now=NOW,
        order=load_order("anakinra-150mg-q6h-overdose"),
    )
    body["prefetch"]["safety_labs"] = _grow(body["prefetch"]["safety_labs"], observations, timedelta(days=6))
    return body
