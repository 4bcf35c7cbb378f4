"""Safety checks that accompany every anakinra order. Limits, formula constants and their citations are the
rule pack's (dosing.yaml `safety`):

- Renal: estimated CrCl below the label's limit -> "consider giving the prescribed dose every other day"; the trial
  gives no renal adjustment, so the card asks for pharmacist review. Adults: Cockcroft-Gault with actual body
  weight, × the female factor unless recorded male (the lower estimate when sex is not recorded). Children:
  bedside Schwartz, compared with the same limit as a normalised eGFR — the label gives no pediatric rule; the
  card says which estimate was used.
- ANC below the EU SmPC limit: do not initiate in neutropenia.
- TNF inhibitor active: combination not recommended (US label).
- Another active anakinra order: duplicate.
Missing inputs make a check "not done", and the card lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum

from cds_service.facts.observations import Measurement
from cds_service.facts.orders import ActiveOrder
from cds_service.facts.patient import PatientFacts
from cds_service.rules.dosing.calculator import format_amount


@dataclass(frozen=True)
class SafetyRules:
    crcl_limit_ml_min: Decimal
    renal_citation: str
    anc_limit: Decimal  # ×10⁹/L, compared with "<"
    anc_citation: str
    tnf_citation: str
    cg_age_from: Decimal
    cg_denominator: Decimal
    cg_female_factor: Decimal
    cg_citation: str
    schwartz_k: Decimal
    schwartz_citation: str


class Outcome(Enum):
    CONCERN = "concern"
    CLEAR = "clear"
    NOT_DONE = "not done"


@dataclass(frozen=True)
class SafetyResult:
    outcome: Outcome
    text: str
    missing: tuple[str, ...] = ()


def assess_renal(
    *,
    patient: PatientFacts | None,
    adult: bool | None,
    weight: Measurement | None,
    height: Measurement | None,
    creatinine: Measurement | None,
    now: datetime,
    rules: SafetyRules,
) -> SafetyResult:
    n = format_amount
    missing = []
    if creatinine is None:
        missing.append("serum creatinine (recent)")
    if adult is None:
        missing.append("birth date (adult or child decides the formula)")
    elif adult and weight is None:
        missing.append("current body weight (Cockcroft-Gault)")
    elif not adult and height is None:
        missing.append("body height (bedside Schwartz)")
    if missing or creatinine is None or patient is None:
        return SafetyResult(Outcome.NOT_DONE, "renal function not assessed", tuple(missing))
    scr = creatinine.value
    scr_text = f"creatinine {n(scr)} mg/dL ({creatinine.as_received}, {creatinine.when:%Y-%m-%d})"
    if adult:
        assert weight is not None
        age_range = patient.age(now.date())
        assert age_range is not None
        age = Decimal(age_range.high)  # oldest possible age: the lower (conservative) estimate
        crcl = (rules.cg_age_from - age) * weight.value / (rules.cg_denominator * scr)
        sex_note = ""
        if patient.sex != "male":
            crcl *= rules.cg_female_factor
            sex_note = f" × {n(rules.cg_female_factor)}" + (
                "" if patient.sex == "female" else " (sex not recorded as male: lower estimate)"
            )
        text = (
            f"Cockcroft-Gault CrCl ≈ {n(crcl)} mL/min: ({n(rules.cg_age_from)} − {age}) × {n(weight.value)} kg / "
            f"({n(rules.cg_denominator)} × {n(scr)}){sex_note}; {scr_text}"
        )
        estimate = crcl
    else:
        assert height is not None
        egfr = rules.schwartz_k * height.value / scr
        text = (
            f"bedside Schwartz eGFR ≈ {n(egfr)} mL/min/1.73 m²: {n(rules.schwartz_k)} × {n(height.value)} cm / "
            f"{n(scr)} (compared with {n(rules.crcl_limit_ml_min)} as a normalised value); {scr_text}"
        )
        estimate = egfr
    if estimate < rules.crcl_limit_ml_min:
        return SafetyResult(Outcome.CONCERN, text)
    return SafetyResult(Outcome.CLEAR, text)


def assess_anc(anc: Measurement | None, rules: SafetyRules) -> SafetyResult:
    if anc is None:
        return SafetyResult(Outcome.NOT_DONE, "neutrophil count not assessed", ("absolute neutrophil count (recent)",))
    text = f"ANC {format_amount(anc.value)} ×10⁹/L ({anc.as_received}, {anc.when:%Y-%m-%d %H:%M} UTC)"
    return SafetyResult(Outcome.CONCERN if anc.value < rules.anc_limit else Outcome.CLEAR, text)


def assess_comedication(
    active: tuple[ActiveOrder, ...] | None, *, checked_ids: set[str], other_draft_anakinra: tuple[str, ...]
) -> tuple[SafetyResult, SafetyResult]:
    """(TNF inhibitor, duplicate anakinra). Without the medication list both are 'not done'.

    `checked_ids`: the drafts' own ids (an active order with one of them is the draft itself);
    `other_draft_anakinra`: names of the other anakinra drafts of this order session."""
    duplicates = [f"{name} (unsigned draft)" for name in other_draft_anakinra]
    if active is None:
        missing = ("active medication list (TNF inhibitors, other anakinra orders)",)
        tnf = SafetyResult(Outcome.NOT_DONE, "co-medication not assessed", missing)
        if duplicates:
            return tnf, SafetyResult(Outcome.CONCERN, ", ".join(duplicates))
        return tnf, SafetyResult(Outcome.NOT_DONE, "duplicates not assessed")
    tnf_orders = [order.name for order in active if order.tnf.matched]
    duplicates += [
        f"{order.name} (active order)"
        for order in active
        if order.anakinra.matched and order.order_id not in checked_ids
    ]
    tnf = SafetyResult(Outcome.CONCERN, ", ".join(tnf_orders)) if tnf_orders else SafetyResult(Outcome.CLEAR, "none")
    duplicate = (
        SafetyResult(Outcome.CONCERN, ", ".join(duplicates)) if duplicates else SafetyResult(Outcome.CLEAR, "none")
    )
    return tnf, duplicate
