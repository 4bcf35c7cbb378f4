"""Which rule pack a deployment uses (settings -> pack, loaded once per process) and the rule views built from it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from functools import cache
from pathlib import Path

from cds_service.rulepack.loader import load_rule_pack
from cds_service.rulepack.model import RulePack
from cds_service.rules.dosing.calculator import DosingRules
from cds_service.rules.dosing.rounding import RoundDown
from cds_service.settings import Settings

# Clinical parameters that used to be deployment settings. They now live in the rule pack (recorded in every audit
# record); a deployment that still sets one expects an effect it would silently not get, so start-up refuses.
RETIRED_SETTINGS = {
    "CDS_ADULT_AGE_YEARS": "adult_age_years",
    "CDS_LAB_LOOKBACK_HOURS": "lab_window_hours",
    "CDS_TEMPERATURE_LOOKBACK_HOURS": "temperature_window_hours",
    "CDS_WEIGHT_MAX_AGE_DAYS_CHILD": "weight_max_age_days_child",
    "CDS_WEIGHT_MAX_AGE_DAYS_ADULT": "weight_max_age_days_adult",
    "CDS_SAFETY_LAB_LOOKBACK_DAYS": "safety_lab_lookback_days",
    "CDS_HEIGHT_MAX_AGE_DAYS": "height_max_age_days",
    "CDS_DOSE_ROUNDING": "dose_rounding_mg",
    "CDS_UNDERDOSE_TOLERANCE_PERCENT": "underdose_tolerance_percent",
}


def retired_settings(environ: Mapping[str, str]) -> str | None:
    """Why start-up must refuse, when the environment still sets a retired clinical setting (else None)."""
    found = sorted(name for name in RETIRED_SETTINGS if name in environ)
    if not found:
        return None
    moves = ", ".join(f"{name} -> {RETIRED_SETTINGS[name]}" for name in found)
    return (
        f"{', '.join(found)} no longer {'has' if len(found) == 1 else 'have'} any effect: clinical parameters live "
        f"in the rule pack; set them in a site overrides file named by CDS_RULE_PACK_OVERRIDES ({moves})"
    )


def pack_for(settings: Settings) -> RulePack:
    return _load(settings.rule_pack_dir, settings.rule_pack_overrides)


@cache
def _load(directory: Path | None, overrides: Path | None) -> RulePack:
    return load_rule_pack(directory, overrides)


def dosing_rules(pack: RulePack, zone: tzinfo) -> DosingRules:
    parameters = pack.parameters
    return DosingRules(
        protocol=pack.protocol,
        product=pack.product,
        adult_age_years=parameters.adult_age_years,
        weight_max_age_child=parameters.weight_max_age_child,
        weight_max_age_adult=parameters.weight_max_age_adult,
        rounding=RoundDown(parameters.dose_rounding_mg),
        zone=zone,
    )
