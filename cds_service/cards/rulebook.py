"""The rule book: the whole rule pack in force, written out for the clinical review committee that signs it off.

`render_markdown(pack)` is the document (docs/rulebook.md is the shipped pack's, and a test keeps it equal to this
output); `render_json(pack)` is the same content as structured data. Every number, unit, code and citation comes
from the loaded pack objects — the parameters as a site's overrides set them, each threshold as its source states
it and as the engine compares it (converted into the analyte's canonical unit through the same catalogue as a
patient's value). The words around them are this module's; nothing clinical is typed here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass
from datetime import timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from cds_service.cards import criteria_text, wording
from cds_service.facts.analytes import A, Analyte, Conversion
from cds_service.facts.conditions import Underlying
from cds_service.rulepack.model import RulePack
from cds_service.rules.dosing.rounding import RoundDown
from cds_service.rules.mas.definitions import (
    BandsScoreItem,
    Bound,
    CriteriaSet,
    FindingItem,
    Group,
    IfScoreItem,
    ImmunosuppressionScoreItem,
    Item,
    LabItem,
    LinearTerm,
    PointsBand,
    Precondition,
    RatioItem,
    Score,
    ScoreItem,
    Threshold,
    TrendItem,
    UnreadableItem,
)

ROLE_WORDS = {
    "validated": "validated — met, it makes the card critical (MAS likely)",
    "adjunct": "adjunct — met, it can make the card a warning (MAS not excluded), never critical",
    "display": "display — shown for context only, never decides a card",
}
# The unit of a parameter is a word of its name (lab_window_hours, dose_rounding_mg, weight_max_age_days_child).
PARAMETER_UNITS = {"hours": "h", "minutes": "min", "days": "days", "years": "years", "percent": "%", "mg": "mg"}
MATCH_WORDS = {"exact": "exact code", "prefix": "the code and every code below it", "digits": "same digits (NDC)"}
INDENT = "  "


def render_markdown(pack: RulePack) -> str:
    return _Book(pack).markdown()


def render_json(pack: RulePack) -> str:
    return json.dumps(book_document(pack), indent=2, ensure_ascii=False) + "\n"


# --- Markdown -------------------------------------------------------------------------------------------------
class _Book:
    def __init__(self, pack: RulePack) -> None:
        self.pack = pack
        self.catalogue = pack.catalogue
        self.lines: list[str] = []
        self.diagnoses = {key.value: named.name for key, named in pack.conditions.underlying.items()}
        self.lab_hours = _hours(pack.parameters.lab_window)
        self.temperature_hours = _hours(pack.parameters.temperature_window)

    def markdown(self) -> str:
        self.title()
        self.overrides()
        self.decision()
        self.parameters()
        self.sets()
        self.analytes()
        self.conditions()
        self.valuesets()
        self.dosing()
        self.workup()
        text = "\n".join(self.lines).rstrip("\n") + "\n"
        return text

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def block(self, *lines: str) -> None:
        """A paragraph, list or table: the lines, then one empty line."""
        self.lines.extend(lines)
        self.lines.append("")

    # -- head ----------------------------------------------------------------------------------------------------
    def title(self) -> None:
        pack = self.pack
        self.block(f"# Rule book: {pack.title}")
        self.block(
            "Generated from the rule pack by `cds-service rules`: change the pack, never this text. It is the "
            "document the clinical review committee signs off; the service runs exactly these definitions."
        )
        self.block(
            "| | |",
            "|---|---|",
            f"| Rule pack | `{pack.label}` |",
            f"| Content hash (SHA-256 of the pack files and any site overrides) | `{pack.sha256}` |",
            f"| Site | {pack.site or 'none (the pack as published)'} |",
            f"| Criteria sets | {len(pack.sets)} |",
        )

    def overrides(self) -> None:
        pack = self.pack
        self.block("## Site overrides in force")
        overridden = {name: entry for name, entry in pack.parameter_entries.items() if entry.overridden}
        if pack.site is None:
            self.block("None: every parameter has the value the pack states.")
            return
        self.block(f"Site **{pack.site}** overrides {len(overridden)} parameter(s). Why: {pack.site_why}")
        if overridden:
            rows = [
                f"| `{name}` | {wording.as_written(entry.spec.value)} | **{wording.as_written(entry.value)}** "
                f"| {_parameter_unit(name)} |"
                for name, entry in overridden.items()
            ]
            self.block("| parameter | pack value | site value | unit |", "|---|---|---|---|", *rows)

    def decision(self) -> None:
        decision = self.pack.decision
        ferritin = self.catalogue[A.FERRITIN]
        self.block("## How the decision is made")
        self.block(
            f"- **Critical card.** {decision.critical}",
            f"- **Warning card.** {decision.warning}",
            f"{INDENT}- Warning ferritin: latest {ferritin.name} in the last {self.lab_hours} h "
            f"{self.compared(decision.warning_ferritin, (ferritin,))}.",
            f"{INDENT}- Source: {decision.warning_ferritin_citation}",
            "- **Roles of the criteria sets.** " + "; ".join(ROLE_WORDS[role] for role in ROLE_WORDS) + ".",
        )
        self.block("### How to read the rules")
        self.block(
            "- A laboratory threshold is written as its source states it (value and unit), then *compared as*: the "
            "same threshold converted into the analyte's canonical unit through the analyte catalogue below. A "
            "patient's result is converted into the canonical unit the same way and compared with the converted "
            "threshold — the converted form is the one compared.",
            "- Converted values are exact; a decimal that does not end is cut after 3 decimals and marked with …",
            "- Every item is met, not met or unknown. A result missing from its window, a finding not coded and a "
            "result that cannot be read leave an item unknown, never normal. *k of n* is met when k items are met "
            "and not met only when the unknown items could not reach k; *all of* needs every item, *any of* one.",
            "- A set whose population conditions are not known to hold is at most unknown, even when its "
            "criteria are met.",
        )

    def parameters(self) -> None:
        self.block("## Parameters")
        self.block(
            "Values the pack states and a site may override within the bounds or allowed values shown "
            "(CDS_RULE_PACK_OVERRIDES)."
        )
        rows = []
        for name, entry in self.pack.parameter_entries.items():
            spec = entry.spec
            value = wording.as_written(entry.value)
            if entry.overridden:
                value = f"**{value}** (site override; pack: {wording.as_written(spec.value)})"
            if spec.bounds is not None:
                limits = f"{wording.as_written(spec.bounds[0])} to {wording.as_written(spec.bounds[1])}"
            elif spec.allowed is not None:
                limits = "one of " + ", ".join(wording.as_written(v) for v in spec.allowed)
            else:
                limits = "—"
            rows.append(f"| `{name}` | {value} | {_parameter_unit(name)} | {limits} | {_cell(spec.why)} |")
        self.block("| parameter | value | unit | bounds or allowed | why |", "|---|---|---|---|---|", *rows)

    # -- criteria sets -------------------------------------------------------------------------------------------
    def sets(self) -> None:
        self.block("## Criteria sets")
        self.block(
            "| # | criteria set | key | role | version |",
            "|---|---|---|---|---|",
            *(
                f"| {number} | {definition.name} | `{definition.key}` | {definition.role} | {definition.version} |"
                for number, definition in enumerate(self.pack.sets, start=1)
            ),
        )
        for number, definition in enumerate(self.pack.sets, start=1):
            self.criteria_set(number, definition)

    def criteria_set(self, number: int, definition: CriteriaSet) -> None:
        self.block(f"### {number}. {definition.name}")
        source = definition.citation + (f" <{definition.url}>" if definition.url else "")
        self.block(
            f"- Key: `{definition.key}` · version {definition.version} · short name on cards: {definition.short_name}",
            f"- Role: {ROLE_WORDS[definition.role]}",
            f"- Source: {source}",
            f"- Setting: {definition.setting}",
        )
        if definition.population:
            self.block("**Applies when** every one of these holds:")
            self.block(*(self.precondition(p) for p in definition.population))
        else:
            self.block("**Applies to** all patients.")
        if definition.assumptions:
            self.block("**Assumptions**")
            self.block(*(f"- {assumption}" for assumption in definition.assumptions))
        if definition.notes:
            self.block("**Notes shown with the result**")
            self.block(*(self.set_note(note.when, note.unless, note.text) for note in definition.notes))
        if definition.rule is not None:
            self.block("**Rule**")
            self.block(*self.item(definition.rule, 0))
        if definition.score is not None:
            self.score(definition.score)

    def precondition(self, definition: Precondition) -> str:
        if definition.febrile is not None:
            temperature = self.catalogue[A.TEMPERATURE]
            text = (
                f"febrile: highest {temperature.name} in the last {self.temperature_hours} h "
                f"{self.compared(definition.febrile, (temperature,))}"
            )
        elif definition.min_age_years is not None:
            years = definition.min_age_years
            text = f"age {years} {'year' if years == 1 else 'years'} or older"
            if definition.adult_age:
                text += " (the adult age: parameter `adult_age_years`)"
        else:
            text = criteria_text.precondition(definition, self.diagnoses)
        return f"- {text} — source: {definition.citation}"

    def set_note(self, when: Underlying, unless: Underlying | None, text: str) -> str:
        condition = f"when {self.diagnoses[when.value]} is coded"
        if unless is not None:
            condition += f" and {self.diagnoses[unless.value]} is not"
        return f"- {condition[0].upper()}{condition[1:]}: {text}"

    def item(self, item: Item, depth: int) -> list[str]:
        lead = INDENT * depth + "- "
        if isinstance(item, Group):
            lines = [f"{lead}**{criteria_text.group_rule(item)}** — {item.label} (`{item.key}`):"]
            for part in item.items:
                lines += self.item(part, depth + 1)
            return lines
        return [f"{lead}{self.leaf(item)}"]

    def leaf(self, item: LabItem | FindingItem | UnreadableItem | TrendItem | RatioItem) -> str:
        if isinstance(item, LabItem):
            analytes = tuple(self.catalogue[a] for a in item.analytes)
            text = f"**{item.label}**: {self.reading(item.reading, analytes)} {self.compared(item.threshold, analytes)}"
            if item.uln_multiple is not None:
                text += (
                    f"; also met above {wording.as_written(item.uln_multiple)} × the upper reference limit "
                    "the laboratory reports with the result"
                )
            if item.infants is not None:
                infants = item.infants
                text += (
                    f"; under {infants.under_age_days} days of age instead {self.compared(infants.threshold, analytes)}"
                )
            return text
        if isinstance(item, FindingItem):
            named = self.pack.conditions.findings[item.finding]
            return (
                f"**{item.label}**: met when {named.name} is coded as an active condition (value set "
                f"`{named.valueset.id}`); otherwise unknown, never absent"
            )
        if isinstance(item, UnreadableItem):
            return f"**{item.label}**: {item.asks} — no coded result is read for it, so it is always unknown"
        if isinstance(item, TrendItem):
            analyte = self.catalogue[item.analyte]
            sign = "+" if item.direction == "rising" else "−"
            change = wording.precise(self.pack.parameters.trend_min_change * 100)
            return (
                f"**{item.label}**: a change of {sign}{change} % or more from the oldest to the newest "
                f"{analyte.name} in the last {self.lab_hours} h (parameter `trend_min_change_percent`)"
            )
        numerator, denominator = self.catalogue[item.numerator], self.catalogue[item.denominator]
        limit = wording.as_written(item.value)
        return (
            f"**{item.label}**: latest {numerator.name} in {wording.unit(item.numerator_unit)} ÷ latest "
            f"{denominator.name} in {wording.unit(item.denominator_unit)} (last {self.lab_hours} h) "
            f"{wording.SYMBOL[item.op]} {limit}; with a divisor of 0 it is compared as {numerator.name} "
            f"{wording.SYMBOL[item.op]} {limit} × 0"
        )

    def reading(self, reading: str, analytes: tuple[Analyte, ...]) -> str:
        names = " or ".join(analyte.name for analyte in analytes)
        if reading == "max":
            return f"highest {names} in the last {self.temperature_hours} h"
        return f"latest {'of ' if len(analytes) > 1 else ''}{names} in the last {self.lab_hours} h"

    def compared(self, threshold: Threshold, analytes: tuple[Analyte, ...]) -> str:
        """ "≥ 3.0 mmol/L as stated; compared as ≥ 265.71 mg/dL (canonical unit)"."""
        symbol = wording.SYMBOL[threshold.op]
        stated = f"{symbol} {_stated(threshold.value, threshold.unit)}"
        canonical_units = list(dict.fromkeys(analyte.unit for analyte in analytes))
        if threshold.canonical == threshold.value and [wording.unit(u) for u in canonical_units] == [
            wording.unit(threshold.unit)
        ]:
            if not wording.unit(threshold.unit):
                return f"{stated}, compared as stated (a number without unit)"
            return f"{stated}, compared as stated ({wording.unit(threshold.unit)} is the canonical unit)"
        compared = " or ".join(f"{symbol} {_converted(threshold.canonical, unit)}" for unit in canonical_units)
        return f"{stated} as stated; compared as {compared} (canonical unit)"

    # -- scores --------------------------------------------------------------------------------------------------
    def score(self, score: Score) -> None:
        cutoff = f"{wording.SYMBOL[score.op]} {wording.as_written(score.cutoff)}"
        if score.terms:
            self.block(
                f"**Score** = the sum of the terms below. Met when every possible value of the score is {cutoff}, "
                "not met when none is, otherwise unknown. A clinical term not coded makes the score a range; a "
                "laboratory term without a result makes it unknown."
            )
            self.block(*(self.term(term) for term in score.terms))
        else:
            self.block(
                f"**Score** = the sum of the points below. Met when every possible value of the score is {cutoff}, "
                "not met when none is, otherwise unknown. An item that cannot be read makes the score a range "
                "(from its lowest to its highest points)."
            )
            lines: list[str] = []
            for item in score.items:
                lines += self.score_item(item)
            self.block(*lines)
        if score.interpretation:
            self.block("**Interpretation shown with the score**")
            self.block(*(self.interpretation(i.text, i.at_most, i.at_least) for i in score.interpretation))

    def interpretation(self, text: str, at_most: Decimal | None, at_least: Decimal | None) -> str:
        limits = []
        if at_most is not None:
            limits.append(f"at most {wording.as_written(at_most)}")
        if at_least is not None:
            limits.append(f"at least {wording.as_written(at_least)}")
        return f"- Score {' and '.join(limits)}: {text}"

    def score_item(self, item: ScoreItem) -> list[str]:
        if isinstance(item, BandsScoreItem):
            analyte = self.catalogue[item.analyte]
            lines = [f"- **{item.label}**: {self.reading(item.reading, (analyte,))}, points by range:"]
            lines += [f"{INDENT}- {self.band(band, item.unit, analyte)}" for band in item.bands]
            return lines
        if isinstance(item, IfScoreItem):
            return [
                f"- **{item.label}**: {_points(item.points)} when this item is met:",
                *self.item(item.item, 1),
            ]
        if isinstance(item, ImmunosuppressionScoreItem):
            codes = self.pack.conditions
            hiv = codes.underlying[Underlying.HIV].name
            return [
                f"- **{item.label}**: {_points(item.points)} when {hiv} is coded, or an active order of a drug in "
                f"value set `{codes.immunosuppressants.id}` was written at least {codes.long_term.days} days ago "
                "(parameter `immunosuppression_long_term_days`); unknown when the medication list is unavailable "
                "or only more recent orders exist (a recent one may be the MAS treatment itself)"
            ]
        table = ", ".join(f"{count}: {_points(points)}" for count, points in enumerate(item.points_by_count))
        lines = [f"- **{item.label}**: points by how many of these are met ({table}):"]
        for part in item.items:
            lines += self.item(part, 1)
        return lines

    def band(self, band: PointsBand, unit: str, analyte: Analyte) -> str:
        stated = _range(band.low, band.high, lambda bound: _stated(bound.value, unit))
        text = f"{stated}: {_points(band.points)}"
        if wording.unit(unit) != wording.unit(analyte.unit) or any(
            bound is not None and bound.value != bound.canonical for bound in (band.low, band.high)
        ):
            compared = _range(band.low, band.high, lambda bound: _converted(bound.canonical, analyte.unit))
            text += f" (compared as {compared}, canonical unit)"
        return text

    def term(self, term: LinearTerm) -> str:
        head = f"- **{term.label}** × {wording.as_written(term.coefficient)}"
        if term.analyte is not None and term.unit is not None:
            analyte = self.catalogue[term.analyte]
            text = (
                f"{head} per {_unit_name(term.unit)}: the latest {analyte.name} in the last {self.lab_hours} h, "
                f"expressed in {_unit_name(term.unit)}"
            )
            if wording.unit(term.unit) != wording.unit(analyte.unit):
                text += f" (converted from the canonical {_unit_name(analyte.unit)})"
            return text
        if term.finding is not None:
            named = self.pack.conditions.findings[term.finding]
            return (
                f"{head}: 1 when {named.name} is coded as an active condition (value set `{named.valueset.id}`), "
                "otherwise unknown (0 or 1)"
            )
        return f"{head}: not read from the record, so the term is unknown (0 or 1)"

    # -- catalogue, codes ----------------------------------------------------------------------------------------
    def analytes(self) -> None:
        self.block("## Analyte catalogue")
        self.block(
            "Which LOINC codes are which analyte, its one canonical unit, and every accepted unit with its "
            "conversion: canonical value = (value + shift) × factor ÷ divisor. A result in a unit not listed is not "
            "used (unknown); a converted value outside the plausible range is not used either."
        )
        for analyte in self.catalogue.analytes.values():
            self.analyte(analyte)

    def analyte(self, analyte: Analyte) -> None:
        low, high = analyte.plausible
        source = f" (value set `{analyte.valueset}`)" if analyte.valueset else ""
        facts = [
            f"- LOINC: {', '.join(sorted(analyte.codes))}{source}",
            f"- Canonical unit: `{analyte.unit}`, shown as {analyte.display_unit or '(no unit)'}",
            f"- Plausible range: {wording.as_written(low)} to {_stated(high, analyte.unit)} (both included)",
        ]
        if analyte.unitless_ok:
            facts.append("- A result without a unit is accepted (a unitless quantity)")
        if analyte.aliases:
            aliases = ", ".join(f"`{alias}` → `{target}`" for alias, target in analyte.aliases.items())
            facts.append(f"- Other spellings read as UCUM units: {aliases}")
        self.block(f"### {analyte.name} (`{analyte.key}`)")
        self.block(*facts)
        rows = [
            f"| `{unit}` | {_conversion(conversion)} | {_cell(_conversion_source(conversion) or '—')} "
            f"| {_cell(conversion.note or '—')} |"
            for unit, conversion in analyte.conversions.items()
        ]
        self.block(
            "| accepted unit | to the canonical unit | stated source | note shown with a converted value |",
            "|---|---|---|---|",
            *rows,
        )

    def conditions(self) -> None:
        codes = self.pack.conditions
        self.block("## Diagnoses and findings read from the record")
        rows = [
            f"| `{key.value}` | {named.name} | `{named.valueset.id}` | "
            + (
                "known: also when inactive or in remission; not when refuted or entered in error"
                if named.known_when_inactive
                else "only while active"
            )
            + " |"
            for key, named in codes.underlying.items()
        ]
        self.block("| diagnosis | name | value set | counts |", "|---|---|---|---|", *rows)
        findings = [
            f"| `{key.value}` | {named.name} | `{named.valueset.id}` |" for key, named in codes.findings.items()
        ]
        self.block(
            "Findings count only when coded as an active condition; otherwise they are unknown, never absent.",
        )
        self.block("| finding | name | value set |", "|---|---|---|", *findings)

    def valuesets(self) -> None:
        self.block("## Value sets")
        for spec in self.pack.valueset_specs.values():
            self.block(f"### `{spec.id}` — {spec.title}")
            facts = []
            if spec.purpose:
                facts.append(f"- Purpose: {spec.purpose}")
            facts.append(f"- Source: {spec.source}")
            if spec.text:
                facts.append(
                    "- Also matched in free text (whole words, any case): " + ", ".join(f'"{w}"' for w in spec.text)
                )
            if not spec.include:
                facts.append("- No codes: only a coded concept elsewhere or the text above can match")
            self.block(*facts)
            rows = [
                f"| {', '.join(include.all_systems())} | {MATCH_WORDS[include.match]} | `{concept.code}` "
                f"| {_cell(concept.display)}{' (UNVERIFIED)' if concept.status == 'unverified' else ''} |"
                for include in spec.include
                for concept in include.concepts
            ]
            if rows:
                self.block("| system | match | code | display |", "|---|---|---|---|", *rows)

    # -- dosing, work-up -----------------------------------------------------------------------------------------
    def dosing(self) -> None:
        pack = self.pack
        protocol, product, safety, drugs = pack.protocol, pack.product, pack.safety, pack.drugs
        parameters = pack.parameters
        limit = wording.as_written(protocol.band_limit_kg)
        self.block("## Anakinra dosing protocol")
        self.block(
            f"- Protocol: {protocol.version}. Source: {protocol.citation} <{protocol.url}>",
            f"- Route: {protocol.route}.",
            f"- Minimum age: {protocol.minimum_age_years} year(s); a younger patient's dose is shown with a "
            f"specialist-review note. {protocol.minimum_age_note}",
            f"- Band limit: {limit} kg. {protocol.band_limit_note}",
            f"- Cap per dose: {wording.as_written(protocol.max_mg_per_dose)} mg in every band. "
            f"{protocol.max_mg_per_dose_note}",
        )
        rows = [
            f"| {band.label} | {band.applies_to} | {wording.as_written(band.mg_per_kg_per_day)} "
            f"| {wording.as_written(band.max_mg_per_day)} | every {band.interval_hours} h | {band.doses_per_day} "
            f"| {wording.precise(band.max_mg_per_dose)} |"
            for band in protocol.bands
        ]
        self.block(
            "| band | applies to | mg/kg/day | cap mg/day | interval | doses/day | cap mg/dose |",
            "|---|---|---|---|---|---|---|",
            *rows,
        )
        self.block(
            f"- Band choice: a child (under {parameters.adult_age_years} years, parameter `adult_age_years`) of "
            f"{limit} kg or less is dosed in band *{protocol.child_band.label}*; a heavier child and an adult at any "
            f"weight in band *{protocol.other_band.label}*. With the age unknown at {limit} kg or less, no dose is "
            "calculated.",
            f"- Weight: the latest body weight, not older than {parameters.weight_max_age_child.days} days for a child "
            f"or a patient of unknown age and {parameters.weight_max_age_adult.days} days for an adult; otherwise no "
            f"dose is calculated, and a drafted dose is still checked against the largest cap of any band "
            f"({wording.as_written(protocol.max_mg_per_day_any_band)} mg/day) and the cap per dose.",
            f"- Amounts: mg/kg/day × weight, capped per day, divided into the band's doses; each dose "
            f"{RoundDown(parameters.dose_rounding_mg).description} (parameter `dose_rounding_mg`), so no suggestion "
            "exceeds a cap. The volume is the dose ÷ the product's concentration, rounded down.",
            f"- A drafted daily dose more than {wording.precise(parameters.underdose_tolerance * 100)} % below the "
            "protocol dose draws an underdose warning (parameter `underdose_tolerance_percent`).",
        )
        self.block("### Product")
        self.block(
            f"- {product.label}: {wording.as_written(product.mg)} mg in {wording.as_written(product.ml)} mL "
            f"({wording.precise(product.mg_per_ml)} mg/mL).",
            f"- Smallest measurable dose: {wording.as_written(product.smallest_measurable_mg)} mg; a smaller "
            f"per-dose amount is flagged for pharmacy preparation. Source: {product.citation}",
            f"- A dose written as a count of units ({', '.join(f'`{u}`' for u in sorted(drugs.unit_dose_units))}) "
            f"is read as {wording.as_written(drugs.mg_per_unit)} mg per unit only when the product is in value set "
            f"`{drugs.unit_dose_products.id}`.",
            f"- Anakinra is recognised by value set `{drugs.anakinra.id}`, the route by `{drugs.subcutaneous.id}`.",
        )
        self.block("### Safety checks with every anakinra order")
        self.block(
            f"- Renal function, adults: Cockcroft-Gault CrCl = ({wording.as_written(safety.cg_age_from)} − age) × "
            f"weight (kg) ÷ ({wording.as_written(safety.cg_denominator)} × creatinine (mg/dL)), × "
            f"{wording.as_written(safety.cg_female_factor)} unless recorded male. Source: {safety.cg_citation}",
            f"- Renal function, children: bedside Schwartz eGFR = {wording.as_written(safety.schwartz_k)} × height "
            f"(cm) ÷ creatinine (mg/dL). Source: {safety.schwartz_citation}",
            f"- Either estimate below {wording.as_written(safety.crcl_limit_ml_min)} mL/min: a concern for pharmacist "
            f"review. Source: {safety.renal_citation}",
            f"- Absolute neutrophil count < {wording.precise(safety.anc_limit)} ×10⁹/L: a concern. "
            f"Source: {safety.anc_citation}",
            f"- An active TNF inhibitor (value set `{drugs.tnf_inhibitors.id}`): a concern. "
            f"Source: {safety.tnf_citation}",
            "- Another active or drafted anakinra order: a duplicate.",
            f"- Creatinine and neutrophil counts older than {parameters.safety_lab_lookback.days} days and heights "
            f"older than {parameters.height_max_age.days} days are not used; a check without its inputs is reported "
            "as not done.",
        )
        self.block("### Dose timing codes")
        timing = [
            f"| `{code}` | {wording.as_written(per_day)} |" for code, per_day in sorted(drugs.timing_codes.items())
        ]
        self.block("| timing code | doses per day |", "|---|---|", *timing)
        self.block("### Order template (what a suggested or corrected order names)")
        order = pack.order
        lines = []
        for what, concept in (("Medication", order.medication), ("Route", order.route)):
            lines.append(f"- {what}: {concept.get('text')}")
            codings = concept.get("coding")
            for coding in codings if isinstance(codings, list) else []:
                if isinstance(coding, Mapping):
                    lines.append(f"{INDENT}- {coding.get('system')} `{coding.get('code')}` {coding.get('display')}")
        lines.append(f"- Note on the order: {order.note}")
        self.block(*lines)

    def workup(self) -> None:
        names = {definition.key: definition.short_name for definition in self.pack.sets}
        self.block("## Work-up orders (offered on a warning card)")
        self.block(
            f"A group is offered when one of its analytes has no result in the last {self.lab_hours} h and, when "
            f"criteria sets are named, one of them applies to the patient. Source: {self.pack.workup_source}"
        )
        rows = []
        for group in self.pack.workup:
            needs = "; ".join(
                " or ".join(self.catalogue[a].name for a in alternatives) for alternatives in group.requirements
            )
            offered = ", ".join(f"{names[key]} (`{key}`)" for key in group.for_sets) if group.for_sets else "always"
            rows.append(f"| {group.label} | `{group.order_code}` {_cell(group.order_display)} | {needs} | {offered} |")
        self.block(
            "| order | LOINC order code | offered when one of these has no result | only when this set applies |",
            "|---|---|---|---|",
            *rows,
        )


def _hours(window: timedelta) -> str:
    return wording.precise(Decimal(int(window.total_seconds())) / 3600)


def _parameter_unit(name: str) -> str:
    """The unit word in a parameter's name, read from the end (weight_max_age_days_child: days)."""
    return next((PARAMETER_UNITS[word] for word in reversed(name.split("_")) if word in PARAMETER_UNITS), "—")


