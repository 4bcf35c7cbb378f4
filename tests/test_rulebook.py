"""The rule book is the rule pack, written out: the committed copy equals the generated one, every definition of
the pack appears in it, a changed threshold or a site override changes it, and `cds-service rules` writes it.

The walks below read the loaded pack's definitions (sets, items, thresholds, citations), never a hand list, so a
set or item added to the pack is checked without touching this file.
"""

from __future__ import annotations

import difflib
import io
import json
import shutil
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from cds_service import cli
from cds_service.cards import wording
from cds_service.cards.rulebook import render_json, render_markdown
from cds_service.facts.analytes import A
from cds_service.rulepack import PACK_DIR, RulePack, default_pack, load_rule_pack
from cds_service.rules.mas.definitions import (
    BandsScoreItem,
    CountScoreItem,
    Group,
    IfScoreItem,
    Item,
    LabItem,
    ScoreItem,
    Threshold,
)
from cds_service.settings import PROJECT_ROOT
from tests.test_cli_errors import CLI, assert_one_line_error, run

BOOK = PROJECT_ROOT / "docs" / "rulebook.md"
REGENERATE = "env -u CDS_RULE_PACK_DIR -u CDS_RULE_PACK_OVERRIDES .venv/bin/cds-service rules --out docs/rulebook.md"


@pytest.fixture(autouse=True)
def _shipped_pack_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads the pack from the settings: start every test from the shipped pack, no site overrides."""
    monkeypatch.delenv("CDS_RULE_PACK_DIR", raising=False)
    monkeypatch.delenv("CDS_RULE_PACK_OVERRIDES", raising=False)


def test_the_committed_rule_book_equals_the_generated_one() -> None:
    generated = render_markdown(default_pack())
    committed = BOOK.read_text(encoding="utf-8")
    if committed != generated:
        diff = "\n".join(
            list(difflib.unified_diff(committed.splitlines(), generated.splitlines(), "committed", "generated"))[:40]
        )
        pytest.fail(f"docs/rulebook.md differs from the rule pack; regenerate it with\n    {REGENERATE}\n{diff}")


# --- every definition is in the book ----------------------------------------------------------------------------
def _stated(threshold: Threshold) -> str:
    """A threshold as its source states it: the digits written in the pack, its unit as people write it."""
    value = f"{threshold.value:,f}".replace("-", "−")
    return f"{wording.SYMBOL[threshold.op]} {value} {wording.unit(threshold.unit)}".strip()


def _compared(threshold: Threshold, canonical_unit: str) -> str:
    """The form the engine compares: the threshold converted into the analyte's canonical unit."""
    if threshold.canonical == threshold.value and wording.unit(threshold.unit) == wording.unit(canonical_unit):
        return "compared as stated"
    converted = f"{wording.precise(threshold.canonical)} {wording.unit(canonical_unit)}".strip()
    return f"compared as {wording.SYMBOL[threshold.op]} {converted}"


def _items(item: Item | ScoreItem) -> Iterator[Item | ScoreItem]:
    yield item
    if isinstance(item, Group | CountScoreItem):
        for part in item.items:
            yield from _items(part)
    if isinstance(item, IfScoreItem):
        yield from _items(item.item)


def _lab_items(pack: RulePack) -> Iterator[tuple[str, LabItem]]:
    for definition in pack.sets:
        roots: list[Item | ScoreItem] = [definition.rule] if definition.rule is not None else []
        roots += list(definition.score.items) if definition.score is not None else []
        for root in roots:
            for item in _items(root):
                if isinstance(item, LabItem):
                    yield definition.key, item


def _citations(pack: RulePack) -> Iterator[str]:
    yield pack.decision.warning_ferritin_citation
    for definition in pack.sets:
        yield definition.citation
        if definition.url:
            yield definition.url
        yield definition.setting
        yield from (precondition.citation for precondition in definition.population)
        yield from definition.assumptions
        yield from (note.text for note in definition.notes)
    protocol, safety = pack.protocol, pack.safety
    yield from (protocol.citation, protocol.url, protocol.band_limit_note, protocol.max_mg_per_dose_note)
    yield from (protocol.minimum_age_note, pack.product.citation, pack.workup_source)
    yield from (safety.renal_citation, safety.anc_citation, safety.tnf_citation)
    yield from (safety.cg_citation, safety.schwartz_citation)
    yield from (spec.source for spec in pack.valueset_specs.values())
    yield from (entry.spec.why for entry in pack.parameter_entries.values())
    for analyte in pack.catalogue.analytes.values():
        yield from (c.basis for c in analyte.conversions.values() if c.basis)
        yield from (c.note for c in analyte.conversions.values() if c.note)


