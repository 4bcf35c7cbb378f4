"""Three-valued results: every item is met, not met or unknown, and carries what it was decided on.

Missing data is never "not met". A rule "k of n" is met when k items are met, not met when even counting every
unknown item as met could not reach k, and unknown otherwise. Results are structured (values, times, sources,
the threshold applied, a reason code); presentation turns them into words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum

from cds_service.facts.analytes import A
from cds_service.facts.conditions import ClinicalContext, Evidence
from cds_service.facts.observations import Measurement, Measurements
from cds_service.facts.patient import AgeRange
from cds_service.rules.mas.definitions import (
    CriteriaSet,
    Item,
    LinearTerm,
    Precondition,
    ScoreItem,
    Threshold,
)


class Status(Enum):
    MET = "met"
    NOT_MET = "not met"
    UNKNOWN = "unknown"


class Reason(Enum):
    """Why an item is unknown, or what else decided it (presentation words these)."""

    NO_RESULT = "no-result"  # no usable result in the window
    NOT_CODED = "not-coded"  # a clinical finding not coded in the record
    UNREADABLE = "unreadable"  # no coded data can decide it (read the laboratory report)
    NEVER_READ = "never-read"  # the record is not read for it (e.g. active arthritis)
    DENOMINATOR_ZERO = "denominator-zero"  # a ratio with 0 below the line
    FEW_VALUES = "few-values"  # a trend needs two values
    INFANT_AGE_UNKNOWN = "infant-age-unknown"  # the value is between the infant and the standard threshold
    ABOVE_ULN = "above-uln"  # met by the multiple of the reported upper reference limit
    MISSING_TERM = "missing-term"  # a linear score with a missing laboratory term
    UNREADABLE_RESULT = "unreadable-result"  # the newest result (or one in a maximum's window) cannot be read


@dataclass(frozen=True)
class ItemResult:
    definition: Item | ScoreItem | LinearTerm
    status: Status
    measurements: tuple[Measurement, ...] = ()  # the values the decision used, newest first
    evidence: Evidence | None = None  # a coded finding
    parts: tuple[ItemResult, ...] = ()  # groups, counts, points-if items
    points: tuple[Decimal, Decimal] | None = None  # scores: lowest and highest possible contribution
    value: Decimal | None = None  # a ratio, a trend's change (fraction), a linear term's contribution
    threshold: Threshold | None = None  # the threshold applied (the infant one, when it applied)
    reason: Reason | None = None

    @property
    def key(self) -> str:
        return self.definition.key

    @property
    def label(self) -> str:
        return self.definition.label


@dataclass(frozen=True)
class PreconditionResult:
    definition: Precondition
    status: Status
    measurement: Measurement | None = None
    evidence: Evidence | None = None


@dataclass(frozen=True)
class SetResult:
    definition: CriteriaSet
    population: tuple[PreconditionResult, ...]
    applicability: Status  # all population preconditions together
    criteria_outcome: Status  # the rule or score alone
    outcome: Status  # after the population gate: met only when the population is met too
    result: ItemResult | None  # the rule's item tree (rule sets)
    items: tuple[ItemResult, ...]  # score items or terms (score sets)
    score: tuple[Decimal, Decimal] | None
    notes: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.definition.key

    @property
    def applicable(self) -> bool:
        return self.applicability is not Status.NOT_MET

    @property
    def validated(self) -> bool:
        return self.definition.validated


@dataclass(frozen=True)
class Inputs:
    """What the criteria read: latest values within the windows, the clinical context and the patient's age."""

    measurements: Measurements
    context: ClinicalContext
    now: datetime
    lab_window: timedelta
    temperature_window: timedelta
    trend_min_change: Decimal  # the pack's parameter, as a fraction
    age: AgeRange | None = None
    age_days: tuple[int, int] | None = None  # youngest and oldest possible age in days (None: unknown)

    def lab(self, analyte: A) -> Measurement | None:
        """The latest result in the lab window; None when there is none or the newest one cannot be read."""
        return self.latest_of((analyte,))

    def latest_of(self, analytes: Sequence[A]) -> Measurement | None:
        measurement, unreadable_newer = self.latest_state(analytes)
        return None if unreadable_newer else measurement

    def latest_state(self, analytes: Sequence[A]) -> tuple[Measurement | None, bool]:
        """The newest readable result of any of the analytes, and whether an unreadable one is newer still
        (then the current value is unknown: an older value must not stand in for it)."""
        found = [m for m in (self.measurements.latest(a, now=self.now, window=self.lab_window) for a in analytes) if m]
        newest = max(found, key=lambda m: m.when) if found else None
        unreadable = [
            t
            for t in (self.measurements.newest_unreadable(a, now=self.now, window=self.lab_window) for a in analytes)
            if t is not None
        ]
        return newest, bool(unreadable) and (newest is None or max(unreadable) > newest.when)

    def max_temperature(self) -> Measurement | None:
        return self.max_temperature_state()[0]

    def max_temperature_state(self) -> tuple[Measurement | None, bool]:
        """The highest readable temperature in its window, and whether an unreadable one in the window might be
        higher (then only "at least this high" is known)."""
        values = self.measurements.within(A.TEMPERATURE, now=self.now, window=self.temperature_window)
        highest = max(values, key=lambda m: m.value) if values else None
        uncertain = (
            self.measurements.newest_unreadable(A.TEMPERATURE, now=self.now, window=self.temperature_window) is not None
        )
        return highest, uncertain

    def series(self, analyte: A) -> tuple[Measurement, ...]:
        return self.measurements.within(analyte, now=self.now, window=self.lab_window)


def count_status(statuses: Sequence[Status], k: int) -> Status:
    met = sum(status is Status.MET for status in statuses)
    unknown = sum(status is Status.UNKNOWN for status in statuses)
    if met >= k:
        return Status.MET
    if met + unknown < k:
        return Status.NOT_MET
    return Status.UNKNOWN


def all_of(statuses: Sequence[Status]) -> Status:
    return count_status(statuses, len(statuses))
