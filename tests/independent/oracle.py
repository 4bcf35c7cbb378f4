"""Independent oracle for the MAS criteria sets, written from the papers (rationale and quotes: DECISIONS.md).

`evaluate` answers, for one patient at `now`, whether each criteria set is met, not met, unknown or not applicable,
and which card indicator the product should then show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

from tests.independent import codes
from tests.independent.fhir_facts import Facts, read_facts
from tests.independent.tri import Tri, all_of, any_of, compare, k_of_n, negate
from tests.independent.units import triglycerides_mg_dl, triglycerides_mmol_l

SET_KEYS = ("trial", "eular2016", "hlh2004", "hscore", "ms-score", "ferritin-esr", "sepsis-mas-features")
VALIDATED_SETS = ("trial", "eular2016", "hlh2004", "hscore", "ms-score")
ADJUNCT_SETS = ("ferritin-esr", "sepsis-mas-features")

NOT_APPLICABLE = "not applicable"
FEBRILE_CELSIUS = Fraction(38)
HLH_FEVER_CELSIUS = Fraction("38.5")
TRIAL_FEVER_CELSIUS = (Fraction(101) - 32) * Fraction(5, 9)  # 101 degF, compared exactly
LONG_TERM_THERAPY = timedelta(days=30)
HSCORE_CUTOFF = 169
MS_SCORE_CUTOFF = Fraction("-2.1")
FERRITIN_ESR_CUTOFF = Fraction("21.5")
WARNING_FERRITIN = Fraction(500)


@dataclass(frozen=True)
class OracleResult:
    sets: dict[str, str]
    indicator: str | None


# ---------------------------------------------------------------------------------------------- building blocks


def _lab(facts: Facts, key: str, op: str, threshold: str | int) -> Tri:
    measure = facts.lab(key)
    return compare(measure.value if measure else None, op, Fraction(threshold))


def _triglycerides(facts: Facts, op: str, *, mg_dl: str | None = None, mmol_l: str | None = None) -> Tri:
    """Compare in the unit the result was reported in when the paper states a threshold in that unit; otherwise
    convert to the paper's unit (88.57 mg/dL per mmol/L)."""
    measure = facts.lab("triglycerides")
    if measure is None:
        return Tri.UNKNOWN
    if mmol_l is not None and (measure.family == "molar" or mg_dl is None):
        return compare(triglycerides_mmol_l(measure), op, Fraction(mmol_l))
    assert mg_dl is not None
    return compare(triglycerides_mg_dl(measure), op, Fraction(mg_dl))


def _temperature_at_least(facts: Facts, threshold_celsius: Fraction) -> Tri:
    highest, open_above = facts.temperature.highest_known, facts.temperature.open_above
    if highest is not None and highest >= threshold_celsius:
        return Tri.MET
    if highest is not None and not open_above:
        return Tri.NOT_MET
    return Tri.UNKNOWN


def _finding(facts: Facts, matcher: Callable[[str, str], bool]) -> Tri:
    """A clinical finding labs cannot show: met when coded active, otherwise unknown (never absent)."""
    return Tri.MET if codes.has_diagnosis(facts.conditions, matcher, active_only=True) else Tri.UNKNOWN


def _still_disease(facts: Facts) -> bool:
    return codes.has_diagnosis(facts.conditions, codes.is_sjia, active_only=False) or codes.has_diagnosis(
        facts.conditions, codes.is_aosd, active_only=False
    )


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a non-leap year: the birthday is taken as 1 March
        return date(day.year + years, 3, 1)


def _age_at_least(facts: Facts, years: int) -> Tri:
    if facts.birth_bounds is None:
        return Tri.UNKNOWN
    today = facts.now.date()
    earliest, latest = facts.birth_bounds
    if _add_years(latest, years) <= today:
        return Tri.MET
    if _add_years(earliest, years) > today:
        return Tri.NOT_MET
    return Tri.UNKNOWN


def _age_under_days(facts: Facts, days: int) -> Tri:
    if facts.birth_bounds is None:
        return Tri.UNKNOWN
    today = facts.now.date()
    earliest, latest = facts.birth_bounds
    if (today - earliest).days < days:
        return Tri.MET
    if (today - latest).days >= days:
        return Tri.NOT_MET
    return Tri.UNKNOWN


