"""FHIR builders for clinical test data: patients, measurements, anakinra orders."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.conftest import FIXED_NOW

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def patient(birth_date: str | None = "1990-01-01", gender: str | None = "female", pid: str = "pat1") -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient", "id": pid}
    if birth_date:
        resource["birthDate"] = birth_date
    if gender:
        resource["gender"] = gender
    return resource


def born_years_ago(years: int, *, days_extra: int = 0, now: datetime = FIXED_NOW) -> str:
    """Birth date giving exactly `years` completed years at `now` (minus `days_extra` days)."""
    return (now.date().replace(year=now.year - years) - timedelta(days=days_extra)).isoformat()


def measurement(
    loinc: str,
    value: Decimal | float | int | str,
    unit: str,
    *,
    ago: timedelta = timedelta(hours=2),
    status: str = "final",
    obs_id: str | None = None,
    pid: str = "pat1",
    now: datetime = FIXED_NOW,
    ucum: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": float(value) if isinstance(value, Decimal | str) else value, "unit": unit}
    if isinstance(value, str):
        quantity["value"] = value  # wrong type on purpose
    if ucum:
        quantity.update(system=UCUM, code=unit)
    return {
        "resourceType": "Observation",
        "id": obs_id or f"obs-{uuid.uuid4().hex[:10]}",
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": iso(now - ago),
        "valueQuantity": quantity,
        **extra,
    }


def weight(kg: Decimal | float | int, **kwargs: Any) -> dict[str, Any]:
    return measurement("29463-7", kg, kwargs.pop("unit", "kg"), **kwargs)


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def anakinra_order(
    dose: float | int | None,
    unit: str = "mg",
    *,
    every_hours: float | None = 12,
    route: str | None = "subcutaneous",
    order_id: str = "mr-anakinra",
    medication: dict[str, Any] | None = None,
    timing_code: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    dosage: dict[str, Any] = {}
    if dose is not None:
        dosage["doseAndRate"] = [{"doseQuantity": {"value": dose, "unit": unit, "system": UCUM, "code": unit}}]
    if timing_code:
        dosage["timing"] = {"code": {"coding": [{"code": timing_code}]}}
    elif every_hours is not None:
        dosage["timing"] = {"repeat": {"frequency": 1, "period": every_hours, "periodUnit": "h"}}
    if route == "subcutaneous":
        dosage["route"] = {
            "coding": [{"system": "http://snomed.info/sct", "code": "34206005", "display": "Subcutaneous route"}]
        }
    elif route == "intravenous":
        dosage["route"] = {
            "coding": [{"system": "http://snomed.info/sct", "code": "47625008", "display": "Intravenous route"}]
        }
    order: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/pat1"},
        "dosageInstruction": [dosage],
        **extra,
    }
    if medication is None:
        order["medicationCodeableConcept"] = {
            "coding": [{"system": RXNORM, "code": "727711", "display": "0.67 ML anakinra 149 MG/ML Prefilled Syringe"}]
        }
    else:
        order.update(medication)
    return order


def other_order(
    order_id: str = "mr-other", name: str = "acetaminophen 500 mg tablet", status: str = "draft", **extra: Any
) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": order_id,
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/pat1"},
        "medicationCodeableConcept": {"text": name},
        **extra,
    }


def order_request(
    hook: str,
    orders: list[dict[str, Any]],
    *,
    selections: list[str] | None = None,
    prefetch: dict[str, Any] | None = None,
    extra_entries: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "userId": "Practitioner/p1",
        "patientId": "pat1",
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in [*orders, *(extra_entries or [])]],
        },
    }
    if hook == "order-select":
        context["selections"] = (
            selections if selections is not None else [f"MedicationRequest/{o['id']}" for o in orders[:1]]
        )
    body: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def dose_prefetch(
    *,
    patient_resource: dict[str, Any] | None = None,
    weights: list[dict[str, Any]] | None = None,
    heights: list[dict[str, Any]] | None = None,
    labs: list[dict[str, Any]] | None = None,
    medications: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "patient": patient_resource or patient(),
        "weights": bundle(*(weights or [])),
        "heights": bundle(*(heights or [])),
        "safety_labs": bundle(*(labs or [])),
        "medications": bundle(*(medications or [])),
    }


def normal_safety_labs() -> list[dict[str, Any]]:
    return [measurement("2160-0", 0.8, "mg/dL"), measurement("751-8", 4.2, "10*3/uL")]