def test_every_set_threshold_and_citation_of_the_pack_is_in_the_book() -> None:
    pack = default_pack()
    book = render_markdown(pack)
    lines = book.splitlines()
    for definition in pack.sets:
        assert f"`{definition.key}`" in book and f". {definition.name}" in book, definition.key
    checked = 0
    for key, item in _lab_items(pack):
        thresholds = [item.threshold] + ([item.infants.threshold] if item.infants else [])
        for threshold in thresholds:
            # The item's own line holds the threshold as stated and the form that is compared.
            expected = f"**{item.label}**: "
            found = [line for line in lines if expected in line and _stated(threshold) in line]
            assert found, f"{key}/{item.key}: no line with {expected!r} and {_stated(threshold)!r}"
            compared = _compared(threshold, pack.catalogue[item.analytes[0]].unit)
            assert any(compared in line for line in found), (key, item.key, compared)
            checked += 1
    assert checked >= 40  # the walk reached the items (the shipped pack has over 40 thresholds)
    missing = [citation for citation in _citations(pack) if citation not in book]
    assert not missing, missing


def test_score_bands_and_terms_are_in_the_book_with_their_points() -> None:
    pack = default_pack()
    book = render_markdown(pack)
    for definition in pack.sets:
        if definition.score is None:
            continue
        assert f"every possible value of the score is {wording.SYMBOL[definition.score.op]} " in book
        for term in definition.score.terms:
            assert f"**{term.label}** × {term.coefficient:f}".replace("-", "−") in book, term.key
        for item in definition.score.items:
            if isinstance(item, BandsScoreItem):
                for band in item.bands:
                    bound = band.low or band.high
                    assert bound is not None
                    shown = f"{bound.value:,f} {wording.unit(item.unit)}"
                    assert f"{shown}" in book and f": {band.points:f} points" in book, (item.key, shown)


def test_a_threshold_changed_in_the_pack_changes_the_book(tmp_path: Path) -> None:
    folder = tmp_path / "pack"
    shutil.copytree(PACK_DIR, folder)
    criteria = folder / "criteria" / "hlh2004.yaml"
    text = criteria.read_text(encoding="utf-8")
    original = 'label: Triglycerides (fasting), op: ">=", value: 3.0, unit: mmol/L}'
    assert text.count(original) == 1
    criteria.write_text(text.replace(original, original.replace("value: 3.0", "value: 3.5")), encoding="utf-8")

    shipped, changed = default_pack(), load_rule_pack(folder)
    before, after = render_markdown(shipped), render_markdown(changed)
    factor = changed.catalogue[A.TRIGLYCERIDES].conversions["mmol/L"].factor
    old_line = f"≥ 3.0 mmol/L as stated; compared as ≥ {wording.precise(Decimal('3.0') * factor)} mg/dL"
    new_line = f"≥ 3.5 mmol/L as stated; compared as ≥ {wording.precise(Decimal('3.5') * factor)} mg/dL"
    assert old_line in before and new_line not in before
    assert new_line in after and old_line not in after
    assert changed.sha256 in after and shipped.sha256 not in after


def test_site_overrides_are_in_the_book(tmp_path: Path) -> None:
    shipped = default_pack()
    lab_hours = shipped.parameter_entries["lab_window_hours"].value
    adult_age = shipped.parameter_entries["adult_age_years"].value
    overrides = tmp_path / "site.yaml"
    overrides.write_text(
        "site: Example Children's Hospital\n"
        "why: Committee decision of 2026-11-30 (minutes item 4)\n"
        f"parameters: {{lab_window_hours: {lab_hours + 24}, adult_age_years: {adult_age + 1}}}\n",
        encoding="utf-8",
    )
    book = render_markdown(load_rule_pack(None, overrides))
    assert "Site **Example Children's Hospital** overrides 2 parameter(s). Why: Committee decision" in book
    assert f"| `lab_window_hours` | {lab_hours} | **{lab_hours + 24}** | h |" in book
    assert f"**{lab_hours + 24}** (site override; pack: {lab_hours})" in book
    assert f"**{adult_age + 1}** (site override; pack: {adult_age})" in book
    # The override reaches every sentence that uses the parameter, not only the table (whose "why" texts are the
    # pack's own prose and may name the pack's value).
    prose = "\n".join(line for line in book.splitlines() if not line.startswith("|"))
    assert f"in the last {lab_hours + 24} h" in prose and f"in the last {lab_hours} h" not in prose
    assert f"age {adult_age + 1} years or older (the adult age" in book
    assert f"a child (under {adult_age + 1} years" in book
    assert "None: every parameter has the value the pack states." in render_markdown(shipped)


