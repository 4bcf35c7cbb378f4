"""The rule pack: the single, versioned, reviewable statement of the product's clinical knowledge.

`load_rule_pack()` reads the pack folder (default: the one shipped in this package), checks every file against
its schema and every cross-reference (value sets, analytes, units, item names, dose caps), applies a site's
parameter overrides within their bounds, and hashes the effective content. A pack that fails any check refuses
to load, so a broken or out-of-bounds pack stops the service at start-up, not at the first patient.
"""

from __future__ import annotations

from functools import cache

from cds_service.rulepack.loader import PACK_DIR, RulePackError, load_rule_pack
from cds_service.rulepack.model import RulePack

__all__ = ["PACK_DIR", "RulePack", "RulePackError", "default_pack", "load_rule_pack"]


@cache
def default_pack() -> RulePack:
    """The shipped pack without site overrides (tests, the CLI's fixtures, the sandbox store)."""
    return load_rule_pack()
