"""Threshold-dense probe values: at, just below and just above a threshold, in the paper's unit and in every other
unit the value converts to exactly, plus explicitly listed values in units that do not convert exactly."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from tests.independent.gen_model import UNIT_FACTORS, exact_decimal

Probe = tuple[Decimal, str]


def express(analyte: str, canonical: Decimal, unit: str) -> Decimal | None:
    """The canonical value written in `unit`, when that is exact."""
    factor = UNIT_FACTORS[analyte].get(unit)
    if factor is None:
        return None
    return exact_decimal(Fraction(canonical) * factor)


def around(analyte: str, threshold: str, step: str, extra: tuple[tuple[str, str], ...] = ()) -> list[Probe]:
    """threshold - step, threshold, threshold + step in every unit they convert to exactly, then `extra`."""
    centre, delta = Decimal(threshold), Decimal(step)
    probes: list[Probe] = []
    for unit in UNIT_FACTORS[analyte]:
        for canonical in (centre - delta, centre, centre + delta):
            written = express(analyte, canonical, unit)
            if written is not None and (written, unit) not in probes:
                probes.append((written, unit))
    probes.extend((Decimal(value), unit) for value, unit in extra)
    return probes


# Every threshold of every set, with extra values where a unit conversion is inexact or a restatement of the paper
# uses a different boundary (see DECISIONS.md).
FERRITIN_684 = around("ferritin", "684", "1", (("684.5", "ng/mL"),))
FERRITIN_2000 = around("ferritin", "2000", "1", (("2000.1", "ng/mL"),))
FERRITIN_500 = around("ferritin", "500", "1")
FERRITIN_6000 = around("ferritin", "6000", "1")
PLATELETS_181 = around("platelets", "181", "1", (("181.5", "10*3/uL"),))
PLATELETS_262 = around("platelets", "262", "1")
PLATELETS_100 = around("platelets", "100", "1", (("99.9", "10*9/L"),))
PLATELETS_110 = around("platelets", "110", "1")
WBC_4 = around("wbc", "4.0", "0.1", (("3999", "/uL"), ("4001", "/uL")))
WBC_5 = around("wbc", "5.0", "0.1", (("4999", "/uL"), ("5001", "/uL")))
ANC_1 = around("anc", "1.0", "0.01", (("999", "/uL"), ("1001", "/uL")))
HEMOGLOBIN_9 = around("hemoglobin", "9.0", "0.1", (("89.5", "g/L"),))
HEMOGLOBIN_9_2 = around("hemoglobin", "9.2", "0.1", (("91.9", "g/L"), ("92.1", "g/L")))
HEMOGLOBIN_INFANT = (
    (Decimal("95"), "g/L"),
    (Decimal("99"), "g/L"),
    (Decimal("100"), "g/L"),
    (Decimal("89"), "g/L"),
)
AST_48 = around("ast", "48", "1", (("0.8", "ukat/L"), ("0.81", "ukat/L"), ("0.79", "ukat/L")))
AST_59 = around("ast", "59", "1", (("0.99", "ukat/L"), ("0.98", "ukat/L")))
AST_30 = around("ast", "30", "1", (("0.5", "ukat/L"), ("0.49", "ukat/L")))
TRANSAMINASE_120 = around("alt", "120", "1", (("2", "ukat/L"), ("2.01", "ukat/L")))
TRIGLYCERIDES_156 = around(
    "triglycerides", "156", "1", (("1.76", "mmol/L"), ("1.761", "mmol/L"), ("1.762", "mmol/L"), ("1.77", "mmol/L"))
)
TRIGLYCERIDES_265 = around(
    "triglycerides",
    "265",
    "1",
    (("2.99", "mmol/L"), ("2.992", "mmol/L"), ("2.993", "mmol/L"), ("3.0", "mmol/L"), ("3.01", "mmol/L")),
)
# HScore bands are stated in mmol/L; 132.7 and 354 mg/dL are the restatements' equivalents, 132.855 and 354.28 are
# 1.5 and 4 mmol/L at 88.57 mg/dL per mmol/L.
TRIGLYCERIDES_1_5_MMOL = (
    *((Decimal(v), "mmol/L") for v in ("1.49", "1.5", "1.51")),
    *((Decimal(v), "mg/dL") for v in ("132.6", "132.7", "132.85", "132.86", "133")),
)
TRIGLYCERIDES_4_MMOL = (
    *((Decimal(v), "mmol/L") for v in ("3.99", "4", "4.01")),
    *((Decimal(v), "mg/dL") for v in ("353", "354", "354.28", "354.29", "355")),
)
FIBRINOGEN_360 = around("fibrinogen", "3.6", "0.01")
FIBRINOGEN_250 = around("fibrinogen", "2.5", "0.01")
FIBRINOGEN_150 = around("fibrinogen", "1.5", "0.01", (("149.5", "mg/dL"),))
INR_1_5 = around("inr", "1.5", "0.01")
DDIMER_500 = around("ddimer", "500", "1")
# Temperatures in Celsius unless the unit says otherwise; the Fahrenheit values are the exact equivalents and their
# neighbours (101 degF = 38.333... degC; 38.4 degC = 101.12 degF; 39.4 degC = 102.92 degF; 38.5 degC = 101.3 degF).
TEMPERATURE_FEBRILE = tuple(
    (Decimal(v), u)
    for v, u in (
        ("37.9", "Cel"),
        ("38", "Cel"),
        ("38.1", "Cel"),
        ("100.3", "[degF]"),
        ("100.4", "[degF]"),
        ("100.5", "[degF]"),
    )
)
TEMPERATURE_101F = tuple(
    (Decimal(v), u)
    for v, u in (
        ("100.9", "[degF]"),
        ("101", "[degF]"),
        ("101.1", "[degF]"),
        ("38.3", "Cel"),
        ("38.33", "Cel"),
        ("38.34", "Cel"),
        ("38.4", "Cel"),
    )
)
TEMPERATURE_38_5 = tuple(
    (Decimal(v), u)
    for v, u in (
        ("38.4", "Cel"),
        ("38.5", "Cel"),
        ("38.6", "Cel"),
        ("101.2", "[degF]"),
        ("101.3", "[degF]"),
        ("101.4", "[degF]"),
    )
)
TEMPERATURE_38_4 = tuple(
    (Decimal(v), u)
    for v, u in (
        ("38.3", "Cel"),
        ("38.39", "Cel"),
        ("38.4", "Cel"),
        ("38.41", "Cel"),
        ("101.1", "[degF]"),
        ("101.12", "[degF]"),
        ("101.13", "[degF]"),
    )
)
TEMPERATURE_39_4 = tuple(
    (Decimal(v), u)
    for v, u in (
        ("39.3", "Cel"),
        ("39.4", "Cel"),
        ("39.41", "Cel"),
        ("39.5", "Cel"),
        ("102.9", "[degF]"),
        ("102.92", "[degF]"),
        ("102.93", "[degF]"),
    )
)
