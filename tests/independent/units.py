"""Analytes the criteria use: their LOINC codes and the UCUM units the oracle understands, with exact factors.

Every value is kept as an exact fraction, so a threshold is compared without floating-point error.
A unit that is not listed here makes a result unusable (never guessed). See DECISIONS.md section "Units".
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"

# Triglyceride molar mass used to convert between mg/dL and mmol/L (triolein, 885.7 g/mol): 1 mmol/L = 88.57 mg/dL.
TRIGLYCERIDE_MG_DL_PER_MMOL_L = Fraction("88.57")


@dataclass(frozen=True)
class Analyte:
    key: str
    loinc: frozenset[str]
    # UCUM code -> (family, factor to the family's canonical unit). Families of one analyte are not interconvertible
    # exactly (only triglycerides have two: mass and molar).
    units: dict[str, tuple[str, Fraction]]


def _same(*codes: str) -> dict[str, tuple[str, Fraction]]:
    return {code: ("mass", Fraction(1)) for code in codes}


_COUNT_UNITS: dict[str, tuple[str, Fraction]] = {
    "10*9/L": ("count", Fraction(1)),
    "10*3/uL": ("count", Fraction(1)),
    "10*3/mm3": ("count", Fraction(1)),
    "/uL": ("count", Fraction(1, 1000)),
    "/mm3": ("count", Fraction(1, 1000)),
}

_ENZYME_UNITS: dict[str, tuple[str, Fraction]] = {
    "U/L": ("activity", Fraction(1)),
    "[IU]/L": ("activity", Fraction(1)),
    "mU/mL": ("activity", Fraction(1)),
    # 1 ukat = 1 umol/s = 60 umol/min = 60 U.
    "ukat/L": ("activity", Fraction(60)),
}

ANALYTES: dict[str, Analyte] = {
    a.key: a
    for a in (
        # Canonical ng/mL (= ug/L). Ferritin in pmol/L (14723-1) has no verified factor: its unit is not listed.
        Analyte("ferritin", frozenset({"2276-4", "20567-4", "24373-3", "14723-1"}), _same("ng/mL", "ug/L")),
        Analyte("ast", frozenset({"1920-8", "30239-8", "88112-8"}), _ENZYME_UNITS),
        Analyte("alt", frozenset({"1742-6"}), _ENZYME_UNITS),
        Analyte("ldh", frozenset({"2532-0", "14804-9", "14805-6"}), _ENZYME_UNITS),
        Analyte(
            "triglycerides",
            frozenset({"2571-8", "14927-8", "3043-7"}),
            {
                "mg/dL": ("mass", Fraction(1)),
                "g/L": ("mass", Fraction(100)),
                "mmol/L": ("molar", Fraction(1)),
            },
        ),
        # Canonical g/L.
        Analyte(
            "fibrinogen",
            frozenset({"3255-7", "48664-7", "30902-1"}),
            {"g/L": ("mass", Fraction(1)), "mg/dL": ("mass", Fraction(1, 100)), "mg/L": ("mass", Fraction(1, 1000))},
        ),
        # Canonical 10^9/L.
        Analyte("platelets", frozenset({"777-3", "26515-7", "778-1", "49497-1"}), _COUNT_UNITS),
        Analyte("wbc", frozenset({"6690-2", "26464-8", "804-5"}), _COUNT_UNITS),
        Analyte("anc", frozenset({"751-8", "26499-4", "753-4"}), _COUNT_UNITS),
        # Canonical g/dL. Hemoglobin in mmol/L (59260-0) is not converted: the factor depends on the monomer/tetramer
        # convention and no paper states a molar threshold, so such a result is unusable.
        Analyte(
            "hemoglobin",
            frozenset({"718-7", "59260-0", "20509-6", "55782-7"}),
            {"g/dL": ("mass", Fraction(1)), "g/L": ("mass", Fraction(1, 10))},
        ),
        # Canonical ng/mL, FEU and DDU alike (the trial's "> 500 ng/mL" is compared as reported).
        Analyte(
            "ddimer",
            frozenset({"48065-7", "48067-3", "71427-9", "48066-5", "48058-2", "91556-1", "7799-0"}),
            {
                "ng/mL": ("mass", Fraction(1)),
                "ng/mL{FEU}": ("mass", Fraction(1)),
                "ng/mL{DDU}": ("mass", Fraction(1)),
                "ug/L": ("mass", Fraction(1)),
                "ug/L{FEU}": ("mass", Fraction(1)),
                "ug/L{DDU}": ("mass", Fraction(1)),
                "ug/mL": ("mass", Fraction(1000)),
                "ug/mL{FEU}": ("mass", Fraction(1000)),
                "ug/mL{DDU}": ("mass", Fraction(1000)),
                "mg/L": ("mass", Fraction(1000)),
                "mg/L{FEU}": ("mass", Fraction(1000)),
                "mg{FEU}/L": ("mass", Fraction(1000)),
            },
        ),
        Analyte(
            "inr",
            frozenset({"6301-6", "34714-6", "46418-0"}),
            {"{INR}": ("ratio", Fraction(1)), "{ratio}": ("ratio", Fraction(1)), "1": ("ratio", Fraction(1))},
        ),
        Analyte("esr", frozenset({"4537-7", "30341-2"}), {"mm/h": ("rate", Fraction(1))}),
    )
}

# Body-temperature LOINC codes that measure core or standard clinical-site temperature. Surface and peripheral
# temperatures (skin 39106-0, body surface 61008-9, finger 60830-7, toe 60833-1, hand 98657-0, foot 98663-8) are not
# fever measurements and are ignored. See DECISIONS.md "Temperature".
FEVER_TEMPERATURE_LOINC = frozenset(
    {
        "8310-5",  # Body temperature
        "8328-7",  # Axillary temperature
        "8329-5",  # Body temperature - Core
        "8330-3",  # Body temperature - Intravascular
        "8331-1",  # Oral temperature
        "8332-9",  # Rectal temperature
        "8333-7",  # Tympanic membrane temperature
        "8334-5",  # Body temperature - Urinary bladder
        "11289-6",  # Body temperature at First encounter
        "60834-9",  # Blood temperature
        "60836-4",  # Esophageal temperature
        "60838-0",  # Nasopharyngeal temperature
        "75539-7",  # Body temperature - Temporal artery
        "75987-8",  # Venous blood temperature
        "76010-8",  # Nasal temperature
        "76011-6",  # Ear temperature
        "91371-5",  # Body temperature - Brain
        "104063-3",  # Body temperature - Groin
    }
)
SURFACE_TEMPERATURE_LOINC = frozenset({"39106-0", "61008-9", "60830-7", "60833-1", "98657-0", "98663-8"})


def to_celsius(value: Fraction, unit: str) -> Fraction | None:
    if unit == "Cel":
        return value
    if unit == "[degF]":
        return (value - 32) * Fraction(5, 9)
    return None


def celsius_to_fahrenheit(value: Fraction) -> Fraction:
    return value * Fraction(9, 5) + 32


@dataclass(frozen=True)
class Measure:
    """A usable result: exact value in the canonical unit of its family."""

    value: Fraction
    family: str


def normalise(analyte: Analyte, value: Fraction, unit: str) -> Measure | None:
    known = analyte.units.get(unit)
    if known is None:
        return None
    family, factor = known
    return Measure(value * factor, family)


def triglycerides_mg_dl(measure: Measure) -> Fraction:
    return measure.value if measure.family == "mass" else measure.value * TRIGLYCERIDE_MG_DL_PER_MMOL_L


def triglycerides_mmol_l(measure: Measure) -> Fraction:
    return measure.value if measure.family == "molar" else measure.value / TRIGLYCERIDE_MG_DL_PER_MMOL_L
