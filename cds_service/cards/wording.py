"""The words and numbers of every card, the app document and the rule book, written one way.

Numbers: at most three decimals, never rounded up (40.005 kg must not read as 40.01), thousands separated by a
comma; negative numbers with a true minus sign. Units: UCUM codes shown as people write them. Times: local, in the
deployment's zone. Thresholds: as their source states them, with the canonical form when the unit differs.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from decimal import ROUND_DOWN, ROUND_FLOOR, Decimal

from cds_service.facts.analytes import Analyte
from cds_service.facts.observations import Measurement
from cds_service.rules.mas.common import Reason, Status
from cds_service.rules.mas.definitions import Op, Threshold

SYMBOL: dict[Op, str] = {">": ">", ">=": "≥", "<": "<", "<=": "≤"}
STATUS_WORD = {Status.MET: "met", Status.NOT_MET: "not met", Status.UNKNOWN: "unknown"}
UNIT_DISPLAY = {
    "10*9/L": "×10⁹/L",
    "10*3/uL": "×10³/µL",
    "10*3/mm3": "×10³/mm³",
    "10*6/L": "×10⁶/L",
    "/uL": "/µL",
    "/mm3": "/mm³",
    "[IU]/L": "IU/L",
    "[degF]": "°F",
    "Cel": "°C",
    "ug/L": "µg/L",
    "ug/mL": "µg/mL",
    "umol/L": "µmol/L",
    "ukat/L": "µkat/L",
    "{INR}": "",
    "{ratio}": "",
    "1": "",
    "[lb_av]": "lb",
    "[in_i]": "in",
    "ng/mL{FEU}": "ng/mL FEU",
    "ng/mL{DDU}": "ng/mL DDU",
    "mL/min/{1.73_m2}": "mL/min/1.73 m²",
}
REASON_WORDS = {
    Reason.NO_RESULT: "no result in the window",
    Reason.NOT_CODED: "not coded in the record (a clinician must assess)",
    Reason.UNREADABLE: "no coded laboratory result: read the laboratory report",
    Reason.NEVER_READ: "not read from the record",
    Reason.DENOMINATOR_ZERO: "divisor is 0: compared as numerator > cutoff × 0",
    Reason.FEW_VALUES: "fewer than 2 values in the window",
    Reason.INFANT_AGE_UNKNOWN: "between the infant and the standard threshold, and the age is not known",
    Reason.ABOVE_ULN: "above the multiple of the laboratory's upper reference limit",
    Reason.MISSING_TERM: "no result in the window: the score cannot be computed",
    Reason.UNREADABLE_RESULT: "a newer result could not be read (unit, comparator or value): the value is unknown",
}
IMMUNOSUPPRESSION_WORDS = {
    "hiv": "HIV coded",
    "medication-list-unavailable": "medication list unavailable",
    "long-term-immunosuppressant": "long-term immunosuppressant ordered",
    "only-recent-immunosuppressants": "only recent immunosuppressants (possibly MAS treatment)",
    "none": "no immunosuppressant ordered, no HIV coded",
}
_INTERNAL_REFERENCE = re.compile(r"\s*\((?:[^()]*;\s*)?clinical\.md[^()]*\)")


def number(value: Decimal) -> str:
    """A number for people: at most 3 decimals, never rounded up, thousands separated, a true minus sign."""
    shown = value.quantize(Decimal("0.001"), rounding=ROUND_FLOOR).normalize()
    if shown == shown.to_integral_value():
        shown = shown.quantize(Decimal(1))
    text = f"{shown:,f}"
    return text.replace("-", "−")


def exact(value: Decimal) -> str:
    """A stated constant (a coefficient, a factor) exactly as written: no rounding at all."""
    return f"{value.normalize():f}".replace("-", "−")


def as_written(value: Decimal) -> str:
    """A stated value with the digits its source wrote ("3.0" stays 3.0; 100000 reads 100,000), a true minus sign."""
    return f"{value:,f}".replace("-", "−")


def precise(value: Decimal) -> str:
    """A converted value in full when its decimal ends within 6 places; otherwise cut after 3 decimals and marked
    "…" (101 °F is 38.333… °C): the rule book never shows a silently rounded number."""
    shown = value.normalize()
    if shown == shown.to_integral_value():
        return f"{shown.quantize(Decimal(1)):,f}".replace("-", "−")
    exponent = shown.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -6:
        return f"{shown:,f}".replace("-", "−")
    return f"{value.quantize(Decimal('0.001'), rounding=ROUND_DOWN):,f}…".replace("-", "−")


def percent(fraction: Decimal) -> str:
    """A change as a percentage with one decimal, cut toward zero (never overstated)."""
    return number((abs(fraction) * 100).quantize(Decimal("0.1"), rounding=ROUND_FLOOR))


def unit(code: str) -> str:
    return UNIT_DISPLAY.get(code, code)


def quantity(value: Decimal, unit_code: str) -> str:
    return f"{number(value)} {unit(unit_code)}".strip()


def measured(measurement: Measurement, analyte: Analyte) -> str:
    text = f"{number(measurement.value)} {analyte.display_unit}".strip()
    return text + (" (preliminary)" if measurement.preliminary else "")


def threshold(limit: Threshold, analyte: Analyte | None = None) -> str:
    """As the source states it, plus the canonical form when the unit differs (e.g. "≥ 3 mmol/L (265.71 mg/dL)")."""
    stated = f"{SYMBOL[limit.op]} {quantity(limit.value, limit.unit)}"
    if analyte is None or analyte.unit == limit.unit or unit(analyte.unit) == unit(limit.unit):
        return stated
    return f"{stated} ({quantity(limit.canonical, analyte.unit)})"


def chart_threshold(limit: Threshold, analyte: Analyte) -> str:
    """On a chart drawn in the analyte's unit: the line's value in that unit first, then the source's statement when
    its unit differs (e.g. "< 150 mg/dL (< 1.5 g/L as published)")."""
    drawn = f"{SYMBOL[limit.op]} {quantity(limit.canonical, analyte.unit)}"
    if limit.canonical == limit.value:  # the same number (ug/L and ng/mL, [IU]/L and U/L): nothing to add
        return drawn
    return f"{drawn} ({SYMBOL[limit.op]} {quantity(limit.value, limit.unit)} as published)"


def local(moment: datetime, zone: tzinfo) -> str:
    """A time as a clinician reads it at the bedside: "27 Nov 14:05" in the deployment's zone."""
    return moment.astimezone(zone).strftime("%d %b %H:%M").lstrip("0")


def for_card(citation: str) -> str:
    """A citation as a card shows it: the paper or label by name, without internal reference sections."""
    return _INTERNAL_REFERENCE.sub("", citation).strip()


def listing(words: list[str]) -> str:
    if len(words) <= 2:
        return " and ".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]
