"""The NCT02780583 anakinra protocol as typed data. Its numbers and their citation live in the rule pack
(cds_service/rulepack/pack/dosing.yaml); this module holds the shapes and the band rule.

Read the protocol carefully: the low band is for *children* of 40 kg or less; an adult of 40 kg or less is in
the high band ("children > 40 kg and adults"). Exactly 40 kg is in the low band (the pack says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class DoseBand:
    key: str
    label: str
    applies_to: str
    mg_per_kg_per_day: Decimal
    max_mg_per_day: Decimal
    interval_hours: int

    @property
    def doses_per_day(self) -> int:
        return 24 // self.interval_hours

    @property
    def max_mg_per_dose(self) -> Decimal:
        return self.max_mg_per_day / self.doses_per_day


@dataclass(frozen=True)
class Protocol:
    version: str
    citation: str
    url: str
    route: str  # e.g. "subcutaneous"
    child_band: DoseBand  # children up to and including band_limit_kg
    other_band: DoseBand  # children above it, and adults at any weight
    band_limit_kg: Decimal
    band_limit_note: str
    max_mg_per_dose: Decimal
    minimum_age_years: int
    max_mg_per_dose_note: str = ""  # why the per-dose cap is what it is (the rule book shows it)
    minimum_age_note: str = ""

    @property
    def bands(self) -> tuple[DoseBand, DoseBand]:
        return (self.child_band, self.other_band)

    @property
    def max_mg_per_day_any_band(self) -> Decimal:
        """Without a usable weight the band is unknown; the largest cap of any band still applies."""
        return max(band.max_mg_per_day for band in self.bands)

    def band_for(self, *, weight_kg: Decimal, adult: bool) -> DoseBand:
        if not adult and weight_kg <= self.band_limit_kg:
            return self.child_band
        return self.other_band


@dataclass(frozen=True)
class Product:
    label: str
    mg: Decimal
    ml: Decimal
    smallest_measurable_mg: Decimal
    citation: str = ""  # where the smallest measurable amount comes from (the rule book shows it)

    @property
    def mg_per_ml(self) -> Decimal:
        return self.mg / self.ml


@dataclass(frozen=True)
class OrderTemplate:
    """What a suggested or corrected order names: the product and the route (FHIR CodeableConcept JSON), a note."""

    medication: dict[str, object]
    route: dict[str, object]
    note: str
