"""What a screening job writes: the worklist (CSV and a FHIR List), the cards over time (CSV) and an
offline HTML report of the alert burden (counts, which criteria drove the cards, cards per as-of time).
"""

from __future__ import annotations

import csv
import html
import math
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from cds_service.cards.explanation import ScreenRow
from cds_service.population.engine import ScreenOutcome

VALIDATED_ORDER = {"critical": 0, "warning": 1}
WORKLIST_COLUMNS = ("patient_id", "indicator", "summary", "sets_met", "decisive_values", "decisive_times", "as_of")


@dataclass(frozen=True)
class WorklistEntry:
    as_of: datetime
    row: ScreenRow


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat(timespec="minutes").replace("+00:00", "Z") if moment else ""


def worklist(outcome: ScreenOutcome, index: int) -> list[WorklistEntry]:
    """The cards as of one time, most urgent first: critical, then more criteria sets met, then the newest
    decisive value."""
    entries = [
        WorklistEntry(outcome.as_of[index], row) for rows in outcome.cards for at, row in rows.rows if at == index
    ]
    return sorted(entries, key=_urgency)


def _urgency(entry: WorklistEntry) -> tuple[int, int, float, str]:
    row = entry.row
    newest = max((v.time.timestamp() for v in row.decisive if v.time), default=0.0)
    return (VALIDATED_ORDER.get(row.indicator or "", 2), -len(row.sets_met), -newest, row.patient_id)