def _gate(population: Tri, criteria: Tri) -> str:
    """A set outside its population is not applicable; with the population unknown it cannot be met."""
    if population is Tri.NOT_MET:
        return NOT_APPLICABLE
    if population is Tri.MET:
        return criteria.value
    return Tri.NOT_MET.value if criteria is Tri.NOT_MET else Tri.UNKNOWN.value


# ------------------------------------------------------------------------------------------------ shared items


def _transaminases_trial(facts: Facts) -> Tri:
    """NCT02780583: "ALT OR AST > 120 IU/L (or > 2x upper limit of normal)"."""
    results: list[Tri] = []
    for key in ("alt", "ast"):
        lab = facts.labs.get(key)
        if lab is None or lab.measure is None:
            results.append(Tri.UNKNOWN)
            continue
        value = lab.measure.value
        if value > 120:
            results.append(Tri.MET)
        elif lab.upper_limit_of_normal is not None and lab.upper_limit_of_normal.family == lab.measure.family:
            results.append(Tri.of(value > 2 * lab.upper_limit_of_normal.value))
        else:
            results.append(Tri.UNKNOWN)
    return any_of(results)


def _coagulopathy_trial(facts: Facts) -> Tri:
    """NCT02780583: "Fibrinogen < 1.5 g/L (150 mg/dl) or INR > 1.5 or d-dimer > 500 ng/ml"."""
    return any_of(
        (
            _lab(facts, "fibrinogen", "<", "1.5"),
            _lab(facts, "inr", ">", "1.5"),
            _lab(facts, "ddimer", ">", 500),
        )
    )


# --------------------------------------------------------------------------------------------------- the sets


def trial(facts: Facts) -> str:
    """NCT02780583 inclusion: path 1 (previous sJIA diagnosis, Ravelli 2005 criteria) or path 2 (no sJIA)."""
    malignancy = codes.has_diagnosis(facts.conditions, codes.is_malignancy, active_only=True)
    population = all_of((_age_at_least(facts, 1), Tri.of(not malignancy)))
    if codes.has_diagnosis(facts.conditions, codes.is_sjia, active_only=False):
        laboratory = [
            _lab(facts, "platelets", "<=", 262),
            _lab(facts, "ast", ">", 59),
            _lab(facts, "wbc", "<=", "4.0"),
            _lab(facts, "fibrinogen", "<=", "2.5"),
        ]
        clinical = [
            _finding(facts, codes.is_cns_dysfunction),
            _finding(facts, codes.is_hemorrhage),
            _finding(facts, codes.is_hepatomegaly),
        ]
        criteria = any_of((k_of_n(2, laboratory), k_of_n(3, laboratory + clinical)))
    else:
        bicytopenia = k_of_n(
            2,
            (
                _lab(facts, "anc", "<", "1.0"),
                _lab(facts, "platelets", "<", 100),
                _lab(facts, "hemoglobin", "<", 9),
            ),
        )
        items = (
            bicytopenia,
            _triglycerides(facts, ">", mg_dl="265"),
            _finding(facts, codes.is_splenomegaly),
            _transaminases_trial(facts),
            _temperature_at_least(facts, TRIAL_FEVER_CELSIUS),
            _coagulopathy_trial(facts),
        )
        criteria = all_of((_lab(facts, "ferritin", ">", 2000), k_of_n(3, items)))
    return _gate(population, criteria)


def eular2016(facts: Facts) -> str:
    """Ravelli 2016: a febrile patient with known or suspected sJIA; ferritin > 684 and any 2 of 4."""
    if not _still_disease(facts):
        return NOT_APPLICABLE
    population = _temperature_at_least(facts, FEBRILE_CELSIUS)
    criteria = all_of(
        (
            _lab(facts, "ferritin", ">", 684),
            k_of_n(
                2,
                (
                    _lab(facts, "platelets", "<=", 181),
                    _lab(facts, "ast", ">", 48),
                    _triglycerides(facts, ">", mg_dl="156"),
                    _lab(facts, "fibrinogen", "<=", "3.6"),
                ),
            ),
        )
    )
    return _gate(population, criteria)


