"""The loaded rule pack, as the rest of the service reads it (typed, immutable, already cross-checked)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from cds_service.facts.analytes import Catalogue
from cds_service.facts.conditions import ConditionCodes
from cds_service.facts.medications import DrugCodes
from cds_service.facts.valuesets import ValueSet
from cds_service.rulepack.schema import ParameterSpec, ValueSetSpec
from cds_service.rules.dosing.protocol import OrderTemplate, Product, Protocol
from cds_service.rules.dosing.safety import SafetyRules
from cds_service.rules.mas.definitions import CriteriaSet, Threshold
from cds_service.rules.mas.screen import WorkupGroup


@dataclass(frozen=True)
class Parameters:
    lab_window: timedelta
    temperature_window: timedelta
    future_tolerance: timedelta
    adult_age_years: int
    weight_max_age_child: timedelta
    weight_max_age_adult: timedelta
    safety_lab_lookback: timedelta
    height_max_age: timedelta
    immunosuppression_long_term: timedelta
    trend_min_change: Decimal  # a fraction (0.10 = 10 %)
    underdose_tolerance: Decimal  # a fraction
    dose_rounding_mg: Decimal


@dataclass(frozen=True)
class Decision:
    critical: str
    warning: str
    warning_ferritin: Threshold  # canonical unit ng/mL
    warning_ferritin_citation: str


@dataclass(frozen=True)
class ParameterEntry:
    """One parameter as the rule book shows it: the pack's statement and the value in force."""

    spec: ParameterSpec
    value: Decimal
    overridden: bool


@dataclass(frozen=True)
class RulePack:
    id: str
    version: str
    title: str
    sha256: str  # of the effective content (pack files + site overrides)
    source: Path
    site: str | None  # the overriding site, if any
    site_why: str | None
    parameters: Parameters
    parameter_entries: Mapping[str, ParameterEntry]
    catalogue: Catalogue
    valuesets: Mapping[str, ValueSet]
    valueset_specs: Mapping[str, ValueSetSpec]
    conditions: ConditionCodes
    drugs: DrugCodes
    sets: tuple[CriteriaSet, ...]
    decision: Decision
    workup: tuple[WorkupGroup, ...]
    workup_source: str
    protocol: Protocol
    product: Product
    safety: SafetyRules
    order: OrderTemplate

    @property
    def label(self) -> str:
        return f"{self.id}@{self.version}"

    def identity(self) -> dict[str, str]:
        """What the audit and the discovery entries record, so any card can be replayed with its pack."""
        identity = {"id": self.id, "version": self.version, "sha256": self.sha256}
        if self.site:
            identity["site"] = self.site
        return identity

    def rule_versions(self) -> dict[str, str]:
        versions = {f"set:{s.key}": s.version for s in self.sets}
        versions["rule-pack"] = f"{self.label}+sha256:{self.sha256}"  # the full hash: replay needs this exact pack
        if self.site:
            versions["rule-pack-site"] = self.site
        versions["anakinra-protocol"] = self.protocol.version
        return versions
