"""An independent unit oracle for the rule pack: pint (exact rational arithmetic) and molar masses from their sources.

Nothing here reads a factor from the pack. Each UCUM unit the pack accepts is translated by hand into a pint
expression (PINT_UNITS); pint then derives every conversion itself. A unit the pack accepts that is missing from
PINT_UNITS makes tests/test_unit_oracle.py fail, so a new unit cannot ship unchecked.

pint has no chemistry: a mass <-> amount-of-substance conversion needs a molar mass. The tests take the molar mass the
pack states (analytes.yaml `molar_mass`) and let pint do the unit arithmetic; MOLAR_MASSES holds independent values
(with sources) that the stated molar masses are checked against.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any

import pint

from cds_service.rulepack import PACK_DIR
from cds_service.rulepack.loader import _read
from cds_service.rulepack.schema import AnalyteFile

# Fractions throughout: 101 °F is exactly 115/3 °C and 1 lb exactly 45359237/100000000 kg, so "agrees" means equal.
UREG = pint.UnitRegistry(non_int_type=Fraction)


@dataclass(frozen=True)
class OracleUnit:
    """A UCUM unit as pint understands it. `offset`: a temperature scale (converted as a point, not a ratio).
    `arbitrary`: why pint cannot express what the unit measures (only an identity conversion can be checked)."""

    expression: str | None
    offset: bool = False
    arbitrary: str | None = None
    note: str | None = None


_INR = (
    "INR is the ISI-calibrated prothrombin-time ratio; UCUM writes it as an annotation on unity, so pint sees only 1 "
    "and cannot tell an INR from any other ratio"
)

# UCUM code -> pint. Annotations ({FEU}, {DDU}, {1.73_m2}) carry no unit meaning in UCUM (UCUM §4.5), except that
# "/{1.73_m2}" states a normalisation to 1.73 m² of body surface, which pint can express as such.
PINT_UNITS: Mapping[str, OracleUnit] = {
    # counts per volume (pint: counts are dimensionless numbers)
    "10*9/L": OracleUnit("1e9 / L"),
    "10*3/uL": OracleUnit("1e3 / uL"),
    "10*3/mm3": OracleUnit("1e3 / mm**3"),
    "10*6/L": OracleUnit("1e6 / L"),
    "/uL": OracleUnit("1 / uL"),
    "/mm3": OracleUnit("1 / mm**3"),
    # enzyme activity: pint's enzyme_unit U = 1 µmol/min, katal = 1 mol/s
    "U/L": OracleUnit("U / L"),
    "ukat/L": OracleUnit("ukat / L"),
    "[IU]/L": OracleUnit(
        "U / L",
        note="pint has no International Unit; for enzymes the IU is the IUB (1964) enzyme unit, 1 µmol/min = pint's U",
    ),
    # mass and amount of substance per volume
    "ng/mL": OracleUnit("ng / mL"),
    "ug/L": OracleUnit("ug / L"),
    "ug/mL": OracleUnit("ug / mL"),
    "mg/L": OracleUnit("mg / L"),
    "mg/dL": OracleUnit("mg / dL"),
    "g/L": OracleUnit("g / L"),
    "g/dL": OracleUnit("g / dL"),
    "pmol/L": OracleUnit("pmol / L"),
    "umol/L": OracleUnit("umol / L"),
    "mmol/L": OracleUnit("mmol / L"),
    "ng/mL{FEU}": OracleUnit("ng / mL"),
    "ug/L{FEU}": OracleUnit("ug / L"),
    "ug/mL{FEU}": OracleUnit("ug / mL"),
    "mg/L{FEU}": OracleUnit("mg / L"),
    "mg{FEU}/L": OracleUnit("mg / L"),
    "ng/mL{DDU}": OracleUnit("ng / mL"),
    "ug/L{DDU}": OracleUnit("ug / L"),
    "ug/mL{DDU}": OracleUnit("ug / mL"),
    "mg/L{DDU}": OracleUnit("mg / L"),
    # ratios
    "{INR}": OracleUnit(None, arbitrary=_INR),
    "{ratio}": OracleUnit("dimensionless"),
    "1": OracleUnit("dimensionless"),
    # time, rate, temperature, body size
    "s": OracleUnit("s"),
    "mm/h": OracleUnit("mm / h"),
    "Cel": OracleUnit("degC", offset=True),
    "[degF]": OracleUnit("degF", offset=True),
    "kg": OracleUnit("kg"),
    "g": OracleUnit("g"),
    "[lb_av]": OracleUnit("avoirdupois_pound"),
    "cm": OracleUnit("cm"),
    "m": OracleUnit("m"),
    "mm": OracleUnit("mm"),
    "[in_i]": OracleUnit("international_inch"),
    "mL/min/{1.73_m2}": OracleUnit("mL / min / (1.73 * m**2)"),
}

# Non-UCUM spellings (analytes.yaml `aliases`) -> what the spelling means, written independently of its target.
ALIAS_SPELLINGS: Mapping[str, OracleUnit] = {
    "K/uL": OracleUnit("1e3 / uL"),
    "x10E3/uL": OracleUnit("1e3 / uL"),
    "10^3/uL": OracleUnit("1e3 / uL"),
    "10^9/L": OracleUnit("1e9 / L"),
    "x10E9/L": OracleUnit("1e9 / L"),
    "cells/uL": OracleUnit("1 / uL"),
    "cells/mm3": OracleUnit("1 / mm**3"),
    "IU/L": PINT_UNITS["[IU]/L"],
    "units/L": OracleUnit("U / L"),
    "mm/hr": OracleUnit("mm / hour"),
    "C": OracleUnit("degC", offset=True),
    "°C": OracleUnit("degC", offset=True),
    "degC": OracleUnit("degC", offset=True),
    "F": OracleUnit("degF", offset=True),
    "°F": OracleUnit("degF", offset=True),
    "degF": OracleUnit("degF", offset=True),
    "lb": OracleUnit("avoirdupois_pound"),
    "lbs": OracleUnit("avoirdupois_pound"),
    "Kg": OracleUnit("kilogram"),
    "KG": OracleUnit("kilogram"),
    "in": OracleUnit("international_inch"),
    "inch": OracleUnit("international_inch"),
    "inches": OracleUnit("international_inch"),
    "mL/min/1.73m2": OracleUnit("mL / min / (1.73 * m**2)"),
    "mL/min/1.73 m2": OracleUnit("mL / min / (1.73 * m**2)"),
}


# --- molar masses -------------------------------------------------------------------------------------------------
# CIAAW standard atomic weights (IUPAC, "Standard atomic weights of the elements 2021", Pure Appl Chem 2022;94:573),
# as the published intervals for elements whose isotopic composition varies in nature.
ATOMIC_WEIGHT_INTERVALS: Mapping[str, tuple[Fraction, Fraction]] = {
    "H": (Fraction("1.00784"), Fraction("1.00811")),
    "C": (Fraction("12.0096"), Fraction("12.0116")),
    "N": (Fraction("14.00643"), Fraction("14.00728")),
    "O": (Fraction("15.99903"), Fraction("15.99977")),
}


def formula_molar_mass(formula: Mapping[str, int]) -> tuple[Fraction, Fraction]:
    """The lowest and highest molar mass (g/mol) a molecular formula can have over the CIAAW intervals."""
    low = sum((ATOMIC_WEIGHT_INTERVALS[element][0] * count for element, count in formula.items()), Fraction(0))
    high = sum((ATOMIC_WEIGHT_INTERVALS[element][1] * count for element, count in formula.items()), Fraction(0))
    return low, high


@dataclass(frozen=True)
class MolarMassReference:
    low: Fraction  # g/mol
    high: Fraction
    source: str


MOLAR_MASSES: Mapping[str, MolarMassReference] = {
    "triglycerides": MolarMassReference(
        *formula_molar_mass({"C": 57, "H": 104, "O": 6}),
        "triolein (glyceryl trioleate) C57H104O6, the reference triglyceride of the mmol/L convention; PubChem CID "
        "5497163 lists 885.4 g/mol; computed here from the formula with the CIAAW 2021 atomic-weight intervals",
    ),
    "creatinine": MolarMassReference(
        *formula_molar_mass({"C": 4, "H": 7, "N": 3, "O": 1}),
        "creatinine C4H7N3O (PubChem CID 588, 113.12 g/mol); computed from the formula with CIAAW 2021 intervals",
    ),
    "bilirubin": MolarMassReference(
        *formula_molar_mass({"C": 33, "H": 36, "N": 4, "O": 6}),
        "bilirubin IXα C33H36N4O6 (PubChem CID 5280352, 584.7 g/mol); computed from the formula with CIAAW 2021",
    ),
    "hemoglobin": MolarMassReference(
        Fraction("64458") / 4,
        Fraction("64458") / 4,
        "ICSH reference method for haemoglobinometry (ICSH standard 1995, J Clin Pathol 1996;49:271): human "
        "haemoglobin tetramer 64 458 g/mol; the mmol/L convention counts the monomer (one haem), 64 458 / 4",
    ),
    "fibrinogen": MolarMassReference(
        Fraction(330_000),
        Fraction(340_000),
        "fibrinogen, a ~340 kDa glycoprotein (Mosesson MW, J Thromb Haemost 2005;3:1894; glossary values "
        "330 000-340 000 Da)",
    ),
    "ferritin": MolarMassReference(
        Fraction(24 * 20_020),
        Fraction(24 * 21_226),
        "ferritin is a 24-mer of L chains (UniProt P02792, 175 aa, 20 020 Da) and H chains (UniProt P02794, 183 aa, "
        "21 226 Da) in a variable ratio: 480 480-509 424 g/mol for the protein shell alone (iron core and glycans "
        "excluded, which only add mass); suppliers quote '~450 kDa'. No single molar mass exists",
    ),
}


# --- pint arithmetic ----------------------------------------------------------------------------------------------
class NotExpressible(Exception):
    """pint cannot express what this unit measures (see OracleUnit.arbitrary)."""


class MissingMapping(Exception):
    pass


def oracle_unit(unit: str) -> OracleUnit:
    found = PINT_UNITS.get(unit)
    if found is None:
        raise MissingMapping(
            f"UCUM unit '{unit}' is accepted by the rule pack but has no oracle mapping: add it to PINT_UNITS in "
            "tests/unit_oracle.py (its meaning written as a pint expression, never the pack's factor)"
        )
    return found


def _quantity(value: Fraction, unit: OracleUnit) -> Any:
    if unit.expression is None:
        raise NotExpressible(unit.arbitrary)
    if unit.offset:
        return UREG.Quantity(value, unit.expression)
    return value * UREG.parse_expression(unit.expression)


def needs_molar_mass(source: OracleUnit, target: OracleUnit) -> bool:
    """Whether converting between the two units crosses mass and amount of substance."""
    if source.expression is None or target.expression is None or source.offset or target.offset:
        return False
    ratio = _quantity(Fraction(1), source) / _quantity(Fraction(1), target)
    return not ratio.dimensionless


def convert_with(value: Fraction, source: OracleUnit, target: OracleUnit, molar_mass: Fraction | None) -> Fraction:
    """`value` in `source`, expressed in `target`, computed by pint alone (a molar mass only where one is needed)."""
    quantity = _quantity(value, source)
    if source.offset or target.offset:
        return Fraction(quantity.to(target.expression).magnitude)
    ratio = quantity / _quantity(Fraction(1), target)
    if ratio.dimensionless:
        return Fraction(ratio.to("dimensionless").magnitude)
    if molar_mass is None:
        raise ValueError("the units differ in dimension and no molar mass was given")
    mass_per_amount = UREG.Quantity(molar_mass, "g / mol")
    for candidate in (ratio * mass_per_amount, ratio / mass_per_amount):
        if candidate.dimensionless:
            return Fraction(candidate.to("dimensionless").magnitude)
    raise ValueError("the units differ by more than mass versus amount of substance")


def convert(value: Fraction, source: str, target: str, molar_mass: Fraction | None = None) -> Fraction:
    return convert_with(value, oracle_unit(source), oracle_unit(target), molar_mass)


# --- what the pack states -----------------------------------------------------------------------------------------
@cache
def stated_molar_masses() -> dict[tuple[str, str], Decimal]:
    """(analyte key, unit) -> the molar mass analytes.yaml states for that conversion (documentation, not used by the
    service; read here straight from the shipped YAML)."""
    spec = AnalyteFile.model_validate(_read(PACK_DIR / "analytes.yaml"))
    return {
        (analyte.key, unit): conversion.molar_mass
        for analyte in spec.analytes
        for unit, conversion in analyte.conversions.items()
        if conversion.molar_mass is not None
    }


def molar_mass_for(analyte: str, source: str, target: str) -> Fraction | None:
    """The molar mass the pack states for a conversion between two of an analyte's units (either side may carry it)."""
    stated = stated_molar_masses()
    for unit in (source, target):
        if (analyte, unit) in stated:
            return Fraction(stated[(analyte, unit)])
    return None