def hlh2004(facts: Facts) -> str:
    """Henter 2007: 5 of the 8 diagnostic criteria (the molecular path is outside this screen)."""
    infant = _age_under_days(facts, 28)
    hemoglobin_low = any_of(
        (
            all_of((infant, _lab(facts, "hemoglobin", "<", 10))),
            all_of((negate(infant), _lab(facts, "hemoglobin", "<", 9))),
        )
    )
    cytopenias = k_of_n(
        2,
        (hemoglobin_low, _lab(facts, "platelets", "<", 100), _lab(facts, "anc", "<", "1.0")),
    )
    lipids_or_fibrinogen = any_of(
        (_triglycerides(facts, ">=", mg_dl="265", mmol_l="3.0"), _lab(facts, "fibrinogen", "<=", "1.5"))
    )
    malignancy = codes.has_diagnosis(facts.conditions, codes.is_malignancy, active_only=True)
    hemophagocytosis = Tri.NOT_MET if malignancy else Tri.UNKNOWN
    items = (
        _temperature_at_least(facts, HLH_FEVER_CELSIUS),
        _finding(facts, codes.is_splenomegaly),
        cytopenias,
        lipids_or_fibrinogen,
        hemophagocytosis,
        Tri.UNKNOWN,  # low or absent NK-cell activity: not available
        _lab(facts, "ferritin", ">=", 500),
        Tri.UNKNOWN,  # soluble CD25 >= 2400 U/mL: not available
    )
    return k_of_n(5, items).value


Range = tuple[int, int]


def _points_for(value: Fraction | None, bands: Callable[[Fraction], int], lowest: int, highest: int) -> Range:
    if value is None:
        return lowest, highest
    points = bands(value)
    return points, points


def _count_points(items: list[Tri], table: dict[int, int]) -> Range:
    met = items.count(Tri.MET)
    possible = met + items.count(Tri.UNKNOWN)
    return table[met], table[possible]


def _immunosuppression(facts: Facts) -> Tri:
    if codes.has_diagnosis(facts.conditions, codes.is_hiv, active_only=False):
        return Tri.MET
    if not facts.medications:
        return Tri.UNKNOWN
    undecided = False
    for medication in facts.medications:
        if medication.status not in {"active", "on-hold"}:
            continue
        kind = codes.medication_kind(medication)
        if kind is False:
            continue
        long_term = medication.authored is not None and facts.now - medication.authored >= LONG_TERM_THERAPY
        if kind is True and long_term:
            return Tri.MET
        undecided = True
    return Tri.UNKNOWN if undecided else Tri.NOT_MET


def _hscore_temperature(value: Fraction) -> int:
    if value < Fraction("38.4"):
        return 0
    return 33 if value <= Fraction("39.4") else 49


def _hscore_ferritin(value: Fraction) -> int:
    if value < 2000:
        return 0
    return 35 if value <= 6000 else 50


def _hscore_triglycerides(mmol_l: Fraction) -> int:
    if mmol_l < Fraction("1.5"):
        return 0
    return 44 if mmol_l <= 4 else 64


def hscore_range(facts: Facts) -> Range:
    """Fardet 2014 HScore as [lowest possible, highest possible] given the unknown items."""
    ranges: list[Range] = []
    immunosuppression = _immunosuppression(facts)
    ranges.append({Tri.MET: (18, 18), Tri.NOT_MET: (0, 0), Tri.UNKNOWN: (0, 18)}[immunosuppression])
    temperature = facts.temperature
    low_t = _hscore_temperature(temperature.highest_known) if temperature.highest_known is not None else 0
    high_t = 49 if temperature.open_above or temperature.highest_known is None else low_t
    ranges.append((low_t, high_t))
    organs = [_finding(facts, codes.is_hepatomegaly), _finding(facts, codes.is_splenomegaly)]
    ranges.append(_count_points(organs, {0: 0, 1: 23, 2: 38}))
    cytopenias = [
        _lab(facts, "hemoglobin", "<=", "9.2"),
        _lab(facts, "wbc", "<=", "5.0"),
        _lab(facts, "platelets", "<=", 110),
    ]
    ranges.append(_count_points(cytopenias, {0: 0, 1: 0, 2: 24, 3: 34}))
    ferritin = facts.lab("ferritin")
    ranges.append(_points_for(ferritin.value if ferritin else None, _hscore_ferritin, 0, 50))
    triglycerides = facts.lab("triglycerides")
    ranges.append(
        _points_for(triglycerides_mmol_l(triglycerides) if triglycerides else None, _hscore_triglycerides, 0, 64)
    )
    fibrinogen = facts.lab("fibrinogen")
    ranges.append(
        _points_for(fibrinogen.value if fibrinogen else None, lambda v: 30 if v <= Fraction("2.5") else 0, 0, 30)
    )
    ast = facts.lab("ast")
    ranges.append(_points_for(ast.value if ast else None, lambda v: 19 if v >= 30 else 0, 0, 19))
    ranges.append((0, 35))  # haemophagocytosis features on bone-marrow aspirate: not available
    return sum(r[0] for r in ranges), sum(r[1] for r in ranges)


