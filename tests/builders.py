"""Small builders for hook requests and FHIR JSON used across tests."""

from __future__ import annotations

import uuid
from typing import Any

FHIR_BASE = "https://fhir.example.org/r4"


def hook_request(hook: str = "patient-view", **fields: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/p1", "patientId": "pat1"}
    if hook in ("order-select", "order-sign"):
        context["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": []}
    if hook == "order-select":
        context["selections"] = []
    body: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
    body.update(fields)
    return body


def patient(patient_id: str = "pat1", **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": patient_id, **fields}


def searchset(*resources: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": resource, "search": {"mode": "match"}} for resource in resources],
    }
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def outcome(text: str = "Resource request returns no results.") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "warning", "code": "processing", "diagnostics": text}],
    }


def observation(obs_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2276-4"}]},
        **fields,
    }