def write_worklist_csv(entries: Sequence[WorklistEntry], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(WORKLIST_COLUMNS)
        for entry in entries:
            row = entry.row
            writer.writerow(
                (
                    row.patient_id,
                    row.indicator,
                    row.summary,
                    ";".join(row.sets_met),
                    "; ".join(f"{v.label}: {v.value}" + (f" [{v.source}]" if v.source else "") for v in row.decisive),
                    "; ".join(_iso(v.time) for v in row.decisive),
                    _iso(entry.as_of),
                )
            )


def worklist_list_resource(entries: Sequence[WorklistEntry], as_of: datetime) -> dict[str, Any]:
    """The worklist as a FHIR R4 List (snapshot): one entry per patient, flag = the card's indicator."""
    document: dict[str, Any] = {
        "resourceType": "List",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mas-screen-worklist/{_iso(as_of)}")),
        "status": "current",
        "mode": "snapshot",
        "title": "MAS screening worklist",
        "code": {"text": "Patients who would get a mas-screen card (macrophage activation syndrome)"},
        "date": as_of.astimezone(UTC).isoformat(timespec="seconds"),
        "orderedBy": {"text": "most urgent first: critical, then criteria sets met, then newest decisive value"},
    }
    if entries:
        document["entry"] = [
            {
                "flag": {"text": entry.row.indicator},
                "item": {"reference": f"Patient/{entry.row.patient_id}", "display": entry.row.summary},
            }
            for entry in entries
        ]
    else:
        document["emptyReason"] = {"text": "no patient would get a card"}
    return document


def write_cards_over_time(outcome: ScreenOutcome, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(("as_of", "patient_id", "indicator", "sets_met"))
        for index, moment in enumerate(outcome.as_of):
            for entry in worklist(outcome, index):
                writer.writerow((_iso(moment), entry.row.patient_id, entry.row.indicator, ";".join(entry.row.sets_met)))


def write_outputs(outcome: ScreenOutcome, out: Path, *, source: str, engine: str) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    last = len(outcome.as_of) - 1
    entries = worklist(outcome, last)
    paths = {
        "worklist.csv": out / "worklist.csv",
        "worklist.json": out / "worklist.json",
        "cards_over_time.csv": out / "cards_over_time.csv",
        "report.html": out / "report.html",
        "summary.json": out / "summary.json",
    }
    write_worklist_csv(entries, paths["worklist.csv"])
    paths["worklist.json"].write_bytes(
        orjson.dumps(worklist_list_resource(entries, outcome.as_of[last]), option=orjson.OPT_INDENT_2)
    )
    write_cards_over_time(outcome, paths["cards_over_time.csv"])
    paths["report.html"].write_text(render_report(outcome, source=source, engine=engine), encoding="utf-8")
    paths["summary.json"].write_bytes(orjson.dumps(summary(outcome, engine=engine), option=orjson.OPT_INDENT_2))
    return paths


def summary(outcome: ScreenOutcome, *, engine: str) -> dict[str, Any]:
    """The run in numbers (no patient data): for scripts and the benchmark."""
    per_time = [Counter(e.row.indicator for e in worklist(outcome, i)) for i in range(len(outcome.as_of))]
    return {
        "engine": engine,
        "rulePack": outcome.rule_pack,
        "asOf": [_iso(moment) for moment in outcome.as_of],
        "patients": outcome.patients,
        "cardsPerTime": [{"critical": c.get("critical", 0), "warning": c.get("warning", 0)} for c in per_time],
        "evaluatedPerTime": outcome.candidates_per_time,
        "evaluations": outcome.evaluations,
        "lines": outcome.lines,
        "bytes": outcome.bytes,
        "resources": outcome.by_type,
        "malformed": outcome.malformed,
        "unattributed": outcome.unattributed,
        "prefiltered": outcome.prefiltered,
        "seconds": outcome.timings,
    }


# --- report.html -------------------------------------------------------------------------------------------

COLOURS = {"critical": "#c62828", "warning": "#ef8f00"}


def render_report(outcome: ScreenOutcome, *, source: str, engine: str) -> str:
    last = len(outcome.as_of) - 1
    entries = worklist(outcome, last)
    by_indicator = Counter(e.row.indicator for e in entries)
    by_set = Counter(key for e in entries for key in e.row.sets_met)
    by_criterion = Counter(value.label for e in entries for value in e.row.decisive)
    per_time = [Counter(e.row.indicator for e in worklist(outcome, i)) for i in range(len(outcome.as_of))]
    ranged = len(outcome.as_of) > 1
    screened = outcome.patients
    cards = sum(by_indicator.values())
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>MAS screening: worklist and alert burden</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>MAS screening: worklist and alert burden</h1>",
        f"<p class='meta'>Source {_e(source)} · engine {_e(engine)} · rules {_e(_pack_label(outcome))}"
        + f" · as of {_e(_iso(outcome.as_of[last]))}"
        + (
            f" (range {_e(_iso(outcome.as_of[0]))} → {_e(_iso(outcome.as_of[last]))}, {len(outcome.as_of)} times)"
            if ranged
            else ""
        )
        + "</p>",
        "<section class='tiles'>",
        _tile("patients screened", f"{screened:,}"),
        _tile("cards", f"{cards:,}", f"{cards / screened:.1%} of patients" if screened else ""),
        _tile("critical", f"{by_indicator.get('critical', 0):,}", "MAS likely"),
        _tile("warning", f"{by_indicator.get('warning', 0):,}", "suggestive, undecided"),
        "</section>",
        "<h2>Cards by indicator</h2>",
        _bars([(k, by_indicator.get(k, 0), COLOURS[k]) for k in ("critical", "warning")]),
        "<h2>Criteria sets met (patients with a card)</h2>",
        _bars([(outcome.set_names.get(k, k), n, "#37474f") for k, n in by_set.most_common()])
        if by_set
        else "<p>No criteria set was met: every card is a warning on ferritin alone.</p>"
        if cards
        else "<p>No cards.</p>",
        "<h2>Decisive values (the criteria that drove the cards)</h2>",
        _bars([(k, n, "#5c6bc0") for k, n in by_criterion.most_common(15)]) if by_criterion else "<p>None.</p>",
    ]
    if ranged:
        parts += [
            "<h2>Cards per as-of time (alert burden)</h2>",
            _timeline(outcome.as_of, per_time),
            _time_table(outcome, per_time),
        ]
    parts += [
        "<h2>What was read</h2>",
        "<table><tbody>",
        *(f"<tr><th>{_e(k)}</th><td>{v:,}</td></tr>" for k, v in sorted(outcome.by_type.items())),
        f"<tr><th>lines</th><td>{outcome.lines:,} ({outcome.bytes / 1e6:,.1f} MB)</td></tr>",
        f"<tr><th>malformed lines (skipped)</th><td>{outcome.malformed:,}</td></tr>",
        f"<tr><th>resources naming no patient (never attached to one)</th><td>{outcome.unattributed:,}</td></tr>",
        f"<tr><th>full evaluations (patient × time)</th><td>{outcome.evaluations:,}</td></tr>",
        "</tbody></table>",
        "<p class='note'>Every patient is evaluated with the same rule code as the mas-screen hook (evaluate_mas). "
        + (
            "A conservative pre-filter skipped the full evaluation of patients who cannot get a card (no coded "
            "underlying disease or finding, no ferritin ≥ 500 ng/mL in the window and an HScore that cannot "
            "reach 169); they count as screened without a card."
            if outcome.prefiltered
            else "No pre-filter: every patient was evaluated in full."
        )
        + "</p>",
        "<p class='note'>Timings: " + ", ".join(f"{_e(k)} {v:.1f} s" for k, v in outcome.timings.items()) + "</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:980px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
.meta,.note{color:#555}.tiles{display:flex;gap:1em;flex-wrap:wrap}
.tile{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:150px}
.tile b{display:block;font-size:1.6em}.tile small{color:#666}
table{border-collapse:collapse}th,td{padding:.2em .8em;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right}svg text{font:12px system-ui,sans-serif}
"""


def _pack_label(outcome: ScreenOutcome) -> str:
    pack = outcome.rule_pack
    return f"{pack['id']}@{pack['version']} (sha256 {pack['sha256'][:12]})" if pack else "unknown"


def _e(text: object) -> str:
    return html.escape(str(text))


def _tile(label: str, value: str, note: str = "") -> str:
    return f"<div class='tile'>{_e(label)}<b>{_e(value)}</b><small>{_e(note)}</small></div>"


def _bars(items: Sequence[tuple[str, int, str]]) -> str:
    """A horizontal bar chart as inline SVG (no script, no network: the report opens offline)."""
    width, label_width, row = 900, 330, 24
    top = max((n for _, n, _ in items), default=0) or 1
    height = row * len(items) + 6
    out = [f"<svg role='img' width='{width}' height='{height}' viewBox='0 0 {width} {height}'>"]
    for i, (label, count, colour) in enumerate(items):
        y = i * row + 3
        bar = int((width - label_width - 80) * count / top)
        out.append(f"<text x='{label_width - 8}' y='{y + 15}' text-anchor='end'>{_e(label[:52])}</text>")
        out.append(f"<rect x='{label_width}' y='{y + 2}' width='{bar}' height='{row - 6}' fill='{colour}'/>")
        out.append(f"<text x='{label_width + bar + 6}' y='{y + 15}'>{count:,}</text>")
    out.append("</svg>")
    return "".join(out)


def _timeline(times: Sequence[datetime], per_time: Sequence[Counter[str | None]]) -> str:
    """Stacked columns per as-of time (critical below, warning above)."""
    width, height, left, bottom = 900, 260, 50, 40
    top: float = max((c.get("critical", 0) + c.get("warning", 0) for c in per_time), default=0) or 1
    step = (width - left - 10) / max(len(times), 1)
    bar = max(step * 0.7, 1)
    scale = (height - bottom - 10) / top
    out = [f"<svg role='img' width='{width}' height='{height}' viewBox='0 0 {width} {height}'>"]
    out.append(f"<line x1='{left}' y1='{height - bottom}' x2='{width - 5}' y2='{height - bottom}' stroke='#999'/>")
    out.append(f"<text x='{left - 6}' y='16' text-anchor='end'>{top:,}</text>")
    out.append(f"<text x='{left - 6}' y='{height - bottom}' text-anchor='end'>0</text>")
    every = max(1, math.ceil(len(times) * 90 / (width - left)))  # a label every ~90 px
    for i, (moment, counts) in enumerate(zip(times, per_time, strict=True)):
        x = left + i * step + (step - bar) / 2
        base: float = height - bottom
        for kind in ("critical", "warning"):
            h = counts.get(kind, 0) * scale
            if h:
                out.append(
                    f"<rect x='{x:.1f}' y='{base - h:.1f}' width='{bar:.1f}' height='{h:.1f}' fill='{COLOURS[kind]}'>"
                    f"<title>{_e(_iso(moment))}: {counts.get(kind, 0)} {kind}</title></rect>"
                )
                base -= h
        if i % every == 0:
            out.append(
                f"<text x='{x + bar / 2:.1f}' y='{height - bottom + 16}' text-anchor='middle'>"
                f"{_e(moment.astimezone(UTC).strftime('%m-%d %H:%M'))}</text>"
            )
    legend = "".join(
        f"<rect x='{left + 10 + j * 110}' y='{height - 16}' width='12' height='12' fill='{COLOURS[k]}'/>"
        f"<text x='{left + 28 + j * 110}' y='{height - 6}'>{k}</text>"
        for j, k in enumerate(("critical", "warning"))
    )
    out.append(legend + "</svg>")
    return "".join(out)


def _time_table(outcome: ScreenOutcome, per_time: Sequence[Counter[str | None]]) -> str:
    rows = [
        f"<tr><td>{_e(_iso(moment))}</td><td class='n'>{counts.get('critical', 0):,}</td>"
        f"<td class='n'>{counts.get('warning', 0):,}</td><td class='n'>{candidates:,}</td></tr>"
        for moment, counts, candidates in zip(outcome.as_of, per_time, outcome.candidates_per_time, strict=True)
    ]
    total = sum(c.get("critical", 0) + c.get("warning", 0) for c in per_time)
    return (
        "<table><thead><tr><th>as of</th><th>critical</th><th>warning</th><th>evaluated in full</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        f"<p>Mean {total / len(per_time):,.1f} cards per as-of time over {len(per_time)} times.</p>"
    )
