"""The rule pack's file formats, as strict pydantic models: a pack that does not match refuses to load.

`cds-service rules --schema` prints these models as JSON Schema for reviewers and site tooling. Numbers are
`Decimal` parsed from the YAML text exactly as written (see loader), so "2.5" is 2.5, not a binary float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

Op = Literal[">", ">=", "<", "<="]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- pack.yaml ------------------------------------------------------------------------------------------------
class ParameterSpec(_Spec):
    value: Decimal
    bounds: tuple[Decimal, Decimal] | None = None
    allowed: tuple[Decimal, ...] | None = None
    why: str

    @model_validator(mode="after")
    def _value_within_bounds(self) -> ParameterSpec:
        if self.bounds is not None and not self.bounds[0] <= self.value <= self.bounds[1]:
            raise ValueError(f"value {self.value} is outside its bounds {self.bounds}")
        if self.allowed is not None and self.value not in self.allowed:
            raise ValueError(f"value {self.value} is not one of {self.allowed}")
        return self


class ThresholdSpec(_Spec):
    op: Op
    value: Decimal
    unit: str


class CitedThreshold(ThresholdSpec):
    citation: str


class WarningSpec(_Spec):
    why: str
    ferritin: CitedThreshold


class DecisionSpec(_Spec):
    critical: str
    warning: WarningSpec


class PackManifest(_Spec):
    id: str
    version: str
    title: str
    publisher: str
    sets: tuple[str, ...]
    parameters: dict[str, ParameterSpec]
    decision: DecisionSpec


# --- valuesets/*.yaml -----------------------------------------------------------------------------------------
class ConceptSpec(_Spec):
    code: str
    display: str
    status: Literal["verified", "unverified"] = "verified"


class IncludeSpec(_Spec):
    system: str | None = None
    systems: tuple[str, ...] | None = None
    match: Literal["exact", "prefix", "digits"] = "exact"
    concepts: tuple[ConceptSpec, ...]

    @model_validator(mode="after")
    def _one_way_to_name_systems(self) -> IncludeSpec:
        if (self.system is None) == (self.systems is None):
            raise ValueError("give either 'system' or 'systems'")
        return self

    def all_systems(self) -> tuple[str, ...]:
        return self.systems if self.systems is not None else (self.system or "",)


class ValueSetSpec(_Spec):
    id: str
    title: str
    purpose: str | None = None
    source: str
    include: tuple[IncludeSpec, ...] = ()
    text: tuple[str, ...] = ()  # free-text spellings, matched as whole words, case-insensitive


# --- analytes.yaml --------------------------------------------------------------------------------------------
class ConversionSpec(_Spec):
    factor: Decimal
    divisor: Decimal = Decimal(1)
    shift: Decimal = Decimal(0)
    molar_mass: Decimal | None = None  # g/mol: documents a molar conversion; the tests check it independently
    basis: str | None = None
    note: str | None = None  # shown with the value whenever this conversion was used


class AnalyteSpec(_Spec):
    key: str
    name: str
    valueset: str
    unit: str
    display_unit: str
    plausible: tuple[Decimal, Decimal]
    conversions: dict[str, ConversionSpec]
    aliases: dict[str, str] = Field(default_factory=dict)
    unitless_ok: bool = False


class AnalyteFile(_Spec):
    model_config = ConfigDict(extra="ignore", frozen=True)  # YAML anchors live in top-level helper keys
    analytes: tuple[AnalyteSpec, ...]


# --- conditions.yaml ------------------------------------------------------------------------------------------
class NamedValueSet(_Spec):
    name: str
    valueset: str
    counts: Literal["known", "active"] = "active"


class ConditionsFile(_Spec):
    underlying: dict[str, NamedValueSet]
    findings: dict[str, NamedValueSet]


# --- criteria/*.yaml ------------------------------------------------------------------------------------------
class InfantThreshold(_Spec):
    under_age_days: int
    value: Decimal


class LabItemSpec(_Spec):
    """A laboratory or vital-sign value against a threshold in the unit of its citation."""

    lab: str | tuple[str, ...]  # analyte key(s); several: the latest result of any (one test, several codings)
    label: str
    op: Op
    value: Decimal
    unit: str
    reading: Literal["latest", "max"] = "latest"  # max: the highest in the temperature window
    or_above_uln: Decimal | None = None  # also met above this multiple of the reported upper reference limit
    infants: InfantThreshold | None = None


class FindingItemSpec(_Spec):
    finding: str
    label: str


class UnreadableItemSpec(_Spec):
    """An item no coded data can decide (e.g. NK-cell activity): always unknown, with what it asks for."""

    unreadable: str
    label: str


class TrendItemSpec(_Spec):
    trend: str
    direction: Literal["rising", "falling"]
    key: str
    label: str


class RatioPart(_Spec):
    lab: str
    unit: str


class RatioSpec(_Spec):
    key: str
    label: str
    numerator: RatioPart
    denominator: RatioPart
    op: Op
    value: Decimal


class RatioItemSpec(_Spec):
    ratio: RatioSpec


class GroupSpec(_Spec):
    key: str
    label: str
    items: tuple[ItemRef, ...]
    k: int | None = None


class AnyOfSpec(_Spec):
    any_of: GroupSpec


class AllOfSpec(_Spec):
    all_of: GroupSpec


class KOfSpec(_Spec):
    k_of: GroupSpec

    @model_validator(mode="after")
    def _k_given(self) -> KOfSpec:
        if self.k_of.k is None or not 1 <= self.k_of.k <= len(self.k_of.items):
            raise ValueError(f"k_of '{self.k_of.key}' needs 1 <= k <= number of items")
        return self


def _kind(keys: tuple[str, ...]) -> Any:
    """A discriminator: the first of `keys` present in the mapping names its kind (clear errors per kind)."""

    def discriminate(value: Any) -> str | None:
        if isinstance(value, dict):
            return next((key for key in keys if key in value), None)
        return next((key for key in keys if getattr(value, key.rstrip("_"), None) is not None), None)

    return Discriminator(discriminate)


ItemSpec = Annotated[
    Annotated[LabItemSpec, Tag("lab")]
    | Annotated[FindingItemSpec, Tag("finding")]
    | Annotated[UnreadableItemSpec, Tag("unreadable")]
    | Annotated[TrendItemSpec, Tag("trend")]
    | Annotated[RatioItemSpec, Tag("ratio")]
    | Annotated[AnyOfSpec, Tag("any_of")]
    | Annotated[AllOfSpec, Tag("all_of")]
    | Annotated[KOfSpec, Tag("k_of")],
    _kind(("lab", "finding", "unreadable", "trend", "ratio", "any_of", "all_of", "k_of")),
]
ItemRef = str | ItemSpec  # a string names an entry of the set's `items`


class PopulationSpec(_Spec):
    citation: str
    diagnosis: tuple[str, ...] | None = None  # any of these coded
    no_diagnosis: tuple[str, ...] | None = None  # none of these coded
    min_age_years: int | Literal["adult"] | None = None
    febrile: ThresholdSpec | None = None  # maximum temperature in the temperature window

    @model_validator(mode="after")
    def _exactly_one_condition(self) -> PopulationSpec:
        given = [self.diagnosis, self.no_diagnosis, self.min_age_years, self.febrile]
        if sum(value is not None for value in given) != 1:
            raise ValueError(
                "a population condition states exactly one of diagnosis, no_diagnosis, min_age_years, febrile"
            )
        return self


class SetNoteSpec(_Spec):
    when_diagnosis: str
    unless_diagnosis: str | None = None
    text: str


class Band(_Spec):
    points: Decimal
    below: Decimal | None = None
    above: Decimal | None = None
    from_: Decimal | None = Field(default=None, alias="from")
    to: Decimal | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BandsScoreItem(_Spec):
    key: str
    label: str
    lab: str
    unit: str
    reading: Literal["latest", "max"] = "latest"
    bands: tuple[Band, ...]


class IfScoreItem(_Spec):
    key: str
    label: str
    if_: str = Field(alias="if")
    points: Decimal

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ImmunosuppressionScoreItem(_Spec):
    key: str
    label: str
    immunosuppression: Literal[True]
    points: Decimal


class CountScoreItem(_Spec):
    key: str
    label: str
    count_of: tuple[str, ...]
    points_by_count: tuple[Decimal, ...]

    @model_validator(mode="after")
    def _a_points_entry_per_count(self) -> CountScoreItem:
        if len(self.points_by_count) != len(self.count_of) + 1:
            raise ValueError(f"'{self.key}': points_by_count needs one entry for 0..{len(self.count_of)} items")
        return self


class LinearTerm(_Spec):
    key: str
    label: str
    coefficient: Decimal
    lab: str | None = None
    unit: str | None = None
    finding: str | None = None
    never_read: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> LinearTerm:
        sources = [self.lab is not None, self.finding is not None, self.never_read]
        if sum(sources) != 1 or (self.lab is not None) != (self.unit is not None):
            raise ValueError(f"term '{self.key}': exactly one of lab (+unit), finding, never_read")
        return self


ScoreItemSpec = Annotated[
    Annotated[BandsScoreItem, Tag("bands")]
    | Annotated[IfScoreItem, Tag("if")]
    | Annotated[ImmunosuppressionScoreItem, Tag("immunosuppression")]
    | Annotated[CountScoreItem, Tag("count_of")],
    _kind(("bands", "if", "immunosuppression", "count_of")),
]


class Interpretation(_Spec):
    text: str
    at_most: Decimal | None = None
    at_least: Decimal | None = None


class Cutoff(_Spec):
    op: Op
    value: Decimal


class ScoreSpec(_Spec):
    cutoff: Cutoff
    interpretation: tuple[Interpretation, ...] = ()
    items: tuple[ScoreItemSpec, ...] = ()
    terms: tuple[LinearTerm, ...] = ()

    @model_validator(mode="after")
    def _points_or_terms(self) -> ScoreSpec:
        if bool(self.items) == bool(self.terms):
            raise ValueError("a score has either points items or linear terms")
        return self


class CitationSpec(_Spec):
    text: str
    url: str | None = None


class CriteriaSetSpec(_Spec):
    key: str
    name: str
    short_name: str
    version: str
    role: Literal["validated", "adjunct", "display"]
    citation: CitationSpec
    setting: str
    population: tuple[PopulationSpec, ...]
    assumptions: tuple[str, ...] = ()
    notes: tuple[SetNoteSpec, ...] = ()
    rule: ItemSpec | None = None
    score: ScoreSpec | None = None
    items: dict[str, ItemSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _rule_or_score(self) -> CriteriaSetSpec:
        if (self.rule is None) == (self.score is None):
            raise ValueError(f"set '{self.key}' needs exactly one of 'rule' or 'score'")
        return self


# --- dosing.yaml ----------------------------------------------------------------------------------------------
class BandSpec(_Spec):
    key: str
    label: str
    applies_to: str
    mg_per_kg_per_day: Decimal
    max_mg_per_day: Decimal
    interval_hours: int


class ProtocolSpec(_Spec):
    version: str
    citation: str
    url: str
    route: str
    band_limit_kg: Decimal
    band_limit_note: str
    bands: tuple[BandSpec, BandSpec]
    max_mg_per_dose: Decimal
    max_mg_per_dose_note: str
    minimum_age_years: int
    minimum_age_note: str


class ProductSpec(_Spec):
    label: str
    mg: Decimal
    ml: Decimal
    smallest_measurable_mg: Decimal
    citation: str
    unit_dose_valueset: str
    unit_dose_units: tuple[str, ...]


class CockcroftGault(_Spec):
    age_from: Decimal
    denominator: Decimal
    female_factor: Decimal
    citation: str


class BedsideSchwartz(_Spec):
    k: Decimal
    citation: str


class SafetySpec(_Spec):
    crcl_limit_ml_min: Decimal
    renal_citation: str
    anc_limit: ThresholdSpec
    anc_citation: str
    tnf_citation: str
    cockcroft_gault: CockcroftGault
    bedside_schwartz: BedsideSchwartz


class DrugValueSets(_Spec):
    anakinra: str
    tnf_inhibitors: str
    immunosuppressants: str
    subcutaneous: str


class CodingSpec(_Spec):
    system: str
    code: str
    display: str


class ConceptForOrders(_Spec):
    text: str
    coding: tuple[CodingSpec, ...]


class OrderSpec(_Spec):
    medication: ConceptForOrders
    route: ConceptForOrders
    note: str


class DosingFile(_Spec):
    protocol: ProtocolSpec
    product: ProductSpec
    safety: SafetySpec
    timing_codes: dict[str, Decimal]
    valuesets: DrugValueSets
    order: OrderSpec


# --- workup.yaml ----------------------------------------------------------------------------------------------
class OrderCode(_Spec):
    code: str  # LOINC
    display: str


class WorkupGroupSpec(_Spec):
    key: str
    label: str
    order: OrderCode
    analytes: tuple[str | tuple[str, ...], ...]  # a nested list: alternatives, any one of which suffices
    for_sets: tuple[str, ...] = ()


class WorkupFile(_Spec):
    source: str
    groups: tuple[WorkupGroupSpec, ...]


# --- site overrides -------------------------------------------------------------------------------------------
class SiteOverrides(_Spec):
    """A site's file (CDS_RULE_PACK_OVERRIDES): parameter values only, each within the pack's bounds."""

    site: str
    parameters: dict[str, Decimal]
    why: str


for _model in (GroupSpec, AnyOfSpec, AllOfSpec, KOfSpec, CriteriaSetSpec):
    _model.model_rebuild()
