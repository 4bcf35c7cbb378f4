"""Settings -> the rule parameters (rules never see the settings object or the environment)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from cds_service.rules.dosing.calculator import DosingRules
from cds_service.rules.dosing.rounding import ROUNDING_POLICIES
from cds_service.settings import Settings


def dosing_rules(settings: Settings) -> DosingRules:
    return DosingRules(
        adult_age_years=settings.adult_age_years,
        weight_max_age_child=timedelta(days=settings.weight_max_age_days_child),
        weight_max_age_adult=timedelta(days=settings.weight_max_age_days_adult),
        rounding=ROUNDING_POLICIES[settings.dose_rounding],
    )


def underdose_tolerance(settings: Settings) -> Decimal:
    return Decimal(settings.underdose_tolerance_percent) / 100
