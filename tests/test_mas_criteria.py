"""Every threshold of every MAS criteria set, on both sides of its boundary, with unknowns kept unknown."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cds_service.facts.analytes import A
from cds_service.facts.conditions import Finding, Underlying
from cds_service.rules.mas import eular2016, ferritin_esr, hlh2004, hscore, ms_score, sepsis_features, trends, trial
from cds_service.rules.mas.common import Status
from cds_service.rules.mas.screen import assess_mas
from tests.mas_inputs import criterion, inputs, m

MET, NOT, UNK = Status.MET, Status.NOT_MET, Status.UNKNOWN
SJIA = {Underlying.SJIA}


# --- NCT02780583, path without sJIA -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "values", "expected"),
    [
        ("ferritin", {A.FERRITIN: 2000}, NOT),
        ("ferritin", {A.FERRITIN: "2000.1"}, MET),
        ("bicytopenia", {A.PLATELETS: 50, A.HEMOGLOBIN: 12, A.ANC: "1.0"}, NOT),
        ("bicytopenia", {A.PLATELETS: 50, A.HEMOGLOBIN: 12, A.ANC: "0.99"}, MET),
        ("bicytopenia", {A.PLATELETS: 100, A.HEMOGLOBIN: "8.9", A.ANC: 3}, NOT),
        ("bicytopenia", {A.PLATELETS: "99.9", A.HEMOGLOBIN: "8.9", A.ANC: 3}, MET),
        ("bicytopenia", {A.PLATELETS: 50, A.HEMOGLOBIN: 9, A.ANC: 3}, NOT),
        ("bicytopenia", {A.PLATELETS: 50}, UNK),
        ("triglycerides", {A.TRIGLYCERIDES: 265}, NOT),
        ("triglycerides", {A.TRIGLYCERIDES: 266}, MET),
        ("transaminases", {A.ALT: 120, A.AST: 120}, NOT),
        ("transaminases", {A.ALT: 121, A.AST: 20}, MET),
        ("transaminases", {A.ALT: 20, A.AST: 121}, MET),
        ("transaminases", {A.ALT: 20}, UNK),
        ("fever", {A.TEMPERATURE: "38.3"}, NOT),  # 100.94 °F
        ("fever", {A.TEMPERATURE: "38.34"}, MET),  # 101.01 °F
        ("coagulopathy", {A.FIBRINOGEN: 150, A.INR: "1.5", A.DDIMER_FEU: 500}, NOT),
        ("coagulopathy", {A.FIBRINOGEN: 149, A.INR: "1.5", A.DDIMER_FEU: 500}, MET),
        ("coagulopathy", {A.FIBRINOGEN: 150, A.INR: "1.51", A.DDIMER_FEU: 500}, MET),
        ("coagulopathy", {A.FIBRINOGEN: 150, A.INR: "1.5", A.DDIMER_FEU: 501}, MET),
        ("coagulopathy", {A.FIBRINOGEN: 150, A.INR: "1.5", A.DDIMER_DDU: 501}, MET),
        ("coagulopathy", {A.FIBRINOGEN: 150, A.INR: "1.5"}, UNK),
    ],
)
def test_trial_path_without_sjia(key: str, values: dict[A, str | int], expected: Status) -> None:
    assert criterion(trial.evaluate(inputs(values)), key).status is expected


def test_transaminases_above_twice_the_upper_limit() -> None:
    result = trial.evaluate(inputs(series=[m(A.AST, 100, upper_limit="40"), m(A.ALT, 30)]))
    assert criterion(result, "transaminases").status is MET
    result = trial.evaluate(inputs(series=[m(A.AST, 80, upper_limit="40"), m(A.ALT, 30)]))
    assert criterion(result, "transaminases").status is NOT


def test_trial_needs_ferritin_and_three_items() -> None:
    three = {A.TRIGLYCERIDES: 300, A.ALT: 200, A.TEMPERATURE: 39}
    assert trial.evaluate(inputs({A.FERRITIN: 2001, **three})).outcome is MET
    assert trial.evaluate(inputs({A.FERRITIN: 2000, **three})).outcome is NOT
    assert trial.evaluate(inputs(three)).outcome is UNK  # ferritin missing: unknown, never "not met"
    two = {A.FERRITIN: 2001, A.TRIGLYCERIDES: 300, A.ALT: 200}
    assert trial.evaluate(inputs(two)).outcome is UNK  # splenomegaly etc. still unknown
    none_possible = {
        A.FERRITIN: 2001,
        A.TRIGLYCERIDES: 100,
        A.ALT: 20,
        A.AST: 20,
        A.TEMPERATURE: 37,
        A.PLATELETS: 200,
        A.HEMOGLOBIN: 13,
        A.ANC: 4,
        A.FIBRINOGEN: 300,
        A.INR: 1,
        A.DDIMER_FEU: 100,
    }
    assert trial.evaluate(inputs(none_possible)).outcome is NOT  # only splenomegaly unknown: 1 < 3


# --- NCT02780583, sJIA path (Ravelli 2005) -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("platelets", 262, MET),
        ("platelets", 263, NOT),
        ("ast", 59, NOT),
        ("ast", 60, MET),
        ("wbc", "4.0", MET),
        ("wbc", "4.1", NOT),
        ("fibrinogen", 250, MET),
        ("fibrinogen", 251, NOT),
    ],
)
def test_trial_sjia_path_items(key: str, value: str | int, expected: Status) -> None:
    analyte = {"platelets": A.PLATELETS, "ast": A.AST, "wbc": A.WBC, "fibrinogen": A.FIBRINOGEN}[key]
    assert criterion(trial.evaluate(inputs({analyte: value}, underlying=SJIA)), key).status is expected


def test_trial_sjia_path_two_labs_or_three_combined() -> None:
    assert trial.evaluate(inputs({A.PLATELETS: 200, A.AST: 80}, underlying=SJIA)).outcome is MET
    one_lab = {A.PLATELETS: 200, A.AST: 50, A.WBC: 9, A.FIBRINOGEN: 400}
    assert trial.evaluate(inputs(one_lab, underlying=SJIA)).outcome is UNK  # clinical items unknown
    coded = trial.evaluate(inputs(one_lab, underlying=SJIA, findings={Finding.HEMORRHAGE, Finding.HEPATOMEGALY}))
    assert coded.outcome is MET
    no_labs = {A.PLATELETS: 300, A.AST: 50, A.WBC: 9, A.FIBRINOGEN: 400}
    assert trial.evaluate(inputs(no_labs, underlying=SJIA)).outcome is UNK  # 3 clinical items could still meet


# --- 2016 EULAR/ACR/PRINTO -----------------------------------------------------------------------------------
BASE_2016 = {A.TEMPERATURE: 39, A.FERRITIN: 5000}


@pytest.mark.parametrize(
    ("key", "analyte", "value", "expected"),
    [
        ("ferritin", A.FERRITIN, 684, NOT),
        ("ferritin", A.FERRITIN, 685, MET),
        ("platelets", A.PLATELETS, 181, MET),
        ("platelets", A.PLATELETS, 182, NOT),
        ("ast", A.AST, 48, NOT),
        ("ast", A.AST, 49, MET),
        ("triglycerides", A.TRIGLYCERIDES, 156, NOT),
        ("triglycerides", A.TRIGLYCERIDES, 157, MET),
        ("fibrinogen", A.FIBRINOGEN, 360, MET),
        ("fibrinogen", A.FIBRINOGEN, 361, NOT),
        ("febrile", A.TEMPERATURE, "37.9", NOT),
        ("febrile", A.TEMPERATURE, 38, MET),
    ],
)
def test_eular_2016_items(key: str, analyte: A, value: str | int, expected: Status) -> None:
    result = eular2016.evaluate(inputs({**BASE_2016, analyte: value}, underlying=SJIA))
    assert criterion(result, key).status is expected


def test_eular_2016_needs_ferritin_and_two_items_and_applies_to_sjia_or_stills() -> None:
    two = {**BASE_2016, A.PLATELETS: 150, A.AST: 60, A.TRIGLYCERIDES: 100, A.FIBRINOGEN: 400}
    assert eular2016.evaluate(inputs(two, underlying=SJIA)).outcome is MET
    one = {**BASE_2016, A.PLATELETS: 150, A.AST: 40, A.TRIGLYCERIDES: 100, A.FIBRINOGEN: 400}
    assert eular2016.evaluate(inputs(one, underlying=SJIA)).outcome is NOT
    assert eular2016.evaluate(inputs(two)).applicable is False
    stills = eular2016.evaluate(inputs(two, underlying={Underlying.AOSD}))
    assert stills.applicable and stills.notes


# --- HLH-2004 ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "values", "expected"),
    [
        ("fever", {A.TEMPERATURE: "38.4"}, NOT),
        ("fever", {A.TEMPERATURE: "38.5"}, MET),
        ("cytopenias", {A.HEMOGLOBIN: 9, A.PLATELETS: 50, A.ANC: 2}, NOT),
        ("cytopenias", {A.HEMOGLOBIN: "8.9", A.PLATELETS: 50, A.ANC: 2}, MET),
        ("cytopenias", {A.HEMOGLOBIN: 12, A.PLATELETS: 100, A.ANC: "0.9"}, NOT),
        ("cytopenias", {A.HEMOGLOBIN: 12, A.PLATELETS: 99, A.ANC: "0.9"}, MET),
        ("cytopenias", {A.HEMOGLOBIN: 12, A.PLATELETS: 50, A.ANC: "1.0"}, NOT),
        ("tg-fibrinogen", {A.TRIGLYCERIDES: 264, A.FIBRINOGEN: 151}, NOT),
        ("tg-fibrinogen", {A.TRIGLYCERIDES: 265, A.FIBRINOGEN: 151}, MET),
        ("tg-fibrinogen", {A.TRIGLYCERIDES: 264, A.FIBRINOGEN: 150}, MET),
        ("ferritin", {A.FERRITIN: 499}, NOT),
        ("ferritin", {A.FERRITIN: 500}, MET),
    ],
)
def test_hlh_2004_items(key: str, values: dict[A, str | int], expected: Status) -> None:
    assert criterion(hlh2004.evaluate(inputs(values)), key).status is expected


def test_hlh_2004_newborn_hemoglobin_limit() -> None:
    values = {A.HEMOGLOBIN: "9.5", A.PLATELETS: 50, A.ANC: 2}
    assert criterion(hlh2004.evaluate(inputs(values, age_days=20)), "cytopenias").status is MET
    assert criterion(hlh2004.evaluate(inputs(values, age_days=28)), "cytopenias").status is NOT


def test_hlh_2004_nk_and_scd25_are_always_unknown_so_five_of_six_lab_items_decide() -> None:
    five = {A.TEMPERATURE: 39, A.HEMOGLOBIN: 8, A.PLATELETS: 50, A.TRIGLYCERIDES: 300, A.FERRITIN: 600}
    result = hlh2004.evaluate(inputs(five, findings={Finding.SPLENOMEGALY}))
    assert result.outcome is MET
    assert criterion(result, "nk").status is UNK and criterion(result, "scd25").status is UNK
    assert hlh2004.evaluate(inputs({A.FERRITIN: 600})).outcome is UNK
    normal = {
        A.TEMPERATURE: 37,
        A.HEMOGLOBIN: 13,
        A.PLATELETS: 250,
        A.ANC: 4,
        A.TRIGLYCERIDES: 100,
        A.FIBRINOGEN: 300,
        A.FERRITIN: 100,
    }
    assert hlh2004.evaluate(inputs(normal)).outcome is NOT  # at most 4 unknown items: 5 unreachable


# --- HScore --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "analyte", "value", "points"),
    [
        ("temperature", A.TEMPERATURE, "38.39", 0),
        ("temperature", A.TEMPERATURE, "38.4", 33),
        ("temperature", A.TEMPERATURE, "39.4", 33),
        ("temperature", A.TEMPERATURE, "39.41", 49),
        ("ferritin", A.FERRITIN, 1999, 0),
        ("ferritin", A.FERRITIN, 2000, 35),
        ("ferritin", A.FERRITIN, 6000, 35),
        ("ferritin", A.FERRITIN, 6001, 50),
        ("triglycerides", A.TRIGLYCERIDES, "132.6", 0),
        ("triglycerides", A.TRIGLYCERIDES, "132.7", 44),
        ("triglycerides", A.TRIGLYCERIDES, 354, 44),
        ("triglycerides", A.TRIGLYCERIDES, "354.1", 64),
        ("fibrinogen", A.FIBRINOGEN, 250, 30),
        ("fibrinogen", A.FIBRINOGEN, 251, 0),
        ("ast", A.AST, 29, 0),
        ("ast", A.AST, 30, 19),
    ],
)
def test_hscore_points(key: str, analyte: A, value: str | int, points: int) -> None:
    item = criterion(hscore.evaluate(inputs({analyte: value})), key)
    assert item.points == (Decimal(points), Decimal(points))


@pytest.mark.parametrize(
    ("values", "points"),
    [
        ({A.HEMOGLOBIN: "9.2", A.WBC: "5.0", A.PLATELETS: 110}, 34),
        ({A.HEMOGLOBIN: "9.3", A.WBC: "5.0", A.PLATELETS: 110}, 24),
        ({A.HEMOGLOBIN: "9.3", A.WBC: "5.1", A.PLATELETS: 110}, 0),
        ({A.HEMOGLOBIN: "9.3", A.WBC: "5.1", A.PLATELETS: 111}, 0),
    ],
)
def test_hscore_cytopenias_count_lineages(values: dict[A, str | int], points: int) -> None:
    assert criterion(hscore.evaluate(inputs(values)), "cytopenias").points == (Decimal(points), Decimal(points))


def test_hscore_unknown_items_give_a_range_and_the_cutoff_decides() -> None:
    partial = hscore.evaluate(inputs({A.FERRITIN: 7000}, immunosuppression=None))
    assert partial.score == (Decimal(50), Decimal(337))  # 337: the published maximum
    assert partial.outcome is UNK
    # Known: 49 + 34 + 50 + 64 + 30 + 19 = 246, organomegaly 0-38, marrow 0-35, no immunosuppression.
    full = {
        A.TEMPERATURE: 40,
        A.HEMOGLOBIN: 8,
        A.WBC: 2,
        A.PLATELETS: 50,
        A.FERRITIN: 7000,
        A.TRIGLYCERIDES: 400,
        A.FIBRINOGEN: 100,
        A.AST: 100,
    }
    result = hscore.evaluate(inputs(full))
    assert result.score == (Decimal(246), Decimal(319)) and result.outcome is MET
    assert "at or above the 169 cutoff" in result.summary
    # 33 (38.4) + 0 + 35 + 44 + 0 + 19 = 131; + organomegaly 38 = 169 reachable, + marrow 35.
    low = {
        A.TEMPERATURE: "38.4",
        A.HEMOGLOBIN: 12,
        A.WBC: 8,
        A.PLATELETS: 200,
        A.FERRITIN: 2000,
        A.TRIGLYCERIDES: 200,
        A.FIBRINOGEN: 300,
        A.AST: 40,
    }
    assert hscore.evaluate(inputs(low)).outcome is UNK
    # With hepato- and splenomegaly coded and marrow coded: 131 + 38 + 35 = 204 -> met.
    coded = hscore.evaluate(
        inputs(low, findings={Finding.HEPATOMEGALY, Finding.SPLENOMEGALY, Finding.HEMOPHAGOCYTOSIS})
    )
    assert coded.score == (Decimal(204), Decimal(204)) and coded.outcome is MET


def test_hscore_cutoff_168_vs_169() -> None:
    # 49 (temp) + 35 (ferritin) + 44 (TG) + 19 (AST) + 23 (one organ, other unknown -> up to 38) = 170..185
    base = {
        A.TEMPERATURE: 40,
        A.HEMOGLOBIN: 12,
        A.WBC: 8,
        A.PLATELETS: 200,
        A.FERRITIN: 3000,
        A.TRIGLYCERIDES: 200,
        A.FIBRINOGEN: 300,
        A.AST: 40,
    }
    both = hscore.evaluate(
        inputs(
            base,
            findings={Finding.HEPATOMEGALY, Finding.SPLENOMEGALY, Finding.HEMOPHAGOCYTOSIS},
            immunosuppression=False,
        )
    )
    assert both.score == (Decimal(220), Decimal(220))
    just_below = {**base, A.TEMPERATURE: 38}  # 220 - 49 = 171 ... drop AST too: 152
    below = hscore.evaluate(
        inputs(
            {**just_below, A.AST: 20}, findings={Finding.HEPATOMEGALY, Finding.SPLENOMEGALY, Finding.HEMOPHAGOCYTOSIS}
        )
    )
    assert below.score == (Decimal(152), Decimal(152)) and below.outcome is NOT
    at = hscore.evaluate(
        inputs(
            {**just_below, A.AST: 20},
            findings={Finding.HEPATOMEGALY, Finding.SPLENOMEGALY, Finding.HEMOPHAGOCYTOSIS},
            immunosuppression=True,
        )
    )
    assert at.score == (Decimal(170), Decimal(170)) and at.outcome is MET
    assert hscore.probability_band(Decimal(90), Decimal(90)) == "probability < 1 % (score ≤ 90)"
    assert hscore.probability_band(Decimal(250), Decimal(260)) == "probability > 99 % (score ≥ 250)"
    assert hscore.probability_band(Decimal(168), Decimal(168)) == "below the 169 cutoff"
    assert hscore.probability_band(Decimal(169), Decimal(169)) == "at or above the 169 cutoff"


# --- MS score ------------------------------------------------------------------------------------------------
def test_ms_score_cutoff() -> None:
    # lab part: -0.003*100 + 0.001*0 - 0.004*150 + 0.0001*1000 = -0.8; lowest = -0.8 - 1.30 = -2.1 -> met
    at = ms_score.evaluate(inputs({A.PLATELETS: 100, A.LDH: 0, A.FIBRINOGEN: 150, A.FERRITIN: 1000}, underlying=SJIA))
    assert at.score is not None and at.score[0] == Decimal("-2.1") and at.outcome is MET
    below = ms_score.evaluate(
        inputs({A.PLATELETS: 100, A.LDH: 0, A.FIBRINOGEN: "150.25", A.FERRITIN: 1000}, underlying=SJIA)
    )
    assert below.score is not None and below.score[0] == Decimal("-2.101") and below.outcome is UNK
    low = ms_score.evaluate(inputs({A.PLATELETS: 1000, A.LDH: 0, A.FIBRINOGEN: 800, A.FERRITIN: 100}, underlying=SJIA))
    assert low.score is not None and low.score[1] < Decimal("-2.1") and low.outcome is NOT
    assert ms_score.evaluate(inputs({A.PLATELETS: 100}, underlying=SJIA)).outcome is UNK
    assert ms_score.evaluate(inputs({A.PLATELETS: 100})).applicable is False


# --- ferritin/ESR --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("ferritin", "esr", "expected"), [(215, 10, NOT), (216, 10, MET), (5000, 0, UNK)])
def test_ferritin_esr_ratio(ferritin: int, esr: int, expected: Status) -> None:
    result = ferritin_esr.evaluate(inputs({A.FERRITIN: ferritin, A.ESR: esr}, underlying=SJIA))
    assert result.outcome is expected
    assert result.validated is False


# --- sepsis MAS features -------------------------------------------------------------------------------------
def test_sepsis_features_need_all_three() -> None:
    values = {A.FERRITIN: 2001, A.INR: 2, A.AST: 200}
    result = sepsis_features.evaluate(inputs(values, underlying={Underlying.SEPSIS}))
    assert result.applicable and result.outcome is MET
    assert sepsis_features.evaluate(inputs({**values, A.FERRITIN: 2000}, underlying={Underlying.SEPSIS})).outcome is NOT
    assert sepsis_features.evaluate(inputs(values)).applicable is False


# --- trends --------------------------------------------------------------------------------------------------
def test_trends_need_ten_percent() -> None:
    rising = trends.evaluate(inputs(series=[m(A.FERRITIN, 1000, hours_ago=48), m(A.FERRITIN, 1100, hours_ago=2)]))
    assert criterion(rising, "ferritin").status is MET
    assert "+10.0 % in 46 h" in (criterion(rising, "ferritin").value or "")
    flat = trends.evaluate(inputs(series=[m(A.FERRITIN, 1000, hours_ago=48), m(A.FERRITIN, 1099, hours_ago=2)]))
    assert criterion(flat, "ferritin").status is NOT
    falling = trends.evaluate(inputs(series=[m(A.PLATELETS, 200, hours_ago=60), m(A.PLATELETS, 180, hours_ago=1)]))
    assert criterion(falling, "platelets").status is MET
    old = trends.evaluate(inputs(series=[m(A.PLATELETS, 200, hours_ago=80), m(A.PLATELETS, 100, hours_ago=1)]))
    assert criterion(old, "platelets").status is UNK  # the older value is outside the 72 h window


# --- the screen's decision -----------------------------------------------------------------------------------
def test_screen_decision() -> None:
    likely = assess_mas(inputs({A.FERRITIN: 8000, A.TRIGLYCERIDES: 300, A.ALT: 200, A.TEMPERATURE: 39}))
    assert likely.likely and likely.suggestive
    ferritin_only = assess_mas(inputs({A.FERRITIN: 2600}))
    assert not ferritin_only.likely and ferritin_only.suggestive
    assert (A.PLATELETS, "777-3") in ferritin_only.missing_workup
    below = assess_mas(inputs({A.FERRITIN: 499}))
    assert not below.suggestive
    at = assess_mas(inputs({A.FERRITIN: 500}))
    assert at.suggestive
