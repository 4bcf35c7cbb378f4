"""The analyte catalogue: LOINC codes, one canonical UCUM unit, explicit conversions, plausibility.

Sources: codes and conversion factors from ../shared/reference/clinical.md §4 and §4.1 (compiled from
GECCO/num-codex LOINC enumerations [67], HL7 quantitative lab codes [70] and the papers cited there).
Plausibility limits are *gross-error* limits chosen by this project (design, not literature): wide
physiological ranges meant to catch unit and typing mistakes, never used as clinical thresholds.

A value whose unit is not listed here is unknown. Nothing is assumed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

D = Decimal


@dataclass(frozen=True)
class Conversion:
    """canonical = (value + shift) * factor / divisor. Dividing last keeps "÷ 88.4" exact
    (88.4 µmol/L is 1 mg/dL, not 0.99999…); shift is only for °F."""

    factor: Decimal
    divisor: Decimal = Decimal(1)
    shift: Decimal = Decimal(0)
    note: str | None = None  # shown on the card whenever this conversion was used

    def apply(self, value: Decimal) -> Decimal:
        return (value + self.shift) * self.factor / self.divisor


@dataclass(frozen=True)
class Analyte:
    key: str
    name: str
    loinc: frozenset[str]
    unit: str  # canonical UCUM code
    display_unit: str
    conversions: Mapping[str, Conversion]
    plausible: tuple[Decimal, Decimal]
    source: str
    unitless_ok: bool = False
    aliases: Mapping[str, str] = field(default_factory=dict)  # non-UCUM spelling -> UCUM code


SAME = Conversion(D(1))
COUNT_PER_VOLUME = {
    "10*9/L": SAME,
    "10*3/uL": SAME,
    "10*3/mm3": SAME,
    "/uL": Conversion(D("0.001")),
    "/mm3": Conversion(D("0.001")),
    "10*6/L": Conversion(D("0.001")),
}
# Explicit spellings seen in US lab interfaces; each maps to exactly one UCUM unit.
COUNT_ALIASES = {
    "K/uL": "10*3/uL",
    "x10E3/uL": "10*3/uL",
    "10^3/uL": "10*3/uL",
    "10^9/L": "10*9/L",
    "x10E9/L": "10*9/L",
    "cells/uL": "/uL",
    "cells/mm3": "/mm3",
}
ENZYME = {"U/L": SAME, "[IU]/L": SAME, "ukat/L": Conversion(D(60))}  # 1 µkat = 60 U (1 U = 1 µmol/min)
ENZYME_ALIASES = {"IU/L": "[IU]/L", "units/L": "U/L"}
CITE_CODES = "clinical.md §4 (LOINC, UCUM) and §4.1 (conversions)"


def _analyte(
    key: str,
    name: str,
    loinc: set[str],
    unit: str,
    display_unit: str,
    conversions: Mapping[str, Conversion],
    plausible: tuple[str, str],
    *,
    aliases: Mapping[str, str] | None = None,
    unitless_ok: bool = False,
    source: str = CITE_CODES,
) -> Analyte:
    return Analyte(
        key=key,
        name=name,
        loinc=frozenset(loinc),
        unit=unit,
        display_unit=display_unit,
        conversions=conversions,
        plausible=(D(plausible[0]), D(plausible[1])),
        source=source,
        unitless_ok=unitless_ok,
        aliases=aliases or {},
    )


class A(Enum):
    """Analyte keys, so rules name analytes without strings."""

    FERRITIN = "ferritin"
    PLATELETS = "platelets"
    WBC = "wbc"
    ANC = "anc"
    HEMOGLOBIN = "hemoglobin"
    AST = "ast"
    ALT = "alt"
    LDH = "ldh"
    TRIGLYCERIDES = "triglycerides"
    FIBRINOGEN = "fibrinogen"
    DDIMER_FEU = "ddimer_feu"
    DDIMER_DDU = "ddimer_ddu"
    INR = "inr"
    PT = "pt"
    ESR = "esr"
    CRP = "crp"
    TEMPERATURE = "temperature"
    WEIGHT = "weight"
    HEIGHT = "height"
    CREATININE = "creatinine"
    BILIRUBIN = "bilirubin"
    EGFR = "egfr"


PMOL_FERRITIN = Conversion(
    D(1),
    D("2.247"),
    note="ferritin converted from pmol/L at 2.247 pmol/L per ng/mL (conventional factor; unverified)",
)

CATALOGUE: dict[A, Analyte] = {
    A.FERRITIN: _analyte(
        "ferritin",
        "Ferritin",
        {"2276-4", "20567-4", "24373-3", "14723-1"},
        "ng/mL",
        "ng/mL",
        {"ng/mL": SAME, "ug/L": SAME, "mg/L": Conversion(D(1000)), "pmol/L": PMOL_FERRITIN},
        ("0.1", "1000000"),
    ),
    A.PLATELETS: _analyte(
        "platelets",
        "Platelets",
        {"777-3", "26515-7", "778-1", "49497-1"},
        "10*9/L",
        "×10⁹/L",
        COUNT_PER_VOLUME,
        ("0", "3000"),
        aliases=COUNT_ALIASES,
    ),
    A.WBC: _analyte(
        "wbc",
        "White cells",
        {"6690-2", "26464-8", "804-5"},
        "10*9/L",
        "×10⁹/L",
        COUNT_PER_VOLUME,
        ("0", "1000"),
        aliases=COUNT_ALIASES,
    ),
    A.ANC: _analyte(
        "anc",
        "Neutrophils (absolute)",
        {"751-8", "26499-4", "753-4"},
        "10*9/L",
        "×10⁹/L",
        COUNT_PER_VOLUME,
        ("0", "500"),
        aliases=COUNT_ALIASES,
    ),
    A.HEMOGLOBIN: _analyte(
        "hemoglobin",
        "Hemoglobin",
        {"718-7", "59260-0", "20509-6", "55782-7"},
        "g/dL",
        "g/dL",
        {
            "g/dL": SAME,
            "g/L": Conversion(D("0.1")),
            "mmol/L": Conversion(D(1), D("0.6206"), note="hemoglobin converted from mmol/L (monomer) at 0.6206"),
        },
        ("0.5", "30"),
    ),
    A.AST: _analyte(
        "ast",
        "AST",
        {"1920-8", "30239-8", "88112-8"},
        "U/L",
        "U/L",
        ENZYME,
        ("0", "100000"),
        aliases=ENZYME_ALIASES,
    ),
    A.ALT: _analyte(
        "alt",
        "ALT",
        {"1742-6"},  # 1743-4 (with P-5'-P) is UNVERIFIED in clinical.md: left out
        "U/L",
        "U/L",
        ENZYME,
        ("0", "100000"),
        aliases=ENZYME_ALIASES,
    ),
    A.LDH: _analyte(
        "ldh",
        "LDH",
        {"2532-0", "14804-9", "14805-6"},
        "U/L",
        "U/L",
        ENZYME,
        ("0", "200000"),
        aliases=ENZYME_ALIASES,
    ),
    A.TRIGLYCERIDES: _analyte(
        "triglycerides",
        "Triglycerides",
        {"2571-8", "14927-8", "3043-7"},
        "mg/dL",
        "mg/dL",
        {"mg/dL": SAME, "mmol/L": Conversion(D("88.57")), "g/L": Conversion(D(100))},
        ("1", "20000"),
    ),
    A.FIBRINOGEN: _analyte(
        "fibrinogen",
        "Fibrinogen",
        {"3255-7", "48664-7", "30902-1"},
        "mg/dL",
        "mg/dL",
        {
            "mg/dL": SAME,
            "g/L": Conversion(D(100)),
            "mg/L": Conversion(D("0.1")),
            "umol/L": Conversion(D(100), D("2.94"), note="fibrinogen converted from µmol/L at 2.94 (MW ≈ 340 kDa)"),
        },
        ("0", "2000"),
    ),
    A.DDIMER_FEU: _analyte(
        "ddimer_feu",
        "D-dimer (FEU)",
        {"48065-7", "48067-3", "71427-9"},
        "ng/mL{FEU}",
        "ng/mL FEU",
        {
            "ng/mL{FEU}": SAME,
            "ug/L{FEU}": SAME,
            "ug/mL{FEU}": Conversion(D(1000)),
            "mg/L{FEU}": Conversion(D(1000)),
            "mg{FEU}/L": Conversion(D(1000)),
            "ng/mL": SAME,
            "ug/L": SAME,
            "ug/mL": Conversion(D(1000)),
            "mg/L": Conversion(D(1000)),
        },
        ("0", "1000000"),
    ),
    A.DDIMER_DDU: _analyte(
        "ddimer_ddu",
        "D-dimer (DDU)",
        {"48066-5", "48058-2", "91556-1"},
        "ng/mL{DDU}",
        "ng/mL DDU",
        {
            "ng/mL{DDU}": SAME,
            "ug/L{DDU}": SAME,
            "ug/mL{DDU}": Conversion(D(1000)),
            "mg/L{DDU}": Conversion(D(1000)),
            "ng/mL": SAME,
            "ug/L": SAME,
            "ug/mL": Conversion(D(1000)),
            "mg/L": Conversion(D(1000)),
        },
        ("0", "1000000"),
    ),
    A.INR: _analyte(
        "inr",
        "INR",
        {"6301-6", "34714-6", "46418-0"},
        "{INR}",
        "",
        {"{INR}": SAME, "{ratio}": SAME, "1": SAME},
        ("0.5", "30"),
        unitless_ok=True,
    ),
    A.PT: _analyte("pt", "Prothrombin time", {"5902-2"}, "s", "s", {"s": SAME}, ("5", "300")),
    A.ESR: _analyte(
        "esr",
        "ESR",
        {"4537-7", "30341-2"},
        "mm/h",
        "mm/h",
        {"mm/h": SAME},
        ("0", "200"),
        aliases={"mm/hr": "mm/h"},
    ),
    A.CRP: _analyte(
        "crp",
        "CRP",
        {"1988-5", "30522-7"},
        "mg/L",
        "mg/L",
        {"mg/L": SAME, "mg/dL": Conversion(D(10))},
        ("0", "1000"),
    ),
    A.TEMPERATURE: _analyte(
        "temperature",
        "Temperature",
        {"8310-5", "8331-1"},
        "Cel",
        "°C",
        {"Cel": SAME, "[degF]": Conversion(D(5), D(9), shift=D(-32))},
        ("25", "46"),
        aliases={"C": "Cel", "°C": "Cel", "degC": "Cel", "F": "[degF]", "°F": "[degF]", "degF": "[degF]"},
    ),
    A.WEIGHT: _analyte(
        "weight",
        "Body weight",
        {"29463-7", "3141-9"},
        "kg",
        "kg",
        {"kg": SAME, "g": Conversion(D("0.001")), "[lb_av]": Conversion(D("0.45359237"))},
        ("0.3", "400"),
        aliases={"lb": "[lb_av]", "lbs": "[lb_av]", "Kg": "kg", "KG": "kg"},
    ),
    A.HEIGHT: _analyte(
        "height",
        "Body height",
        {"8302-2"},
        "cm",
        "cm",
        {"cm": SAME, "m": Conversion(D(100)), "mm": Conversion(D("0.1")), "[in_i]": Conversion(D("2.54"))},
        ("20", "280"),
        aliases={"in": "[in_i]", "inch": "[in_i]", "inches": "[in_i]"},
    ),
    A.CREATININE: _analyte(
        "creatinine",
        "Creatinine",
        {"2160-0", "14682-9", "38483-4"},
        "mg/dL",
        "mg/dL",
        {"mg/dL": SAME, "umol/L": Conversion(D(1), D("88.4")), "mmol/L": Conversion(D(1000), D("88.4"))},
        ("0.05", "40"),
    ),
    A.BILIRUBIN: _analyte(
        "bilirubin",
        "Bilirubin (total)",
        {"1975-2", "14631-6", "42719-5"},
        "mg/dL",
        "mg/dL",
        {"mg/dL": SAME, "umol/L": Conversion(D(1), D("17.1"))},
        ("0", "100"),
    ),
    A.EGFR: _analyte(
        "egfr",
        "eGFR",
        {"98979-8", "62238-1", "33914-3", "50384-7"},
        "mL/min/{1.73_m2}",
        "mL/min/1.73 m²",
        {"mL/min/{1.73_m2}": SAME},
        ("0", "300"),
        aliases={"mL/min/1.73m2": "mL/min/{1.73_m2}", "mL/min/1.73 m2": "mL/min/{1.73_m2}"},
    ),
}

ANALYTE_BY_LOINC: dict[str, A] = {code: key for key, analyte in CATALOGUE.items() for code in analyte.loinc}
assert len(ANALYTE_BY_LOINC) == sum(len(a.loinc) for a in CATALOGUE.values()), "a LOINC code in two analytes"


def loinc_query(*keys: A) -> str:
    """The `code=` value of a FHIR search for these analytes (system|code, comma = OR)."""
    return ",".join(f"http://loinc.org|{code}" for key in keys for code in sorted(CATALOGUE[key].loinc))
