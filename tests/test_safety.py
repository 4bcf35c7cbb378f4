"""Renal (CrCl < 30) and ANC (< 1.5) boundaries, and co-medication checks."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cds_service.facts.analytes import A
from cds_service.facts.medications import DrugMatch
from cds_service.facts.observations import Measurement
from cds_service.facts.orders import ActiveOrder
from cds_service.rulepack import default_pack
from cds_service.rules.dosing import safety
from cds_service.rules.dosing.safety import Outcome, SafetyResult, assess_comedication
from tests.test_dose_calculator import NOW, aged, kg

RULES = default_pack().safety


def assess_renal(**kwargs: Any) -> SafetyResult:
    return safety.assess_renal(**kwargs, rules=RULES)


def assess_anc(anc: Measurement | None) -> SafetyResult:
    return safety.assess_anc(anc, RULES)


def lab(analyte: A, value: str) -> Measurement:
    return Measurement(analyte, Decimal(value), kg("1").time, "lab", False, value)


def test_cockcroft_gault_boundary_at_30() -> None:
    # (140 - 50) × 60 / (72 × SCr) for a male: SCr 2.5 -> 30.0 (clear); SCr 2.51 -> 29.88 (concern)
    male = aged(50, sex="male")
    at = assess_renal(
        patient=male, adult=True, weight=kg("60"), height=None, creatinine=lab(A.CREATININE, "2.5"), now=NOW
    )
    below = assess_renal(
        patient=male, adult=True, weight=kg("60"), height=None, creatinine=lab(A.CREATININE, "2.51"), now=NOW
    )
    assert at.outcome is Outcome.CLEAR
    assert below.outcome is Outcome.CONCERN
    assert "Cockcroft-Gault CrCl ≈ 29.88" in below.text


def test_cockcroft_gault_applies_0_85_unless_male() -> None:
    female = assess_renal(
        patient=aged(50, sex="female"),
        adult=True,
        weight=kg("60"),
        height=None,
        creatinine=lab(A.CREATININE, "2.5"),
        now=NOW,
    )
    unknown = assess_renal(
        patient=aged(50, sex="unknown"),
        adult=True,
        weight=kg("60"),
        height=None,
        creatinine=lab(A.CREATININE, "2.5"),
        now=NOW,
    )
    assert female.outcome is Outcome.CONCERN  # 30 × 0.85 = 25.5
    assert "lower estimate" in unknown.text


def test_bedside_schwartz_for_children() -> None:
    child = aged(8)
    height = lab(A.HEIGHT, "120")
    # 0.413 × 120 / SCr: SCr 1.652 -> 30.0 (clear); 1.66 -> 29.86 (concern)
    assert (
        assess_renal(
            patient=child, adult=False, weight=None, height=height, creatinine=lab(A.CREATININE, "1.652"), now=NOW
        ).outcome
        is Outcome.CLEAR
    )
    result = assess_renal(
        patient=child, adult=False, weight=None, height=height, creatinine=lab(A.CREATININE, "1.66"), now=NOW
    )
    assert result.outcome is Outcome.CONCERN
    assert "bedside Schwartz" in result.text


def test_missing_inputs_are_listed() -> None:
    result = assess_renal(patient=aged(8), adult=False, weight=None, height=None, creatinine=None, now=NOW)
    assert result.outcome is Outcome.NOT_DONE
    assert result.missing == ("serum creatinine (recent)", "body height (bedside Schwartz)")


def test_anc_boundary_at_1_5() -> None:
    assert assess_anc(lab(A.ANC, "1.5")).outcome is Outcome.CLEAR
    assert assess_anc(lab(A.ANC, "1.49")).outcome is Outcome.CONCERN
    assert assess_anc(None).missing == ("absolute neutrophil count (recent)",)


def test_comedication() -> None:
    etanercept = ActiveOrder("MedicationRequest/e", "etanercept", DrugMatch(False), DrugMatch(True, "etanercept"))
    old_anakinra = ActiveOrder("MedicationRequest/a0", "anakinra", DrugMatch(True, "x"), DrugMatch(False))
    same = ActiveOrder("MedicationRequest/new", "anakinra", DrugMatch(True, "x"), DrugMatch(False))
    tnf, duplicate = assess_comedication(
        (etanercept, old_anakinra, same), checked_ids={"MedicationRequest/new"}, other_draft_anakinra=()
    )
    assert tnf.outcome is Outcome.CONCERN and "etanercept" in tnf.text
    assert duplicate.outcome is Outcome.CONCERN and duplicate.text == "anakinra (active order)"
    tnf, duplicate = assess_comedication(None, checked_ids=set(), other_draft_anakinra=())
    assert tnf.outcome is Outcome.NOT_DONE and tnf.missing
