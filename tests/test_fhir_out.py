"""Everything the service emits is valid FHIR, including through the validation cache."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.cards.fhir_out import ResourceBuildError, validated, workup_service_request


def platelets(*, patient_id: str, encounter_id: str | None) -> dict[str, Any]:
    return workup_service_request(
        patient_id=patient_id, loinc="777-3", display="Platelets", text="Platelets", encounter_id=encounter_id
    )


def test_invalid_resources_are_refused_even_when_asked_twice() -> None:
    bad: dict[str, Any] = {"resourceType": "MedicationRequest", "status": "draft"}  # no intent, subject, medication
    for _ in range(2):
        with pytest.raises(ResourceBuildError, match="not a valid FHIR MedicationRequest"):
            validated(bad)
    with pytest.raises(ResourceBuildError, match="not a resource this service emits"):
        validated({"resourceType": "Patient"})


def test_patient_ids_are_checked_and_substituted_into_a_validated_template() -> None:
    first = workup_service_request(
        patient_id="pat-1", loinc="777-3", display="Platelets", text="Platelets", encounter_id="enc.9"
    )
    second = workup_service_request(
        patient_id="pat-2", loinc="777-3", display="Platelets", text="Platelets", encounter_id=None
    )
    assert first["subject"] == {"reference": "Patient/pat-1"}
    assert first["encounter"] == {"reference": "Encounter/enc.9"}
    assert second["subject"] == {"reference": "Patient/pat-2"} and "encounter" not in second
    ServiceRequest.model_validate(first)
    ServiceRequest.model_validate(second)
    first["code"]["text"] = "changed"  # callers get their own copy: the cache cannot be corrupted
    again = workup_service_request(
        patient_id="pat-1", loinc="777-3", display="Platelets", text="Platelets", encounter_id=None
    )
    assert again["code"]["text"] == "Platelets"
    for bad_id in ("has space", "x" * 65, "semi;colon", ""):
        with pytest.raises(ResourceBuildError, match="not a valid FHIR id"):
            workup_service_request(
                patient_id=bad_id, loinc="777-3", display="Platelets", text="Platelets", encounter_id=None
            )