def test_the_json_form_holds_the_same_definitions() -> None:
    pack = default_pack()
    document = json.loads(render_json(pack))
    assert [entry["key"] for entry in document["sets"]] == [definition.key for definition in pack.sets]
    assert document["pack"]["sha256"] == pack.sha256
    warning = document["decision"]["warning_ferritin"]
    assert (warning["value"], warning["unit"]) == (str(pack.decision.warning_ferritin.value), "ug/L")
    flattened = json.dumps(document, ensure_ascii=False)
    for _, item in _lab_items(pack):
        threshold = {
            "type": "Threshold",
            "op": item.threshold.op,
            "value": str(item.threshold.value),
            "unit": item.threshold.unit,
            "canonical": str(item.threshold.canonical),
        }
        assert json.dumps(threshold, ensure_ascii=False) in flattened, item.key


# --- the command --------------------------------------------------------------------------------------------------
def test_rules_prints_the_book_of_the_pack_the_settings_select(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    assert cli.main(["rules"], out=out) == 0
    assert out.getvalue() == render_markdown(default_pack())

    overrides = tmp_path / "site.yaml"
    overrides.write_text("site: Ward 5\nwhy: local trial\nparameters: {trend_min_change_percent: 20}\n")
    monkeypatch.setenv("CDS_RULE_PACK_OVERRIDES", str(overrides))
    out = io.StringIO()
    assert cli.main(["rules", "--format", "json"], out=out) == 0
    document = json.loads(out.getvalue())
    assert document["site"]["overrides"] == {"trend_min_change_percent": {"pack": "10", "site": "20"}}


def test_rules_writes_the_book_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "rulebook.md"
    result = run([*CLI, "rules", "--out", str(target)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {target}\n" and result.stderr == ""
    assert target.read_text(encoding="utf-8") == BOOK.read_text(encoding="utf-8")


def test_rules_schema_describes_the_pack_files() -> None:
    out = io.StringIO()
    assert cli.main(["rules", "--schema"], out=out) == 0
    schemas = json.loads(out.getvalue())
    assert {"pack.yaml", "criteria/<key>.yaml", "site overrides (CDS_RULE_PACK_OVERRIDES)"} <= set(schemas)
    assert "rule" in schemas["criteria/<key>.yaml"]["properties"]


def _broken_yaml(folder: Path) -> None:
    (folder / "criteria" / "hlh2004.yaml").write_text("key: hlh2004\nitems: [unclosed\n", encoding="utf-8")


def _unknown_unit(folder: Path) -> None:
    path = folder / "criteria" / "hlh2004.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("value: 3.0, unit: mmol/L", "value: 3.0, unit: mmol/dL"))


@pytest.mark.parametrize(
    ("damage", "phrase"),
    [
        (_broken_yaml, "hlh2004.yaml: not readable YAML"),
        (_unknown_unit, "unit 'mmol/dL' is not an accepted unit of triglycerides"),
        (lambda folder: (folder / "pack.yaml").unlink(), "no pack.yaml (not a rule pack folder)"),
    ],
    ids=["unreadable-yaml", "unknown-unit", "not-a-pack"],
)
def test_a_broken_pack_is_one_line_and_exit_2(tmp_path: Path, damage: Callable[[Path], object], phrase: str) -> None:
    folder = tmp_path / "pack"
    shutil.copytree(PACK_DIR, folder)
    damage(folder)
    result = run([*CLI, "rules"], tmp_path, CDS_RULE_PACK_DIR=str(folder))
    assert_one_line_error(result, "cds-service rules: rule pack refused:", phrase)


def test_numbers_keep_their_stated_digits_and_never_round_silently() -> None:
    assert wording.as_written(Decimal("3.0")) == "3.0"
    assert wording.as_written(Decimal("100000")) == "100,000"
    assert wording.as_written(Decimal("-1.30")) == "−1.30"
    assert wording.precise(Decimal("3.0") * Decimal("88.57")) == "265.71"
    assert wording.precise((Decimal(101) - 32) * 5 / 9) == "38.333…"
    assert wording.precise(Decimal(-345) / 9) == "−38.333…"
    assert wording.precise(Decimal("100.000")) == "100"