def _unit_name(code: str) -> str:
    return wording.unit(code) or "(no unit)"


def _stated(value: Decimal, unit: str) -> str:
    return f"{wording.as_written(value)} {wording.unit(unit)}".strip()


def _converted(value: Decimal, unit: str) -> str:
    return f"{wording.precise(value)} {wording.unit(unit)}".strip()


def _points(points: Decimal) -> str:
    return f"{wording.as_written(points)} points"


def _range(low: Bound | None, high: Bound | None, show: Callable[[Bound], str]) -> str:
    if low is None and high is not None:
        return f"{'up to' if high.inclusive else 'below'} {show(high)}"
    if high is None and low is not None:
        return f"{'from' if low.inclusive else 'above'} {show(low)}"
    assert low is not None and high is not None
    ends = {(True, True): "both included", (True, False): "upper excluded", (False, True): "lower excluded"}
    return f"{show(low)} to {show(high)} ({ends.get((low.inclusive, high.inclusive), 'both excluded')})"


def _conversion(conversion: Conversion) -> str:
    text = "value"
    if conversion.shift:
        sign = "−" if conversion.shift < 0 else "+"
        text = f"(value {sign} {wording.as_written(abs(conversion.shift))})"
    text += f" × {wording.as_written(conversion.factor)}"
    if conversion.divisor != 1:
        text += f" ÷ {wording.as_written(conversion.divisor)}"
    return text


