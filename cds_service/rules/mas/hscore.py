"""HScore for reactive hemophagocytic syndrome (Fardet 2014, Arthritis Rheumatol 66:2613; clinical.md §2.3).

Points per the published table. Items that cannot be read (organomegaly and marrow hemophagocytosis when
not coded; a missing lab) make the score a range: the lowest and highest totals still possible. The
commonly used cutoff is 169; probability < 1 % at ≤ 90 and > 99 % at ≥ 250. No probability formula is
used (public formulas disagree, §2.3). Cytopenias: lineages with Hb ≤ 9.2 g/dL, WBC ≤ 5.0 ×10⁹/L,
platelets ≤ 110 ×10⁹/L; 2 lineages 24 points, 3 lineages 34 (1 lineage 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from cds_service.facts.analytes import A
from cds_service.facts.conditions import Finding
from cds_service.facts.observations import Measurement
from cds_service.rules.mas.common import CriterionResult, Inputs, SetResult, Status, score_status, show

KEY = "hscore"
NAME = "HScore"
VERSION = "Fardet-2014"
CITATION = "Fardet L et al., Arthritis Rheumatol 2014;66:2613 (clinical.md §2.3)"
CUTOFF = Decimal(169)
LOW_PROBABILITY = Decimal(90)  # ≤ 90: < 1 %
HIGH_PROBABILITY = Decimal(250)  # ≥ 250: > 99 %

D = Decimal
# (upper bound exclusive/inclusive handled per item below, points)
TEMPERATURE = ((D("38.4"), 0), (D("39.4"), 33), (None, 49))  # < 38.4: 0; 38.4-39.4: 33; > 39.4: 49
FERRITIN = ((D(2000), 0), (D(6000), 35), (None, 50))  # < 2000: 0; 2000-6000: 35; > 6000: 50
TRIGLYCERIDES = ((D("132.7"), 0), (D(354), 44), (None, 64))  # < 1.5 mmol/L: 0; 1.5-4: 44; > 4: 64
FIBRINOGEN_MAX = D(250)  # ≤ 2.5 g/L: 30
AST_MIN = D(30)  # ≥ 30 U/L: 19
CYTOPENIA = {"hemoglobin": D("9.2"), "wbc": D("5.0"), "platelets": D(110)}
POINTS_IMMUNOSUPPRESSION = D(18)
POINTS_ONE_ORGAN = D(23)
POINTS_BOTH_ORGANS = D(38)
POINTS_CYTOPENIA = {0: D(0), 1: D(0), 2: D(24), 3: D(34)}
POINTS_FIBRINOGEN = D(30)
POINTS_AST = D(19)
POINTS_MARROW = D(35)


def _banded(value: Decimal, bands: Sequence[tuple[Decimal | None, int]]) -> Decimal:
    """Three bands: below the first bound; up to and including the second; above it."""
    (first, low_points), (second, mid_points), (_, high_points) = bands
    assert first is not None and second is not None
    if value < first:
        return D(low_points)
    if value <= second:
        return D(mid_points)
    return D(high_points)


def _lab_item(
    key: str, label: str, measurement: Measurement | None, bands: Sequence[tuple[Decimal | None, int]], threshold: str
) -> CriterionResult:
    maximum = D(bands[-1][1])
    if measurement is None:
        return CriterionResult(
            key, label, Status.UNKNOWN, threshold, note="no result in the window", points=(D(0), maximum)
        )
    points = _banded(measurement.value, bands)
    return CriterionResult(
        key,
        label,
        Status.MET if points > 0 else Status.NOT_MET,
        threshold,
        show(measurement),
        measurement.when,
        f"Observation/{measurement.observation_id}",
        measurement.conversion_note,
        (points, points),
    )


def _binary(
    key: str,
    label: str,
    present: bool | None,
    points: Decimal,
    threshold: str,
    value: str | None = None,
    source: str | None = None,
    note: str | None = None,
) -> CriterionResult:
    if present is None:
        return CriterionResult(key, label, Status.UNKNOWN, threshold, note=note or "unknown", points=(D(0), points))
    gained = points if present else D(0)
    return CriterionResult(
        key, label, Status.MET if present else Status.NOT_MET, threshold, value, None, source, note, (gained, gained)
    )


def _threshold_item(
    key: str,
    label: str,
    measurement: Measurement | None,
    met_when_at_most: Decimal | None,
    met_when_at_least: Decimal | None,
    points: Decimal,
    threshold: str,
) -> CriterionResult:
    if measurement is None:
        return CriterionResult(
            key, label, Status.UNKNOWN, threshold, note="no result in the window", points=(D(0), points)
        )
    value = measurement.value
    met = (met_when_at_most is not None and value <= met_when_at_most) or (
        met_when_at_least is not None and value >= met_when_at_least
    )
    gained = points if met else D(0)
    return CriterionResult(
        key,
        label,
        Status.MET if met else Status.NOT_MET,
        threshold,
        show(measurement),
        measurement.when,
        f"Observation/{measurement.observation_id}",
        measurement.conversion_note,
        (gained, gained),
    )


def _organomegaly(inputs: Inputs) -> CriterionResult:
    findings = inputs.context.findings
    known = [f for f in (Finding.HEPATOMEGALY, Finding.SPLENOMEGALY) if f in findings]
    threshold = "hepato- or splenomegaly 23; both 38"
    sources = ", ".join(findings[f].resource for f in known) or None
    if len(known) == 2:
        return CriterionResult(
            "organomegaly",
            "Organomegaly",
            Status.MET,
            threshold,
            "both",
            source=sources,
            points=(POINTS_BOTH_ORGANS, POINTS_BOTH_ORGANS),
        )
    # Absence is never coded here, so the uncoded organ may still be enlarged.
    low = POINTS_ONE_ORGAN if known else D(0)
    return CriterionResult(
        "organomegaly",
        "Organomegaly",
        Status.MET if known else Status.UNKNOWN,
        threshold,
        known[0].value if known else None,
        source=sources,
        note="uncoded organomegaly is unknown",
        points=(low, POINTS_BOTH_ORGANS),
    )


def _cytopenias(inputs: Inputs) -> CriterionResult:
    labs = {"hemoglobin": inputs.lab(A.HEMOGLOBIN), "wbc": inputs.lab(A.WBC), "platelets": inputs.lab(A.PLATELETS)}
    low = [name for name, m in labs.items() if m is not None and m.value <= CYTOPENIA[name]]
    unknown = [name for name, m in labs.items() if m is None]
    lowest = POINTS_CYTOPENIA[len(low)]
    highest = POINTS_CYTOPENIA[len(low) + len(unknown)]
    status = Status.UNKNOWN if lowest != highest else (Status.MET if lowest > 0 else Status.NOT_MET)
    shown = "; ".join(f"{name} {show(m)}" for name, m in labs.items() if m is not None) or None
    return CriterionResult(
        "cytopenias",
        "Cytopenias (lineages)",
        status,
        "Hb ≤ 9.2 g/dL, WBC ≤ 5.0, platelets ≤ 110 ×10⁹/L: 2 → 24, 3 → 34",
        shown,
        note=f"{len(low)} low, {len(unknown)} unknown",
        points=(lowest, highest),
    )


def evaluate(inputs: Inputs) -> SetResult:
    context = inputs.context
    marrow = Finding.HEMOPHAGOCYTOSIS in context.findings
    items = [
        _binary(
            "immunosuppression",
            "Known immunosuppression",
            context.immunosuppression,
            POINTS_IMMUNOSUPPRESSION,
            "HIV or long-term immunosuppressive therapy: 18",
            note=context.immunosuppression_note,
        ),
        _lab_item(
            "temperature",
            "Temperature (max)",
            inputs.max_temperature(),
            TEMPERATURE,
            "< 38.4 °C 0; 38.4–39.4 33; > 39.4 49",
        ),
        _organomegaly(inputs),
        _cytopenias(inputs),
        _lab_item("ferritin", "Ferritin", inputs.lab(A.FERRITIN), FERRITIN, "< 2,000 0; 2,000–6,000 35; > 6,000 50"),
        _lab_item(
            "triglycerides",
            "Triglycerides",
            inputs.lab(A.TRIGLYCERIDES),
            TRIGLYCERIDES,
            "< 132.7 mg/dL 0; 132.7–354 44; > 354 64",
        ),
        _threshold_item(
            "fibrinogen",
            "Fibrinogen",
            inputs.lab(A.FIBRINOGEN),
            FIBRINOGEN_MAX,
            None,
            POINTS_FIBRINOGEN,
            "≤ 250 mg/dL (2.5 g/L): 30",
        ),
        _threshold_item("ast", "AST", inputs.lab(A.AST), None, AST_MIN, POINTS_AST, "≥ 30 U/L: 19"),
        _binary(
            "marrow",
            "Hemophagocytosis on marrow aspirate",
            True if marrow else None,
            POINTS_MARROW,
            "yes: 35",
            note=None if marrow else "not coded: unknown",
        ),
    ]
    low = sum((item.points[0] for item in items if item.points), D(0))
    high = sum((item.points[1] for item in items if item.points), D(0))
    outcome = score_status(low, high, CUTOFF)
    score = f"{low}" if low == high else f"{low}–{high}"
    return SetResult(
        KEY,
        NAME,
        VERSION,
        CITATION,
        True,
        "all patients (reactive hemophagocytic syndrome)",
        tuple(items),
        outcome,
        f"score {score} (cutoff {CUTOFF}); {probability_band(low, high)}",
        score=(low, high),
    )


def probability_band(low: Decimal, high: Decimal) -> str:
    if high <= LOW_PROBABILITY:
        return "probability < 1 % (score ≤ 90)"
    if low >= HIGH_PROBABILITY:
        return "probability > 99 % (score ≥ 250)"
    if low >= CUTOFF:
        return "at or above the 169 cutoff"
    if high < CUTOFF:
        return "below the 169 cutoff"
    return "169 cutoff reachable with the unknown items"
