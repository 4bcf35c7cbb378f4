"""Safety checks that accompany every anakinra order (clinical.md §3.3, §6).

- Renal: estimated CrCl < 30 mL/min -> US label: "consider giving the prescribed dose every other
  day"; the trial gives no renal adjustment, so the card asks for pharmacist review (§6).
  Adults: Cockcroft-Gault with actual body weight, × 0.85 unless recorded male (a conservative
  choice when sex is not recorded: the lower estimate). Children: bedside Schwartz
  (0.413 × height cm / SCr mg/dL), compared with 30 as a normalised eGFR (mL/min/1.73 m²) — the
  label gives no pediatric rule; the card says which estimate was used.
- ANC < 1.5 × 10⁹/L: EU SmPC, do not initiate in neutropenia (§3.3).
- TNF inhibitor active: combination not recommended (US label, §3.3).
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

CRCL_LIMIT_ML_MIN = Decimal(30)  # US label: CrCl < 30 mL/min (clinical.md §3.1, §6)
ANC_LIMIT = Decimal("1.5")  # EU SmPC: ANC < 1.5 × 10⁹/L (clinical.md §3.3)
CG_NUMERATOR_AGE = Decimal(140)  # Cockcroft-Gault (clinical.md §6, [88-91])
CG_DENOMINATOR = Decimal(72)
CG_FEMALE_FACTOR = Decimal("0.85")
SCHWARTZ_K = Decimal("0.413")  # bedside Schwartz, CKiD 2009 (clinical.md §6, [74,92,93])

RENAL_SOURCE = "Kineret US label: CrCl < 30 mL/min, consider every-other-day dosing (clinical.md §3.1)"
ANC_SOURCE = "Kineret EU SmPC: do not initiate if ANC < 1.5 × 10⁹/L (clinical.md §3.3)"
TNF_SOURCE = "Kineret US label: combination with TNF blockers not recommended (clinical.md §3.3)"


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
        crcl = (CG_NUMERATOR_AGE - age) * weight.value / (CG_DENOMINATOR * scr)
        sex_note = ""
        if patient.sex != "male":
            crcl *= CG_FEMALE_FACTOR
            sex_note = " × 0.85" + ("" if patient.sex == "female" else " (sex not recorded as male: lower estimate)")
        text = (
            f"Cockcroft-Gault CrCl ≈ {n(crcl)} mL/min: (140 − {age}) × {n(weight.value)} kg / "
            f"(72 × {n(scr)}){sex_note}; {scr_text}"
        )
        estimate = crcl
    else:
        assert height is not None
        egfr = SCHWARTZ_K * height.value / scr
        text = (
            f"bedside Schwartz eGFR ≈ {n(egfr)} mL/min/1.73 m²: 0.413 × {n(height.value)} cm / "
            f"{n(scr)} (compared with 30 as a normalised value); {scr_text}"
        )
        estimate = egfr
    if estimate < CRCL_LIMIT_ML_MIN:
        return SafetyResult(Outcome.CONCERN, text)
    return SafetyResult(Outcome.CLEAR, text)


def assess_anc(anc: Measurement | None) -> SafetyResult:
    if anc is None:
        return SafetyResult(Outcome.NOT_DONE, "neutrophil count not assessed", ("absolute neutrophil count (recent)",))
    text = f"ANC {format_amount(anc.value)} ×10⁹/L ({anc.as_received}, {anc.when:%Y-%m-%d %H:%M} UTC)"
    return SafetyResult(Outcome.CONCERN if anc.value < ANC_LIMIT else Outcome.CLEAR, text)


def assess_comedication(
    active: tuple[ActiveOrder, ...] | None, *, checked_ids: set[str], other_draft_anakinra: tuple[str, ...]
) -> tuple[SafetyResult, SafetyResult]:
    """(TNF inhibitor, duplicate anakinra). Without the medication list both are 'not done'."""
    duplicates = list(other_draft_anakinra)
    if active is None:
        missing = ("active medication list (TNF inhibitors, other anakinra orders)",)
        tnf = SafetyResult(Outcome.NOT_DONE, "co-medication not assessed", missing)
        if duplicates:
            return tnf, SafetyResult(Outcome.CONCERN, ", ".join(duplicates) + " (unsigned)")
        return tnf, SafetyResult(Outcome.NOT_DONE, "duplicates not assessed")
    tnf_orders = [f"{order.name} ({order.order_id})" for order in active if order.tnf.matched]
    duplicates += [order.order_id for order in active if order.anakinra.matched and order.order_id not in checked_ids]
    tnf = SafetyResult(Outcome.CONCERN, ", ".join(tnf_orders)) if tnf_orders else SafetyResult(Outcome.CLEAR, "none")
    duplicate = (
        SafetyResult(Outcome.CONCERN, ", ".join(duplicates)) if duplicates else SafetyResult(Outcome.CLEAR, "none")
    )
    return tnf, duplicate
