"""Criteria sets as typed definitions, compiled from the rule pack (cds_service/rulepack/pack/criteria/*.yaml).

A definition holds each threshold as its source states it (value and unit) and, next to it, the same threshold
converted through the analyte catalogue into the analyte's canonical unit — the exact conversion a patient's
value goes through, so "4 mmol/L" in a paper and a result of "4.0 mmol/L" land on the same side.
Nothing here is typed by hand: the loader builds these objects from the pack; the engine evaluates them;
presentation writes every sentence from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from cds_service.facts.analytes import A
from cds_service.facts.conditions import Finding, Underlying

Op = Literal[">", ">=", "<", "<="]
Role = Literal["validated", "adjunct", "display"]


@dataclass(frozen=True)
class Threshold:
    op: Op
    value: Decimal  # as the source states it
    unit: str  # the source's unit (UCUM)
    canonical: Decimal  # converted into the analyte's canonical unit; comparisons use this


@dataclass(frozen=True)
class InfantThreshold:
    under_age_days: int
    threshold: Threshold


@dataclass(frozen=True)
class LabItem:
    key: str
    label: str
    analytes: tuple[A, ...]  # several: the latest result of any of them (one test, several codings)
    threshold: Threshold
    reading: Literal["latest", "max"]  # max: the highest value in the temperature window
    uln_multiple: Decimal | None = None  # also met above this multiple of the reported upper reference limit
    infants: InfantThreshold | None = None


@dataclass(frozen=True)
class FindingItem:
    key: str
    label: str
    finding: Finding


@dataclass(frozen=True)
class UnreadableItem:
    key: str
    label: str
    asks: str  # what the item needs, as the source states it


@dataclass(frozen=True)
class TrendItem:
    key: str
    label: str
    analyte: A
    direction: Literal["rising", "falling"]


@dataclass(frozen=True)
class RatioItem:
    key: str
    label: str
    numerator: A
    numerator_unit: str
    denominator: A
    denominator_unit: str
    op: Op
    value: Decimal


@dataclass(frozen=True)
class Group:
    key: str
    label: str
    kind: Literal["any", "all", "k"]
    k: int  # any: 1, all: len(items), k: as stated
    items: tuple[Item, ...]


Item = LabItem | FindingItem | UnreadableItem | TrendItem | RatioItem | Group


@dataclass(frozen=True)
class Bound:
    value: Decimal  # source unit
    canonical: Decimal
    inclusive: bool


@dataclass(frozen=True)
class PointsBand:
    points: Decimal
    low: Bound | None  # None: open below
    high: Bound | None  # None: open above

    def contains(self, canonical: Decimal) -> bool:
        if self.low is not None and (
            canonical < self.low.canonical or (canonical == self.low.canonical and not self.low.inclusive)
        ):
            return False
        return not (
            self.high is not None
            and (canonical > self.high.canonical or (canonical == self.high.canonical and not self.high.inclusive))
        )


@dataclass(frozen=True)
class BandsScoreItem:
    key: str
    label: str
    analyte: A
    unit: str
    reading: Literal["latest", "max"]
    bands: tuple[PointsBand, ...]


@dataclass(frozen=True)
class IfScoreItem:
    key: str
    label: str
    item: Item
    points: Decimal


@dataclass(frozen=True)
class ImmunosuppressionScoreItem:
    key: str
    label: str
    points: Decimal


@dataclass(frozen=True)
class CountScoreItem:
    key: str
    label: str
    items: tuple[Item, ...]
    points_by_count: tuple[Decimal, ...]


ScoreItem = BandsScoreItem | IfScoreItem | ImmunosuppressionScoreItem | CountScoreItem


@dataclass(frozen=True)
class LinearTerm:
    key: str
    label: str
    coefficient: Decimal
    analyte: A | None = None
    unit: str | None = None
    finding: Finding | None = None  # None with no analyte: never read (e.g. active arthritis)


@dataclass(frozen=True)
class Interpretation:
    text: str
    at_most: Decimal | None
    at_least: Decimal | None


@dataclass(frozen=True)
class Score:
    op: Op
    cutoff: Decimal
    interpretation: tuple[Interpretation, ...]
    items: tuple[ScoreItem, ...]
    terms: tuple[LinearTerm, ...]


@dataclass(frozen=True)
class Precondition:
    citation: str
    diagnosis: tuple[Underlying, ...] = ()
    no_diagnosis: tuple[Underlying, ...] = ()
    min_age_years: int | None = None
    adult_age: bool = False  # min_age_years is the pack's adult age
    febrile: Threshold | None = None


@dataclass(frozen=True)
class SetNote:
    when: Underlying
    unless: Underlying | None
    text: str


@dataclass(frozen=True)
class CriteriaSet:
    key: str
    name: str
    short_name: str
    version: str
    role: Role
    citation: str
    url: str | None
    setting: str
    population: tuple[Precondition, ...]
    assumptions: tuple[str, ...]
    notes: tuple[SetNote, ...]
    rule: Item | None
    score: Score | None

    @property
    def validated(self) -> bool:
        return self.role == "validated"
