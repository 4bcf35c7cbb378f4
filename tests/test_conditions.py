"""Condition codes -> underlying disease and findings; refuted and resolved conditions never count."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec

from cds_service.facts import conditions
from cds_service.facts.conditions import ClinicalContext, Finding, Underlying
from cds_service.fhir.model import Condition, MedicationRequest
from cds_service.rulepack import default_pack
from tests.clinical_builders import iso
from tests.conftest import FIXED_NOW

ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def extract_clinical_context(conditions_: Any, medications: Any, *, now: Any) -> ClinicalContext:
    return conditions.extract_clinical_context(conditions_, medications, now=now, codes=default_pack().conditions)


def condition(code: str, system: str = ICD, clinical: str = "active", verification: str = "confirmed") -> Condition:
    return msgspec.convert(
        {
            "resourceType": "Condition",
            "id": code,
            "clinicalStatus": {"coding": [{"code": clinical}]},
            "verificationStatus": {"coding": [{"code": verification}]},
            "code": {"coding": [{"system": system, "code": code}]},
        },
        type=Condition,
    )


def test_underlying_diseases_by_icd10_and_snomed() -> None:
    resources = [
        condition("M08.22"),
        condition("M06.1"),
        condition("55464009", "http://snomed.info/sct"),
        condition("B27.09"),
        condition("C83.30"),
        condition("A41.9"),
        condition("R16.2"),
    ]
    context = extract_clinical_context(resources, [], now=FIXED_NOW)
    assert set(context.underlying) == {
        Underlying.SJIA,
        Underlying.AOSD,
        Underlying.SLE,
        Underlying.EBV,
        Underlying.MALIGNANCY,
        Underlying.SEPSIS,
    }
    assert set(context.findings) == {Finding.HEPATOMEGALY, Finding.SPLENOMEGALY}


def test_drug_induced_lupus_benign_neoplasm_refuted_and_resolved_do_not_count() -> None:
    resources = [
        condition("M32.0"),
        condition("D36.9"),
        condition("M08.20", verification="refuted"),
        condition("A41.9", clinical="resolved"),
    ]
    context = extract_clinical_context(resources, [], now=FIXED_NOW)
    assert context.underlying == {}


def _order(name: str, days_ago: int, status: str = "active") -> MedicationRequest:
    document: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": name,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {"text": name},
        "authoredOn": iso(FIXED_NOW - timedelta(days=days_ago)),
    }
    return msgspec.convert(document, type=MedicationRequest)


def test_immunosuppression_long_term_recent_unknown_and_none() -> None:
    assert extract_clinical_context([], [_order("azathioprine 50 mg", 90)], now=FIXED_NOW).immunosuppression is True
    recent = extract_clinical_context([], [_order("methylprednisolone 1 g IV", 1)], now=FIXED_NOW)
    assert recent.immunosuppression is None and recent.immunosuppression_reason == "only-recent-immunosuppressants"
    assert extract_clinical_context([], [_order("paracetamol", 90)], now=FIXED_NOW).immunosuppression is False
    assert extract_clinical_context([], None, now=FIXED_NOW).immunosuppression is None
    stopped = extract_clinical_context([], [_order("azathioprine", 90, status="stopped")], now=FIXED_NOW)
    assert stopped.immunosuppression is False
