"""FHIR resources this service emits, each validated with fhir.resources (R4B, identical to R4 for
MedicationRequest and ServiceRequest) before it leaves the service.

Validation costs ~1 ms per resource (fhir.resources re-enters pydantic for every element), so validated
results are cached. Suggested *new* resources differ between patients only in their `subject` and
`encounter` ids: those ids are checked against FHIR's id rule ([A-Za-z0-9-.]{1,64}) and the rest of the
resource is validated once per distinct content, with placeholder ids. Every emitted resource is therefore
valid, and a busy service validates each distinct dose text once instead of on every call.
"""

from __future__ import annotations

import importlib
import re
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson
from pydantic import ValidationError

from cds_service.rules.dosing.calculator import ProtocolDose, format_amount
from cds_service.rules.dosing.protocol import OrderTemplate

UCUM = "http://unitsofmeasure.org"
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # FHIR R4 datatype "id"
PATIENT_PLACEHOLDER = "placeholder-patient"
ENCOUNTER_PLACEHOLDER = "placeholder-encounter"
EMITTED = {
    "MedicationRequest": "fhir.resources.R4B.medicationrequest",
    "ServiceRequest": "fhir.resources.R4B.servicerequest",
}


class ResourceBuildError(ValueError):
    pass


def protocol_dosage(dose: ProtocolDose, template: OrderTemplate) -> dict[str, Any]:
    n = format_amount
    return {
        "text": (
            f"anakinra {n(dose.per_dose_mg)} mg ({n(dose.volume_ml)} mL) subcutaneously every "
            f"{dose.interval_hours} hours ({n(dose.per_day_mg)} mg/day; NCT02780583 protocol, "
            f"{n(dose.weight.value)} kg, band {dose.band.label})"
        ),
        "timing": {"repeat": {"frequency": 1, "period": dose.interval_hours, "periodUnit": "h"}},
        "route": template.route,
        "doseAndRate": [
            {"doseQuantity": {"value": _json_number(dose.per_dose_mg), "unit": "mg", "system": UCUM, "code": "mg"}}
        ],
    }


def corrected_order(original: dict[str, Any], dose: ProtocolDose, template: OrderTemplate) -> dict[str, Any]:
    """The same MedicationRequest (same id and everything else) with the protocol dosage.

    Client deviations whose meaning is unambiguous are repaired, not refused: a `category` sent as one object
    (the official CDS Hooks sandbox does) becomes the one-element list R4 requires."""
    repaired = dict(original)
    if isinstance(repaired.get("category"), dict):
        repaired["category"] = [repaired["category"]]
    return validated({**repaired, "dosageInstruction": [protocol_dosage(dose, template)]})


def new_protocol_order(
    *, patient_id: str, dose: ProtocolDose, encounter_id: str | None, template: OrderTemplate
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": template.medication,
        "dosageInstruction": [protocol_dosage(dose, template)],
        "note": [{"text": template.note}],
    }
    return for_patient(resource, patient_id=patient_id, encounter_id=encounter_id)


def workup_service_request(
    *, patient_id: str, loinc: str, display: str, text: str, encounter_id: str | None
) -> dict[str, Any]:
    """A draft laboratory order for one group of the MAS work-up (LOINC-coded test or panel)."""
    template: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": display}], "text": text},
        "reasonCode": [{"text": "Macrophage activation syndrome work-up"}],
    }
    return for_patient(template, patient_id=patient_id, encounter_id=encounter_id)


def for_patient(template: dict[str, Any], *, patient_id: str, encounter_id: str | None) -> dict[str, Any]:
    """Validate the template once (placeholder ids), check the real ids, then put them in."""
    if not FHIR_ID.match(patient_id) or (encounter_id is not None and not FHIR_ID.match(encounter_id)):
        raise ResourceBuildError("a patient or encounter id is not a valid FHIR id")
    resource = {**template, "subject": {"reference": f"Patient/{PATIENT_PLACEHOLDER}"}}
    if encounter_id is not None:
        resource["encounter"] = {"reference": f"Encounter/{ENCOUNTER_PLACEHOLDER}"}
    checked = validated(resource)
    checked["subject"] = {"reference": f"Patient/{patient_id}"}
    if encounter_id is not None:
        checked["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    return checked


def validated(resource: dict[str, Any]) -> dict[str, Any]:
    """fhir.resources validation, cached by content; returns a fresh copy the caller may change."""
    try:
        canonical = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
    except TypeError as error:
        raise ResourceBuildError(f"not JSON-serialisable ({error})") from error
    result: dict[str, Any] = orjson.loads(_validate(canonical))
    return result


@lru_cache(maxsize=4096)
def _validate(canonical: bytes) -> bytes:
    document = orjson.loads(canonical)
    kind = document.get("resourceType")
    if kind not in EMITTED:
        raise ResourceBuildError(f"{kind} is not a resource this service emits")
    # fhir.resources models are imported on first use (the start-up warm-up does it in the background).
    model: Any = getattr(importlib.import_module(EMITTED[kind]), kind)
    try:
        instance = model.model_validate(document)
    except ValidationError as error:
        raise ResourceBuildError(f"not a valid FHIR {document['resourceType']} ({_first_problem(error)})") from error
    return orjson.dumps(instance.model_dump(mode="json", exclude_none=True))


def _first_problem(error: ValidationError) -> str:
    """Which field is wrong, in FHIR path form (e.g. "category: Input should be a valid list"), never the value."""
    problems = error.errors()
    first = problems[0]
    path = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function-")) or "resource"
    more = f"; {len(problems) - 1} more" if len(problems) > 1 else ""
    return f"{path}: {first['msg']}{more}"


def _json_number(value: Decimal) -> int | float:
    # Doses are whole or short decimals after rounding; JSON has no Decimal type.
    return int(value) if value == value.to_integral_value() else float(value)
