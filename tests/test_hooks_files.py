"""The served prefetch queries ask for exactly the rule pack's codes (expanded from the pack at load, so they
cannot drift), and a handler reading an undeclared prefetch key fails loudly."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.facts.analytes import A
from cds_service.fhir.prefetch import KeyData, KeyStatus, ServiceData, UndeclaredPrefetchKeyError
from cds_service.registry import load_registry
from cds_service.rulepack import default_pack
from cds_service.settings import PROJECT_ROOT

PACK = default_pack()


def loinc_query(*analytes: A) -> str:
    return PACK.catalogue.loinc_query(analytes)


def hooks_file(service_id: str) -> dict[str, Any]:
    service = load_registry(PROJECT_ROOT / "hooks").get(service_id)
    assert service is not None
    return {"prefetch": {spec.key: spec.template for spec in service.prefetch}}


def test_every_body_temperature_site_is_fetched() -> None:
    vitals = hooks_file("mas-screen")["prefetch"]["vitals"]
    for code in ("8310-5", "8331-1", "8332-9", "8328-7", "8333-7", "8329-5"):  # issue #10: all sites
        assert f"http://loinc.org|{code}" in vitals


def test_every_code_of_every_analyte_value_set_is_fetched_by_mas_screen() -> None:
    prefetch = hooks_file("mas-screen")["prefetch"]
    queried = prefetch["labs"] + prefetch["vitals"]
    for analyte in PACK.catalogue.analytes.values():
        if analyte.key == "egfr":
            continue  # not read by the screen
        for code in analyte.codes:
            assert f"http://loinc.org|{code}" in queried, (analyte.key, code)


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
