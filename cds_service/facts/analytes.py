"""The analyte catalogue's types: which codes are which analyte, its canonical UCUM unit, explicit conversions.

The catalogue's content (codes, units, factors, plausibility limits, each with its source) lives in the rule
pack (cds_service/rulepack/pack/analytes.yaml and valuesets/); this module holds only the shapes and the analyte
keys the code refers to. A value whose unit is not listed for its analyte is unknown. Nothing is assumed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

LOINC = "http://loinc.org"


class A(Enum):
    """Analyte keys, so rules name analytes without strings (the pack defines exactly these)."""

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


@dataclass(frozen=True)
class Conversion:
    """canonical = (value + shift) * factor / divisor. Dividing last keeps "÷ 88.4" exact
    (88.4 µmol/L is 1 mg/dL, not 0.99999…); shift is only for °F."""

    factor: Decimal
    divisor: Decimal = Decimal(1)
    shift: Decimal = Decimal(0)
    note: str | None = None  # shown with the value whenever this conversion was used
    basis: str | None = None  # where the factor comes from (the rule book shows it)
    molar_mass: Decimal | None = None  # g/mol, documents a molar conversion (the rule book shows it)

    def apply(self, value: Decimal) -> Decimal:
        return (value + self.shift) * self.factor / self.divisor

    def invert(self, canonical: Decimal) -> Decimal:
        """The canonical value expressed in this conversion's unit (for score terms stated in another unit)."""
        return canonical * self.divisor / self.factor - self.shift


@dataclass(frozen=True)
class Analyte:
    key: str
    name: str
    codes: frozenset[str]  # LOINC codes
    unit: str  # canonical UCUM code
    display_unit: str
    conversions: Mapping[str, Conversion]
    plausible: tuple[Decimal, Decimal]
    unitless_ok: bool = False
    aliases: Mapping[str, str] = field(default_factory=dict)  # non-UCUM spelling -> UCUM code
    valueset: str | None = None  # id of the pack value set its codes come from (the rule book names it)

    def to_canonical(self, value: Decimal, unit: str) -> Decimal:
        """A value in one of this analyte's accepted units, in the canonical unit (KeyError: unit not accepted)."""
        return self.conversions[self.aliases.get(unit, unit)].apply(value)

    def from_canonical(self, canonical: Decimal, unit: str) -> Decimal:
        return self.conversions[self.aliases.get(unit, unit)].invert(canonical)


class Catalogue:
    """Every analyte of the pack, and the reverse index from LOINC code to analyte."""

    def __init__(self, analytes: Mapping[A, Analyte]) -> None:
        self.analytes = dict(analytes)
        self.by_code: dict[str, A] = {}
        for key, analyte in self.analytes.items():
            for code in analyte.codes:
                if code in self.by_code:
                    raise ValueError(f"LOINC {code} is in two analytes: {self.by_code[code].value} and {key.value}")
                self.by_code[code] = key

    def __getitem__(self, key: A) -> Analyte:
        return self.analytes[key]

    def loinc_query(self, keys: Iterable[A]) -> str:
        """The `code=` value of a FHIR search for these analytes (system|code, comma = OR)."""
        return ",".join(f"{LOINC}|{code}" for key in keys for code in sorted(self.analytes[key].codes))