def hscore(facts: Facts) -> str:
    low, high = hscore_range(facts)
    criteria = Tri.MET if low >= HSCORE_CUTOFF else Tri.NOT_MET if high < HSCORE_CUTOFF else Tri.UNKNOWN
    return _gate(_age_at_least(facts, 18), criteria)


def ms_score_range(facts: Facts) -> tuple[Fraction, Fraction] | None:
    """Minoia 2019 MS score as [lowest, highest]; None when a laboratory variable is missing."""
    platelets, ldh = facts.lab("platelets"), facts.lab("ldh")
    fibrinogen, ferritin = facts.lab("fibrinogen"), facts.lab("ferritin")
    if platelets is None or ldh is None or fibrinogen is None or ferritin is None:
        return None
    laboratory = (
        Fraction("-0.003") * platelets.value
        + Fraction("0.001") * ldh.value
        + Fraction("-0.004") * (fibrinogen.value * 100)  # the formula takes mg/dL
        + Fraction("0.0001") * ferritin.value
    )
    low = high = laboratory
    for matcher, weight in ((codes.is_cns_dysfunction, Fraction("2.44")), (codes.is_hemorrhage, Fraction("1.54"))):
        if _finding(facts, matcher) is Tri.MET:
            low += weight
        high += weight
    low += Fraction("-1.30")  # active arthritis is never coded: 0 or 1
    return low, high


def ms_score(facts: Facts) -> str:
    if not _still_disease(facts):
        return NOT_APPLICABLE
    bounds = ms_score_range(facts)
    if bounds is None:
        criteria = Tri.UNKNOWN
    else:
        low, high = bounds
        criteria = Tri.MET if low >= MS_SCORE_CUTOFF else Tri.NOT_MET if high < MS_SCORE_CUTOFF else Tri.UNKNOWN
    return _gate(_temperature_at_least(facts, FEBRILE_CELSIUS), criteria)


def ferritin_esr(facts: Facts) -> str:
    """Eloseily 2019: ferritin (ng/mL) : ESR (mm/h) ratio of 21.5 in sJIA, compared as ferritin >= 21.5 x ESR."""
    if not _still_disease(facts):
        return NOT_APPLICABLE
    ferritin, esr = facts.lab("ferritin"), facts.lab("esr")
    if ferritin is None or esr is None or (esr.value == 0 and ferritin.value == 0):
        return Tri.UNKNOWN.value
    return Tri.of(ferritin.value >= FERRITIN_ESR_CUTOFF * esr.value).value


def sepsis_mas_features(facts: Facts) -> str:
    """NCT02780583 narrative (after Shakoory 2016): ferritin > 2,000 ng/mL, coagulopathy, liver-enzyme elevation."""
    if not codes.has_diagnosis(facts.conditions, codes.is_sepsis, active_only=True):
        return NOT_APPLICABLE
    return all_of((_lab(facts, "ferritin", ">", 2000), _coagulopathy_trial(facts), _transaminases_trial(facts))).value


_SETS: dict[str, Callable[[Facts], str]] = {
    "trial": trial,
    "eular2016": eular2016,
    "hlh2004": hlh2004,
    "hscore": hscore,
    "ms-score": ms_score,
    "ferritin-esr": ferritin_esr,
    "sepsis-mas-features": sepsis_mas_features,
}


def evaluate(resources: list[dict[str, Any]], patient_id: str, now: datetime) -> OracleResult:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    facts = read_facts(resources, patient_id, now)
    sets = {key: _SETS[key](facts) for key in SET_KEYS}
    ferritin = facts.lab("ferritin")
    if any(sets[key] == Tri.MET.value for key in VALIDATED_SETS):
        indicator: str | None = "critical"
    elif (ferritin is not None and ferritin.value >= WARNING_FERRITIN) or any(
        sets[key] == Tri.MET.value for key in ADJUNCT_SETS
    ):
        indicator = "warning"
    else:
        indicator = None
    return OracleResult(sets=sets, indicator=indicator)
