"""FHIR resources this service emits, each validated with fhir.resources (R4B, identical to R4 for
MedicationRequest and ServiceRequest) before it leaves the service."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest as FhirMedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest as FhirServiceRequest
from pydantic import ValidationError

from cds_service.rules.dosing.calculator import ProtocolDose, format_amount

UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
SUBCUTANEOUS = {
    "coding": [{"system": SNOMED, "code": "34206005", "display": "Subcutaneous route"}],
    "text": "subcutaneous",
}
ANAKINRA_MEDICATION = {
    "coding": [
        {
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
            "code": "727711",
            "display": "0.67 ML anakinra 149 MG/ML Prefilled Syringe",
        },
        {"system": SNOMED, "code": "385549000", "display": "Anakinra (substance)"},
    ],
    "text": "anakinra (Kineret) 100 mg/0.67 mL prefilled syringe",
}


class ResourceBuildError(ValueError):
    pass


def protocol_dosage(dose: ProtocolDose) -> dict[str, Any]:
    n = format_amount
    return {
        "text": (
            f"anakinra {n(dose.per_dose_mg)} mg ({n(dose.volume_ml)} mL) subcutaneously every "
            f"{dose.interval_hours} hours ({n(dose.per_day_mg)} mg/day; NCT02780583 protocol, "
            f"{n(dose.weight.value)} kg, band {dose.band.label})"
        ),
        "timing": {"repeat": {"frequency": 1, "period": dose.interval_hours, "periodUnit": "h"}},
        "route": SUBCUTANEOUS,
        "doseAndRate": [
            {"doseQuantity": {"value": _json_number(dose.per_dose_mg), "unit": "mg", "system": UCUM, "code": "mg"}}
        ],
    }


def corrected_order(original: dict[str, Any], dose: ProtocolDose) -> dict[str, Any]:
    """The same MedicationRequest (same id and everything else) with the protocol dosage."""
    corrected = {**original, "dosageInstruction": [protocol_dosage(dose)]}
    return validated_medication_request(corrected)


def new_protocol_order(*, patient_id: str, dose: ProtocolDose, encounter_id: str | None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": ANAKINRA_MEDICATION,
        "subject": {"reference": f"Patient/{patient_id}"},
        "dosageInstruction": [protocol_dosage(dose)],
        "note": [{"text": "Suggested by MAS decision support per NCT02780583; added to corticosteroids."}],
    }
    if encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    return validated_medication_request(resource)


def validated_medication_request(resource: dict[str, Any]) -> dict[str, Any]:
    try:
        model = FhirMedicationRequest.model_validate(resource)
    except ValidationError as error:
        raise ResourceBuildError(f"not a valid FHIR MedicationRequest ({error.error_count()} problems)") from error
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return dumped


def _json_number(value: Decimal) -> int | float:
    # Doses are whole or short decimals after rounding; JSON has no Decimal type.
    return int(value) if value == value.to_integral_value() else float(value)


def workup_service_request(*, patient_id: str, loinc: str, display: str, encounter_id: str | None) -> dict[str, Any]:
    """A draft laboratory order for one missing MAS work-up test (LOINC-coded)."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{patient_id}"},
        "reasonCode": [{"text": "Macrophage activation syndrome work-up"}],
    }
    if encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    try:
        model = FhirServiceRequest.model_validate(resource)
    except ValidationError as error:
        raise ResourceBuildError(f"not a valid FHIR ServiceRequest ({error.error_count()} problems)") from error
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return dumped
