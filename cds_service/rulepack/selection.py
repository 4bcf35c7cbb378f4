"""Which rule pack a deployment uses (settings -> pack, loaded once per process) and the rule views built from it."""

from __future__ import annotations

from datetime import tzinfo
from functools import cache
from pathlib import Path

from cds_service.rulepack.loader import load_rule_pack
from cds_service.rulepack.model import RulePack
from cds_service.rules.dosing.calculator import DosingRules
from cds_service.rules.dosing.rounding import RoundDown
from cds_service.settings import Settings


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