def _conversion_source(conversion: Conversion) -> str:
    parts = [conversion.basis] if conversion.basis else []
    if conversion.molar_mass is not None:
        parts.append(f"molar mass {wording.as_written(conversion.molar_mass)} g/mol")
    return "; ".join(parts)


def _cell(text: str) -> str:
    """Text inside a Markdown table cell: a "|" would end the cell."""
    return text.replace("|", "\\|")


# --- JSON -----------------------------------------------------------------------------------------------------
def book_document(pack: RulePack) -> dict[str, Any]:
    """The rule book as data. Numbers are strings holding the exact decimal (no binary floats)."""
    codes = pack.conditions
    drugs = pack.drugs
    return {
        "pack": {"id": pack.id, "version": pack.version, "title": pack.title, "sha256": pack.sha256},
        "site": {
            "site": pack.site,
            "why": pack.site_why,
            "overrides": {
                name: {"pack": str(entry.spec.value), "site": str(entry.value)}
                for name, entry in pack.parameter_entries.items()
                if entry.overridden
            },
        }
        if pack.site
        else None,
        "decision": _plain(pack.decision),
        "parameters": {
            name: {
                "value": str(entry.value),
                "pack_value": str(entry.spec.value),
                "unit": _parameter_unit(name),
                "bounds": [str(v) for v in entry.spec.bounds] if entry.spec.bounds else None,
                "allowed": [str(v) for v in entry.spec.allowed] if entry.spec.allowed else None,
                "why": entry.spec.why,
                "site_override": entry.overridden,
            }
            for name, entry in pack.parameter_entries.items()
        },
        "sets": [_plain(definition) for definition in pack.sets],
        "analytes": [_plain(analyte) for analyte in pack.catalogue.analytes.values()],
        "conditions": {
            "underlying": {key.value: _named(named) for key, named in codes.underlying.items()},
            "findings": {key.value: _named(named) for key, named in codes.findings.items()},
            "immunosuppressants": codes.immunosuppressants.id,
        },
        "valuesets": [spec.model_dump(mode="json", by_alias=True) for spec in pack.valueset_specs.values()],
        "dosing": {
            "protocol": _plain(pack.protocol)
            | {
                "bands": [
                    _plain(band) | {"doses_per_day": band.doses_per_day, "max_mg_per_dose": str(band.max_mg_per_dose)}
                    for band in pack.protocol.bands
                ]
            },
            "product": _plain(pack.product),
            "safety": _plain(pack.safety),
            "rounding": {"down_to_multiple_of_mg": str(pack.parameters.dose_rounding_mg)},
            "timing_codes": {code: str(per_day) for code, per_day in sorted(drugs.timing_codes.items())},
            "unit_dose_units": sorted(drugs.unit_dose_units),
            "valuesets": {
                "anakinra": drugs.anakinra.id,
                "tnf_inhibitors": drugs.tnf_inhibitors.id,
                "subcutaneous": drugs.subcutaneous.id,
                "unit_dose_products": drugs.unit_dose_products.id,
            },
            "order": _plain(pack.order),
        },
        "workup": {"source": pack.workup_source, "groups": [_plain(group) for group in pack.workup]},
    }


def _named(named: Any) -> dict[str, Any]:
    return {"name": named.name, "valueset": named.valueset.id, "known_when_inactive": named.known_when_inactive}


def _plain(value: Any) -> Any:
    """Definitions as JSON values: a dataclass becomes an object with its class as "type"; Decimals stay exact."""
    if is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__} | {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(_plain(item) for item in value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value
