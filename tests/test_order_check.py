"""Order check boundaries: 100 mg/dose, daily caps, mg/kg/day, 20 % under-dose, interval, route."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from cds_service.facts.medications import DrugMatch, match_drug, read_drafted_dose
from cds_service.fhir.model import CodeableConcept, MedicationRequest
from cds_service.rulepack import default_pack
from cds_service.rules.dosing.calculator import DoseNotCalculated, ProtocolDose, calculate_protocol_dose
from cds_service.rules.dosing.order_check import Concern, OrderCheck, check_drafted_order
from tests.clinical_builders import anakinra_order
from tests.test_dose_calculator import NOW, RULES, aged, kg


def protocol(weight: str, years: int) -> ProtocolDose:
    result = calculate_protocol_dose(weight=kg(weight), patient=aged(years), now=NOW, rules=RULES)
    assert isinstance(result, ProtocolDose)
    return result


PACK = default_pack()


def match_anakinra(concepts: list[CodeableConcept | None]) -> DrugMatch:
    return match_drug(PACK.drugs.anakinra, concepts)


def match_tnf_inhibitor(concepts: list[CodeableConcept | None]) -> DrugMatch:
    return match_drug(PACK.drugs.tnf_inhibitors, concepts)


def check(order: dict[str, Any], dose: ProtocolDose | DoseNotCalculated) -> OrderCheck:
    typed = msgspec.convert(order, type=MedicationRequest)
    return check_drafted_order(
        drafted=read_drafted_dose(typed, typed.medicationCodeableConcept, PACK.drugs),
        protocol=dose,
        rules=PACK.protocol,
        product=PACK.product,
        underdose_tolerance=Decimal("0.2"),
    )


def codes(result: OrderCheck) -> set[str]:
    return {finding.code for finding in result.findings}


def test_correct_orders_have_no_findings() -> None:
    assert check(anakinra_order(100, every_hours=12), protocol("40", 12)).findings == ()
    assert check(anakinra_order(100, every_hours=6), protocol("90", 40)).findings == ()
    assert check(anakinra_order(51, every_hours=6), protocol("41", 12)).findings == ()


def test_per_dose_100_is_allowed_and_101_is_an_overdose() -> None:
    dose = protocol("90", 40)
    assert "over-per-dose-cap" not in codes(check(anakinra_order(100, every_hours=6), dose))
    result = check(anakinra_order(101, every_hours=6), dose)
    assert {"over-per-dose-cap", "over-daily-cap"} <= codes(result)
    assert result.overdose


def test_daily_cap_of_the_child_band() -> None:
    dose = protocol("30", 8)  # 300 mg/day by weight, capped at 200
    result = check(anakinra_order(100, every_hours=6), dose)  # 400 mg/day
    assert "over-daily-cap" in codes(result)
    assert "wrong-interval" in codes(result)


def test_above_mg_per_kg_is_an_overdose_even_under_the_caps() -> None:
    dose = protocol("41", 30)  # 205 mg/day exactly
    assert codes(check(anakinra_order(51, every_hours=6), dose)) == set()  # 204 mg/day
    result = check(anakinra_order(52, every_hours=6), dose)  # 208 mg/day
    assert codes(result) == {"over-mg-per-kg"}
    assert result.overdose


def test_under_dose_by_exactly_20_percent_passes_and_more_warns() -> None:
    dose = protocol("40", 12)  # 200 mg/day
    assert codes(check(anakinra_order(80, every_hours=12), dose)) == set()  # 160 = -20 %
    result = check(anakinra_order(79, every_hours=12), dose)  # 158 = -21 %
    assert codes(result) == {"under-dose"}
    assert not result.overdose


def test_wrong_interval_for_the_band_warns() -> None:
    assert codes(check(anakinra_order(100, every_hours=12), protocol("90", 40))) >= {"wrong-interval"}
    assert "wrong-interval" in codes(check(anakinra_order(50, every_hours=6), protocol("20", 6)))


@pytest.mark.parametrize(("code", "ok_for_child"), [("BID", True), ("Q12H", True), ("QID", False), ("QD", False)])
def test_timing_codes(code: str, ok_for_child: bool) -> None:
    result = check(anakinra_order(100, timing_code=code), protocol("40", 12))
    assert ("wrong-interval" not in codes(result)) is ok_for_child


def test_ml_doses_are_converted_at_100_mg_per_0_67_ml() -> None:
    result = check(anakinra_order(0.67, "mL", every_hours=12), protocol("40", 12))
    assert result.drafted.per_dose_mg == Decimal(100)
    assert result.findings == ()
    over = check(anakinra_order(0.68, "mL", every_hours=12), protocol("40", 12))
    assert "over-per-dose-cap" in codes(over)


def test_unverifiable_dose_units_say_so() -> None:
    result = check(anakinra_order(1, "tablet", every_hours=12), protocol("40", 12))
    assert "dose-unreadable" in codes(result)
    assert "neither mg nor mL" in next(f.text for f in result.findings if f.code == "dose-unreadable")


def test_a_count_of_syringes_is_read_only_for_the_coded_100_mg_syringe() -> None:
    """The official sandbox sends "1 {pill}" of RxNorm 727711 (the 100 mg/0.67 mL syringe): unambiguous, 100 mg.
    The same count of an order named only "anakinra" (no product code) stays unverifiable."""
    coded = check(anakinra_order(1, "{pill}", every_hours=12), protocol("40", 12))
    assert coded.drafted.per_dose_mg == 100 and codes(coded) == set()
    text_only = anakinra_order(1, "{syringe}", every_hours=12)
    text_only["medicationCodeableConcept"] = {"text": "anakinra"}
    result = check(text_only, protocol("40", 12))
    assert "dose-unreadable" in codes(result) and result.drafted.per_dose_mg is None


def test_route_not_subcutaneous_is_info() -> None:
    result = check(anakinra_order(100, every_hours=12, route="intravenous"), protocol("40", 12))
    assert [(f.code, f.concern) for f in result.findings] == [("not-subcutaneous", Concern.INFO)]


def test_without_weight_absolute_caps_still_apply() -> None:
    missing = DoseNotCalculated("no usable body weight on record", "a current body weight")
    fine = check(anakinra_order(100, every_hours=6), missing)
    assert codes(fine) == {"no-protocol-dose"}
    assert not fine.overdose
    over = check(anakinra_order(120, every_hours=6), missing)
    assert {"over-per-dose-cap", "over-daily-cap"} <= codes(over)


def _concept(**fields: Any) -> CodeableConcept:
    return msgspec.convert(fields, type=CodeableConcept)


@pytest.mark.parametrize(
    "concept",
    [
        {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "727711"}]},
        {"coding": [{"system": "http://snomed.info/sct", "code": "385549000"}]},
        {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "66658-234-07"}]},
        {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "66658023428"}]},
        {"coding": [{"system": "http://www.whocc.no/atc", "code": "L04AC03"}]},
        {"text": "Kineret 100 mg/0.67 mL syringe"},
        {"coding": [{"system": "urn:local", "code": "123", "display": "ANAKINRA inj"}]},
    ],
)
def test_anakinra_is_recognised_by_each_code_system_and_by_name(concept: dict[str, Any]) -> None:
    assert match_anakinra([_concept(**concept)]).matched


def test_other_drugs_are_not_anakinra() -> None:
    assert not match_anakinra([_concept(text="tocilizumab")]).matched
    assert not match_anakinra(
        [_concept(coding=[{"system": "http://hl7.org/fhir/sid/ndc", "code": "66658-999-07"}])]
    ).matched
    assert match_tnf_inhibitor([_concept(text="Etanercept 50 mg")]).matched
    assert match_tnf_inhibitor([_concept(coding=[{"system": "http://www.whocc.no/atc", "code": "L04AB04"}])]).matched
    assert not match_tnf_inhibitor([_concept(text="anakinra")]).matched


def test_stale_weight_still_checks_absolute_caps() -> None:
    stale = calculate_protocol_dose(weight=kg("60", ago=timedelta(days=40)), patient=aged(40), now=NOW, rules=RULES)
    assert isinstance(stale, DoseNotCalculated)
    assert "over-per-dose-cap" in codes(check(anakinra_order(150, every_hours=6), stale))


SUBCUTANEOUS_AS_EHRS_WRITE_IT = [
    {"text": "SubQ"},  # issue #10: was read as "not subcutaneous" and drew a route warning
    {"text": "subcut"},
    {"text": "SC"},
    {"text": "s.c."},
    {"text": "Subcutaneous"},
    {"coding": [{"code": "SubQ"}]},  # a bare code without a system is read as its spelling
    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration", "code": "SQ"}]},
    {"coding": [{"system": "http://snomed.info/sct", "code": "34206005"}]},
]


@pytest.mark.parametrize("route", SUBCUTANEOUS_AS_EHRS_WRITE_IT, ids=lambda r: str(r.get("text") or r["coding"][0]))
def test_every_written_form_of_subcutaneous_is_subcutaneous(route: dict[str, Any]) -> None:
    order = anakinra_order(100, every_hours=12)
    order["dosageInstruction"][0]["route"] = route
    result = check(order, protocol("40", 12))
    assert result.drafted.subcutaneous is True
    assert "not-subcutaneous" not in codes(result)


@pytest.mark.parametrize(
    "route",
    [
        {"text": "IV"},
        {"text": "subconjunctival"},
        {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]},
    ],
    ids=["IV", "subconjunctival", "snomed-intravenous"],
)
def test_other_routes_draw_the_route_note(route: dict[str, Any]) -> None:
    order = anakinra_order(100, every_hours=12)
    order["dosageInstruction"][0]["route"] = route
    assert "not-subcutaneous" in codes(check(order, protocol("40", 12)))
