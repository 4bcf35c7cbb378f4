"""The shipped hooks files agree with the code: prefetch codes come from the analyte catalogue, and a
handler reading an undeclared prefetch key fails loudly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cds_service.facts.analytes import A, loinc_query
from cds_service.fhir.prefetch import KeyData, KeyStatus, ServiceData, UndeclaredPrefetchKeyError
from cds_service.settings import PROJECT_ROOT


def hooks_file(service_id: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((PROJECT_ROOT / "hooks" / f"{service_id}.json").read_text())
    return document


@pytest.mark.parametrize(
    ("key", "analytes"),
    [
        ("weights", (A.WEIGHT,)),
        ("heights", (A.HEIGHT,)),
        ("safety_labs", (A.CREATININE, A.ANC)),
    ],
)
def test_anakinra_prefetch_codes_are_the_catalogue_codes(key: str, analytes: tuple[A, ...]) -> None:
    template = hooks_file("anakinra-dose")["prefetch"][key]
    assert f"code={loinc_query(*analytes)}&" in template


def test_reading_an_undeclared_key_raises() -> None:
    data = ServiceData({"patient": KeyData("patient", KeyStatus.NO_DATA)})
    assert data["patient"].status is KeyStatus.NO_DATA
    with pytest.raises(UndeclaredPrefetchKeyError):
        data["labs"]


def test_mas_screen_prefetch_codes_are_the_catalogue_codes() -> None:
    prefetch = hooks_file("mas-screen")["prefetch"]
    labs = (
        A.FERRITIN,
        A.PLATELETS,
        A.WBC,
        A.ANC,
        A.HEMOGLOBIN,
        A.AST,
        A.ALT,
        A.LDH,
        A.TRIGLYCERIDES,
        A.FIBRINOGEN,
        A.DDIMER_FEU,
        A.DDIMER_DDU,
        A.INR,
        A.PT,
        A.ESR,
        A.CRP,
        A.CREATININE,
        A.BILIRUBIN,
    )
    assert f"code={loinc_query(*labs)}&" in prefetch["labs"]
    assert f"code={loinc_query(A.TEMPERATURE, A.WEIGHT, A.HEIGHT)}&" in prefetch["vitals"]
