"""Check one drafted anakinra order against the protocol. Pure: facts in, findings out.

Findings (and who decides their weight):
- above the protocol's cap per dose, above the band's daily cap, or above mg/kg/day × weight: OVERDOSE
  (the card layer makes it critical on order-sign, warning on order-select; issue #3);
- interval other than the band's (q12h ≤ 40 kg children, q6h otherwise): WARNING;
- daily amount more than `underdose_tolerance` below the protocol amount: WARNING;
- route not subcutaneous: INFO (IV use exists in the literature, clinical.md §3.2);
- dose, timing or weight unreadable: WARNING, saying what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from cds_service.facts.medications import DraftedDose
from cds_service.rules.dosing.calculator import DoseNotCalculated, ProtocolDose, format_amount
from cds_service.rules.dosing.protocol import Product, Protocol


class Concern(Enum):
    OVERDOSE = "overdose"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    concern: Concern
    code: str  # stable, e.g. "over-per-dose-cap"
    text: str


@dataclass(frozen=True)
class OrderCheck:
    drafted: DraftedDose
    protocol: ProtocolDose | DoseNotCalculated
    findings: tuple[Finding, ...]

    @property
    def overdose(self) -> bool:
        return any(f.concern is Concern.OVERDOSE for f in self.findings)


def check_drafted_order(
    *,
    drafted: DraftedDose,
    protocol: ProtocolDose | DoseNotCalculated,
    rules: Protocol,
    product: Product,
    underdose_tolerance: Decimal,
) -> OrderCheck:
    findings: list[Finding] = []
    per_dose = drafted.per_dose_mg
    per_day = drafted.per_day_mg
    n = format_amount

    if drafted.dose_problem:
        findings.append(Finding(Concern.WARNING, "dose-unreadable", drafted.dose_problem))
    if drafted.timing_problem:
        findings.append(Finding(Concern.WARNING, "timing-unreadable", drafted.timing_problem))
    if drafted.instruction_count > 1:
        findings.append(
            Finding(
                Concern.WARNING,
                "several-instructions",
                f"{drafted.instruction_count} dosage instructions: only the first was checked",
            )
        )

    if per_dose is not None and per_dose > rules.max_mg_per_dose:
        findings.append(
            Finding(
                Concern.OVERDOSE,
                "over-per-dose-cap",
                f"{n(per_dose)} mg per dose is above the protocol's {n(rules.max_mg_per_dose)} mg per dose",
            )
        )
    if isinstance(protocol, ProtocolDose):
        band = protocol.band
        if per_day is not None and per_day > band.max_mg_per_day:
            findings.append(
                Finding(
                    Concern.OVERDOSE,
                    "over-daily-cap",
                    f"{n(per_day)} mg/day is above the {band.label} cap of {n(band.max_mg_per_day)} mg/day",
                )
            )
        elif per_day is not None and per_day > protocol.exact_per_day_mg:
            findings.append(
                Finding(
                    Concern.OVERDOSE,
                    "over-mg-per-kg",
                    f"{n(per_day)} mg/day is above {n(band.mg_per_kg_per_day)} mg/kg/day × "
                    f"{n(protocol.weight.value)} kg = {n(protocol.exact_per_day_mg)} mg/day",
                )
            )
        if per_day is not None and per_day < protocol.exact_per_day_mg * (1 - underdose_tolerance):
            shortfall = (1 - per_day / protocol.exact_per_day_mg) * 100
            findings.append(
                Finding(
                    Concern.WARNING,
                    "under-dose",
                    f"{n(per_day)} mg/day is {n(shortfall)} % below the protocol's "
                    f"{n(protocol.exact_per_day_mg)} mg/day",
                )
            )
        if not drafted.timing_problem and drafted.interval_hours != band.interval_hours:
            actual = (
                f"every {n(drafted.interval_hours)} h" if drafted.interval_hours is not None else "no fixed interval"
            )
            findings.append(
                Finding(
                    Concern.WARNING,
                    "wrong-interval",
                    f"{actual}; the protocol gives the {band.label} band every {band.interval_hours} h",
                )
            )
        if not protocol.measurable:
            findings.append(
                Finding(
                    Concern.WARNING,
                    "not-measurable",
                    f"the protocol dose {n(protocol.per_dose_mg)} mg is below the syringe's "
                    f"smallest graduation ({n(product.smallest_measurable_mg)} mg): pharmacy preparation",
                )
            )
    else:
        if per_day is not None and per_day > rules.max_mg_per_day_any_band:
            findings.append(
                Finding(
                    Concern.OVERDOSE,
                    "over-daily-cap",
                    f"{n(per_day)} mg/day is above the highest protocol cap "
                    f"({n(rules.max_mg_per_day_any_band)} mg/day)",
                )
            )
        findings.append(
            Finding(
                Concern.WARNING,
                "no-protocol-dose",
                f"mg/kg dose not verifiable: {protocol.reason}; needs {protocol.needed}",
            )
        )

    if drafted.subcutaneous is False:
        findings.append(
            Finding(
                Concern.INFO,
                "not-subcutaneous",
                f"route '{drafted.route_as_written}' is not subcutaneous (the protocol's route; "
                "IV anakinra is used in the literature at other doses)",
            )
        )
    elif drafted.subcutaneous is None:
        findings.append(Finding(Concern.INFO, "no-route", "no route on the order; the protocol route is subcutaneous"))
    return OrderCheck(drafted, protocol, tuple(findings))
