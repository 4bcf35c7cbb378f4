"""The oracle checked on hand-written patients built from the papers' own numbers, both sides of each boundary.

Resources are written by hand here (not by the generator) so that these tests check the oracle alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest

from tests.independent.fhir_facts import read_facts
from tests.independent.oracle import evaluate, hscore_range, ms_score_range

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
PID = "p1"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"

LOINC_CODES = {
    "ferritin": "2276-4",
    "platelets": "777-3",
    "wbc": "6690-2",
    "anc": "751-8",
    "hemoglobin": "718-7",
    "ast": "1920-8",
    "alt": "1742-6",
    "ldh": "2532-0",
    "tg": "2571-8",
    "tg-molar": "14927-8",
    "fibrinogen": "3255-7",
    "ddimer": "48065-7",
    "inr": "6301-6",
    "esr": "4537-7",
    "temperature": "8310-5",
}
DEFAULT_UNITS = {
    "ferritin": "ng/mL",
    "platelets": "10*3/uL",
    "wbc": "10*3/uL",
    "anc": "10*3/uL",
    "hemoglobin": "g/dL",
    "ast": "U/L",
    "alt": "U/L",
    "ldh": "U/L",
    "tg": "mg/dL",
    "tg-molar": "mmol/L",
    "fibrinogen": "mg/dL",
    "ddimer": "ng/mL{FEU}",
    "inr": "{INR}",
    "esr": "mm/h",
    "temperature": "Cel",
}


def at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat()


def obs(kind: str, value: float, unit: str | None = None, *, hours_ago: float = 2, **extra: Any) -> dict[str, Any]:
    quantity: dict[str, Any] = {
        "value": value,
        "system": "http://unitsofmeasure.org",
        "code": unit or DEFAULT_UNITS[kind],
    }
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": extra.pop("loinc", LOINC_CODES[kind])}]},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": at(hours_ago),
        "valueQuantity": quantity,
    }
    if "comparator" in extra:
        quantity["comparator"] = extra.pop("comparator")
    if "uln" in extra:
        resource["referenceRange"] = [{"high": dict(quantity, value=extra.pop("uln"))}]
    resource.update(extra)
    return resource


def cond(
    code: str, system: str = ICD, clinical: str | None = "active", verification: str = "confirmed"
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{PID}"},
        "verificationStatus": {"coding": [{"code": verification}]},
    }
    if clinical is not None:
        resource["clinicalStatus"] = {"coding": [{"code": clinical}]}
    return resource


def med(rxnorm: str, name: str, days_ago: float, status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": rxnorm, "display": name}]
        },
        "subject": {"reference": f"Patient/{PID}"},
        "authoredOn": (NOW - timedelta(days=days_ago)).isoformat(),
    }


def patient(years: int = 10, days: int = 30) -> dict[str, Any]:
    birth = NOW.date().replace(year=NOW.year - years) - timedelta(days=days)
    return {"resourceType": "Patient", "id": PID, "birthDate": birth.isoformat()}


def sets(*resources: dict[str, Any]) -> dict[str, str]:
    return evaluate(list(resources), PID, NOW).sets


SJIA = cond("M08.20")
FEVER = obs("temperature", 39.0)


# ------------------------------------------------------------------------ 2016 EULAR/ACR/PRINTO (Ravelli 2016)


@pytest.mark.parametrize(("ferritin", "expected"), [(684, "not met"), (684.1, "met"), (685, "met")])
def test_eular_ferritin_must_exceed_684(ferritin: float, expected: str) -> None:
    result = sets(patient(), SJIA, FEVER, obs("ferritin", ferritin), obs("platelets", 150), obs("ast", 60))
    assert result["eular2016"] == expected


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (obs("platelets", 181), "met"),
        (obs("platelets", 182), "not met"),
        (obs("platelets", 181000, "/uL"), "met"),
        (obs("ast", 48), "not met"),
        (obs("ast", 49), "met"),
        (obs("ast", 0.8, "ukat/L"), "not met"),  # 48 U/L
        (obs("tg", 156), "not met"),
        (obs("tg", 157), "met"),
        (obs("tg-molar", 1.76), "not met"),  # 155.9 mg/dL
        (obs("tg-molar", 1.77), "met"),  # 156.8 mg/dL
        (obs("fibrinogen", 360), "met"),
        (obs("fibrinogen", 361), "not met"),
        (obs("fibrinogen", 3.6, "g/L", loinc="48664-7"), "met"),
        (obs("fibrinogen", 3.61, "g/L", loinc="48664-7"), "not met"),
    ],
)
def test_eular_second_item_boundaries(item: dict[str, Any], expected: str) -> None:
    # ferritin > 684 and exactly one other item met; the probed item decides "any 2 of 4"
    probed = item["code"]["coding"][0]["code"]
    others = {
        "777-3": obs("platelets", 300),
        "1920-8": obs("ast", 80),
        "2571-8": obs("tg", 100),
        "3255-7": obs("fibrinogen", 400),
    }
    if probed == "1920-8":
        others["777-3"] = obs("platelets", 150)
    kind = {"14927-8": "2571-8", "48664-7": "3255-7"}.get(probed, probed)
    del others[kind]
    result = sets(patient(), SJIA, FEVER, obs("ferritin", 1000), *others.values(), item)
    assert result["eular2016"] == expected


@pytest.mark.parametrize(
    ("temperature", "expected"),
    [
        (obs("temperature", 37.9), "not applicable"),
        (obs("temperature", 38.0), "met"),
        (obs("temperature", 100.4, "[degF]"), "met"),  # = 38.0 degC
        (obs("temperature", 100.3, "[degF]"), "not applicable"),
        (obs("temperature", 39.0, hours_ago=25), "unknown"),  # outside the 24 h window: febrile unknown
        (obs("temperature", 39.0, loinc="39106-0"), "unknown"),  # skin temperature is not counted
    ],
)
def test_eular_needs_a_febrile_patient(temperature: dict[str, Any], expected: str) -> None:
    result = sets(patient(), SJIA, temperature, obs("ferritin", 1000), obs("platelets", 100), obs("ast", 80))
    assert result["eular2016"] == expected


def test_eular_population_is_still_disease() -> None:
    labs = (FEVER, obs("ferritin", 1000), obs("platelets", 100), obs("ast", 80))
    assert sets(patient(), *labs)["eular2016"] == "not applicable"
    assert sets(patient(30), cond("M06.1"), *labs)["eular2016"] == "met"
    assert sets(patient(), cond("201796004", SCT), *labs)["eular2016"] == "met"
    assert sets(patient(), cond("M08.20", verification="refuted"), *labs)["eular2016"] == "not applicable"
    assert sets(patient(), cond("M32.9"), *labs)["eular2016"] == "not applicable"


def test_eular_unknown_item_never_counts_as_absent() -> None:
    # ferritin > 684 and one item met, the others missing: 2 of 4 still reachable
    assert sets(patient(), SJIA, FEVER, obs("ferritin", 1000), obs("ast", 80))["eular2016"] == "unknown"


# ------------------------------------------------------------------------------------- NCT02780583 (the trial)


def test_trial_sjia_path_two_laboratory_criteria() -> None:
    met = sets(patient(), SJIA, obs("platelets", 262), obs("ast", 60))
    assert met["trial"] == "met"
    # one lab criterion: the three clinical criteria are unknown, so "3 of 7" stays reachable
    assert sets(patient(), SJIA, obs("platelets", 263), obs("ast", 60))["trial"] == "unknown"
    assert sets(patient(), SJIA, obs("platelets", 300), obs("ast", 59))["trial"] == "unknown"


def test_trial_sjia_path_three_combined_criteria() -> None:
    clinical = (cond("R56.9"), cond("R58"))
    labs = (obs("platelets", 300), obs("wbc", 4.0), obs("ast", 40), obs("fibrinogen", 300))
    assert sets(patient(), SJIA, *clinical, *labs)["trial"] == "met"  # WBC <= 4.0 plus two clinical
    labs_normal = (obs("platelets", 300), obs("wbc", 4.1), obs("ast", 40), obs("fibrinogen", 300))
    assert sets(patient(), SJIA, *clinical, *labs_normal)["trial"] == "unknown"  # hepatomegaly may be present


NORMAL_COUNTS = (obs("anc", 3.0), obs("platelets", 250), obs("hemoglobin", 12))


def _trial_other(*items: dict[str, Any], ferritin: float = 2500) -> dict[str, str]:
    """Path 2 with ferritin > 2,000; normal blood counts unless the items include counts."""
    counted = {r["code"]["coding"][0]["code"] for r in items if r["resourceType"] == "Observation"}
    counts = () if counted & {"751-8", "777-3", "718-7"} else NORMAL_COUNTS
    return sets(patient(40), obs("ferritin", ferritin), *counts, *items)


SPLEEN = cond("R16.1")
NORMAL_ENZYMES = (obs("alt", 30, uln=40), obs("ast", 30, uln=40))
NORMAL_COAG = (obs("fibrinogen", 300), obs("inr", 1.0), obs("ddimer", 200))


def test_trial_other_path_ferritin_must_exceed_2000() -> None:
    items = (SPLEEN, obs("tg", 300), obs("temperature", 39.0), *NORMAL_ENZYMES, *NORMAL_COAG)
    assert _trial_other(*items, ferritin=2001)["trial"] == "met"
    assert _trial_other(*items, ferritin=2000)["trial"] == "not met"


@pytest.mark.parametrize(
    ("temperature", "expected"),
    [
        (obs("temperature", 101.0, "[degF]"), "met"),
        (obs("temperature", 100.9, "[degF]"), "not met"),
        (obs("temperature", 38.3), "not met"),  # 100.94 degF
        (obs("temperature", 38.34), "met"),  # 101.012 degF
    ],
)
def test_trial_other_path_fever_is_101_fahrenheit(temperature: dict[str, Any], expected: str) -> None:
    items = (SPLEEN, obs("tg", 300), temperature, *NORMAL_ENZYMES, *NORMAL_COAG)
    assert _trial_other(*items)["trial"] == expected


@pytest.mark.parametrize(
    ("triglycerides", "expected"),
    [
        (obs("tg", 265), "not met"),
        (obs("tg", 266), "met"),
        (obs("tg-molar", 2.99), "not met"),  # 264.8 mg/dL
        (obs("tg-molar", 3.0), "met"),  # 265.7 mg/dL
    ],
)
def test_trial_other_path_triglycerides(triglycerides: dict[str, Any], expected: str) -> None:
    items = (SPLEEN, triglycerides, obs("temperature", 39.0), *NORMAL_ENZYMES, *NORMAL_COAG)
    assert _trial_other(*items)["trial"] == expected


@pytest.mark.parametrize(
    ("enzymes", "expected"),
    [
        ((obs("alt", 121), obs("ast", 30, uln=40)), "met"),
        ((obs("alt", 120, uln=60), obs("ast", 30, uln=40)), "not met"),
        ((obs("alt", 81, uln=40), obs("ast", 30, uln=40)), "met"),  # > 2 x ULN
        ((obs("alt", 80, uln=40), obs("ast", 30, uln=40)), "not met"),
        ((obs("alt", 100), obs("ast", 30, uln=40)), "unknown"),  # ULN unknown, <= 120
    ],
)
def test_trial_other_path_transaminases(enzymes: tuple[dict[str, Any], ...], expected: str) -> None:
    items = (SPLEEN, obs("tg", 300), obs("temperature", 37.0), *enzymes, *NORMAL_COAG)
    assert _trial_other(*items)["trial"] == expected


@pytest.mark.parametrize(
    ("coagulation", "expected"),
    [
        ((obs("fibrinogen", 149), obs("inr", 1.0), obs("ddimer", 200)), "met"),
        ((obs("fibrinogen", 150), obs("inr", 1.0), obs("ddimer", 200)), "not met"),
        ((obs("fibrinogen", 300), obs("inr", 1.51), obs("ddimer", 200)), "met"),
        ((obs("fibrinogen", 300), obs("inr", 1.5), obs("ddimer", 200)), "not met"),
        ((obs("fibrinogen", 300), obs("inr", 1.0), obs("ddimer", 501, "ng/mL{DDU}")), "met"),
        ((obs("fibrinogen", 300), obs("inr", 1.0), obs("ddimer", 0.5, "ug/mL{FEU}")), "not met"),
    ],
)
def test_trial_other_path_coagulopathy(coagulation: tuple[dict[str, Any], ...], expected: str) -> None:
    items = (SPLEEN, obs("tg", 300), obs("temperature", 37.0), *NORMAL_ENZYMES, *coagulation)
    assert _trial_other(*items)["trial"] == expected


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ((obs("anc", 0.99), obs("platelets", 99), obs("hemoglobin", 12)), "met"),
        ((obs("anc", 1.0), obs("platelets", 99), obs("hemoglobin", 12)), "not met"),
        ((obs("anc", 999, "/uL"), obs("platelets", 300), obs("hemoglobin", 8.9)), "met"),
        ((obs("anc", 3.0), obs("platelets", 100000, "/mm3"), obs("hemoglobin", 8.9)), "not met"),
        ((obs("anc", 3.0), obs("platelets", 50), obs("hemoglobin", 90, "g/L")), "not met"),
    ],
)
def test_trial_other_path_bicytopenia(counts: tuple[dict[str, Any], ...], expected: str) -> None:
    items = (SPLEEN, obs("tg", 300), obs("temperature", 37.0), *NORMAL_ENZYMES, *NORMAL_COAG, *counts)
    assert _trial_other(*items)["trial"] == expected


def test_trial_population_age_and_malignancy() -> None:
    items = (SPLEEN, obs("tg", 300), obs("temperature", 39.0), obs("inr", 2.0))
    assert sets(patient(40), obs("ferritin", 5000), *items)["trial"] == "met"
    assert sets(patient(40), obs("ferritin", 5000), cond("C91.00"), *items)["trial"] == "not applicable"
    resolved_cancer = cond("C91.00", clinical="resolved")
    assert sets(patient(40), obs("ferritin", 5000), resolved_cancer, *items)["trial"] == "met"
    assert sets(patient(0, 360), obs("ferritin", 5000), *items)["trial"] == "not applicable"
    assert sets(patient(1, 0), obs("ferritin", 5000), *items)["trial"] == "met"


# ------------------------------------------------------------------------------------- HLH-2004 (Henter 2007)

HLH_ALL_MET = (
    obs("temperature", 38.5),
    SPLEEN,
    obs("hemoglobin", 89, "g/L"),
    obs("platelets", 99),
    obs("tg-molar", 3.0),
    obs("ferritin", 500),
)


def test_hlh_five_items_met() -> None:
    assert sets(patient(40), *HLH_ALL_MET)["hlh2004"] == "met"


@pytest.mark.parametrize(
    ("replacement", "expected"),
    [
        (obs("temperature", 38.4), "unknown"),
        (obs("ferritin", 499), "unknown"),
        (obs("tg-molar", 2.99), "unknown"),
        (obs("tg", 265), "met"),  # the paper states >= 265 mg/dL alongside >= 3.0 mmol/L
        (obs("hemoglobin", 90, "g/L"), "unknown"),
        (obs("platelets", 100), "unknown"),
    ],
)
def test_hlh_each_item_at_its_threshold(replacement: dict[str, Any], expected: str) -> None:
    code = replacement["code"]["coding"][0]["code"]
    same_analyte = {code, "14927-8", "2571-8"} if code in ("14927-8", "2571-8") else {code}
    resources = [r for r in HLH_ALL_MET if r.get("code", {}).get("coding", [{}])[0].get("code") not in same_analyte]
    assert sets(patient(40), *resources, replacement)["hlh2004"] == expected


def test_hlh_not_met_only_when_five_cannot_be_reached() -> None:
    normal = (obs("temperature", 37.0), obs("hemoglobin", 12), obs("platelets", 200), obs("anc", 3.0))
    normal_lipids = (obs("tg", 100), obs("fibrinogen", 300))
    assert sets(patient(40), *normal, *normal_lipids, obs("ferritin", 499))["hlh2004"] == "not met"
    # ferritin met: 1 met + splenomegaly, haemophagocytosis, NK, sCD25 unknown = 5 reachable
    assert sets(patient(40), *normal, *normal_lipids, obs("ferritin", 500))["hlh2004"] == "unknown"
    # malignancy rules out the haemophagocytosis criterion ("No evidence of malignancy")
    with_cancer = (cond("C83.30"), *normal, *normal_lipids, obs("ferritin", 500))
    assert sets(patient(40), *with_cancer)["hlh2004"] == "not met"


@pytest.mark.parametrize(("days_old", "expected"), [(27, "met"), (28, "unknown")])
def test_hlh_infant_hemoglobin_threshold(days_old: int, expected: str) -> None:
    newborn = {"resourceType": "Patient", "id": PID, "birthDate": (NOW.date() - timedelta(days=days_old)).isoformat()}
    resources = [r for r in HLH_ALL_MET if r is not HLH_ALL_MET[2]] + [obs("hemoglobin", 95, "g/L")]
    resources = [r for r in resources if r is not HLH_ALL_MET[3]] + [obs("platelets", 50), obs("anc", 3.0)]
    assert sets(newborn, *resources)["hlh2004"] == expected


# ----------------------------------------------------------------------------------------- HScore (Fardet 2014)


def _hscore(*resources: dict[str, Any]) -> tuple[int, int]:
    return hscore_range(read_facts([patient(40), *resources], PID, NOW))


def test_hscore_full_example_from_the_table() -> None:
    # HIV 18 + >39.4 degC 49 + both organs 38 + 3 lineages 34 + ferritin > 6000 50 + TG > 4 mmol/L 64
    # + fibrinogen <= 2.5 g/L 30 + AST >= 30 19 = 302; marrow unknown adds up to 35.
    resources = (
        cond("B20"),
        obs("temperature", 39.5),
        cond("R16.0"),
        cond("R16.1"),
        obs("hemoglobin", 9.2),
        obs("wbc", 5.0),
        obs("platelets", 110),
        obs("ferritin", 6001),
        obs("tg-molar", 4.01),
        obs("fibrinogen", 2.5, "g/L", loinc="48664-7"),
        obs("ast", 30),
    )
    assert _hscore(*resources) == (302, 337)
    assert sets(patient(40), *resources)["hscore"] == "met"


@pytest.mark.parametrize(
    ("resource", "points"),
    [
        (obs("temperature", 38.39), 0),
        (obs("temperature", 38.4), 33),
        (obs("temperature", 39.4), 33),
        (obs("temperature", 39.41), 49),
        (obs("temperature", 101.12, "[degF]"), 33),  # = 38.4 degC
        (obs("temperature", 101.1, "[degF]"), 0),  # 38.39 degC
        (obs("ferritin", 1999), 0),
        (obs("ferritin", 2000), 35),
        (obs("ferritin", 6000), 35),
        (obs("ferritin", 6001), 50),
        (obs("tg-molar", 1.49), 0),
        (obs("tg-molar", 1.5), 44),
        (obs("tg-molar", 4), 44),
        (obs("tg-molar", 4.01), 64),
        (obs("tg", 132.86), 44),  # 1.50006 mmol/L
        (obs("tg", 132.85), 0),  # 1.49994 mmol/L
        (obs("fibrinogen", 250), 30),
        (obs("fibrinogen", 251), 0),
        (obs("ast", 29), 0),
        (obs("ast", 30), 19),
    ],
)
def test_hscore_band_boundaries(resource: dict[str, Any], points: int) -> None:
    # everything else unknown except a non-immunosuppressant order: the lowest score is this item's points
    low, _ = _hscore(med("161", "Acetaminophen", 3), resource)
    assert low == points


@pytest.mark.parametrize(
    ("orders", "expected"),
    [
        ((med("8640", "Prednisone", 30),), (18, 18)),
        ((med("8640", "Prednisone", 29),), (0, 18)),
        ((med("8640", "Prednisone", 90, status="stopped"),), (0, 0)),
        ((med("161", "Acetaminophen", 90),), (0, 0)),
        ((), (0, 18)),
    ],
)
def test_hscore_known_immunosuppression(orders: tuple[dict[str, Any], ...], expected: tuple[int, int]) -> None:
    resources = (obs("temperature", 37.0), *orders)
    low, high = _hscore(*resources)
    # temperature 0; organomegaly 0..38; cytopenias 0..34; ferritin 0..50; TG 0..64; fibrinogen 0..30;
    # AST 0..19; marrow 0..35
    assert (low, high - (38 + 34 + 50 + 64 + 30 + 19 + 35)) == expected


def test_hscore_adults_only() -> None:
    high_score = [cond("B20"), obs("temperature", 40), cond("R16.2"), obs("ferritin", 9000), obs("tg-molar", 5)]
    high_score += [obs("fibrinogen", 100), obs("ast", 100), obs("hemoglobin", 8), obs("wbc", 2), obs("platelets", 50)]
    assert sets(patient(18, 0), *high_score)["hscore"] == "met"
    assert sets(patient(17, 364), *high_score)["hscore"] == "not applicable"


# ---------------------------------------------------------------------------------------- MS score (Minoia 2019)


def test_ms_score_formula() -> None:
    resources = (
        cond("R56.9"),
        cond("R58"),
        obs("platelets", 100),
        obs("ldh", 1000),
        obs("fibrinogen", 150),
        obs("ferritin", 10000),
    )
    bounds = ms_score_range(read_facts([patient(), *resources], PID, NOW))
    # 2.44 + 1.54 - 0.3 + 1.0 - 0.6 + 1.0 = 5.08; active arthritis unknown: minus 1.30
    assert bounds == (Fraction("3.78"), Fraction("5.08"))


def test_ms_score_lowest_bound_on_the_cutoff() -> None:
    # PLT 700, LDH 100, fibrinogen 700 mg/dL, CNS and haemorrhage coded, arthritis unknown:
    # lowest = -2.1 + 0.1 - 2.8 + 2.44 + 1.54 - 1.30 + 0.0001 * ferritin = -2.12 + 0.0001 * ferritin
    resources = [SJIA, FEVER, cond("R40.20"), cond("R58"), obs("platelets", 700), obs("ldh", 100)]
    resources.append(obs("fibrinogen", 7.0, "g/L", loinc="48664-7"))
    assert sets(patient(), *resources, obs("ferritin", 200))["ms-score"] == "met"  # exactly -2.1
    assert sets(patient(), *resources, obs("ferritin", 199))["ms-score"] == "unknown"


def test_ms_score_highest_bound_on_the_cutoff() -> None:
    # PLT 1200, LDH 200, fibrinogen 1000 mg/dL, no finding coded (CNS and haemorrhage may be present):
    # highest = -3.6 + 0.2 - 4.0 + 2.44 + 1.54 + 0.0001 * ferritin = -3.42 + 0.0001 * ferritin
    resources = (SJIA, FEVER, obs("platelets", 1200), obs("ldh", 200), obs("fibrinogen", 1000))
    assert sets(patient(), *resources, obs("ferritin", 13199))["ms-score"] == "not met"
    assert sets(patient(), *resources, obs("ferritin", 13200))["ms-score"] == "unknown"  # highest exactly -2.1


def test_ms_score_needs_febrile_still_disease() -> None:
    resources = (obs("platelets", 100), obs("ldh", 2000), obs("fibrinogen", 100), obs("ferritin", 30000))
    assert sets(patient(), SJIA, obs("temperature", 37.5), *resources)["ms-score"] == "not applicable"
    assert sets(patient(), FEVER, *resources)["ms-score"] == "not applicable"
    assert sets(patient(), SJIA, *resources)["ms-score"] == "unknown"


def test_ms_score_missing_laboratory_value_is_unknown() -> None:
    resources = (SJIA, FEVER, obs("platelets", 100), obs("ldh", 2000), obs("ferritin", 30000))
    assert sets(patient(), *resources)["ms-score"] == "unknown"
    assert sets(patient(), *resources, obs("fibrinogen", 100))["ms-score"] == "met"


# ------------------------------------------------------------------------------- ferritin:ESR (Eloseily 2019)


@pytest.mark.parametrize(
    ("ferritin", "esr", "expected"),
    [(430, 20, "met"), (429.9, 20, "not met"), (431, 20, "met"), (50, 0, "met"), (0, 0, "unknown")],
)
def test_ferritin_esr_ratio(ferritin: float, esr: float, expected: str) -> None:
    assert sets(patient(), SJIA, obs("ferritin", ferritin), obs("esr", esr))["ferritin-esr"] == expected


def test_ferritin_esr_population() -> None:
    assert sets(patient(), obs("ferritin", 5000), obs("esr", 10))["ferritin-esr"] == "not applicable"


# ------------------------------------------------------------------------- sepsis with MAS features (narrative)


def test_sepsis_features() -> None:
    items = (obs("inr", 1.51), obs("ast", 121))
    assert sets(patient(50), cond("A41.9"), obs("ferritin", 2001), *items)["sepsis-mas-features"] == "met"
    assert sets(patient(50), cond("A41.9"), obs("ferritin", 2000), *items)["sepsis-mas-features"] == "not met"
    assert sets(patient(50), obs("ferritin", 2001), *items)["sepsis-mas-features"] == "not applicable"
    assert sets(patient(50), cond("76571007", SCT), obs("ferritin", 2001), *items)["sepsis-mas-features"] == "met"
    resolved = cond("A41.9", clinical="resolved")
    assert sets(patient(50), resolved, obs("ferritin", 2001), *items)["sepsis-mas-features"] == "not applicable"


# ------------------------------------------------------------------------------------------ card indicator


def test_indicator() -> None:
    assert evaluate([patient(40), obs("ferritin", 500)], PID, NOW).indicator == "warning"
    assert evaluate([patient(40), obs("ferritin", 499)], PID, NOW).indicator is None
    eular = [patient(), SJIA, FEVER, obs("ferritin", 1000), obs("platelets", 100), obs("ast", 80)]
    assert evaluate(eular, PID, NOW).indicator == "critical"
    ratio_only = [patient(), SJIA, obs("ferritin", 430), obs("esr", 10)]
    assert evaluate(ratio_only, PID, NOW).sets["ferritin-esr"] == "met"
    assert evaluate(ratio_only, PID, NOW).indicator == "warning"  # an adjunct set met, ferritin below 500
    ratio_not_met = [patient(), SJIA, obs("ferritin", 430), obs("esr", 30)]
    assert evaluate(ratio_not_met, PID, NOW).indicator is None
