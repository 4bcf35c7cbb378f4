"""What `screen` writes: the worklist CSV (columns, most urgent first), a valid FHIR List, the cards over time
and a report that opens offline (no script, no external resource) with the alert burden over a range."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from fhir.resources.R4B.list import List as FhirList

from cds_service.cli import main
from cds_service.population.generate import Mix, generate
from tests.conftest import FIXED_NOW

MIX = Mix(single_abnormal=0.3, mas=0.1, sepsis_only=0.05, malignancy_only=0.03)


def test_outputs_of_a_range_screen(tmp_path: Path) -> None:
    generate(tmp_path / "data", patients=200, seed=9, anchor=FIXED_NOW, observations=40, mix=MIX)
    out = tmp_path / "out"
    first = FIXED_NOW.replace(day=FIXED_NOW.day - 3).isoformat()
    assert (
        main(
            [
                "screen",
                str(tmp_path / "data"),
                "--out",
                str(out),
                "--as-of",
                f"{first}..{FIXED_NOW.isoformat()}",
                "--step",
                "12h",
                "--quiet",
            ]
        )
        == 0
    )

    with (out / "worklist.csv").open(encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        assert reader.fieldnames is not None
        assert reader.fieldnames[:3] == ["patient_id", "indicator", "summary"]
        rows = list(reader)
    indicators = [row["indicator"] for row in rows]
    assert "critical" in indicators and "warning" in indicators
    assert indicators == sorted(indicators, key=lambda i: 0 if i == "critical" else 1)  # most urgent first
    assert all(row["as_of"].startswith(FIXED_NOW.strftime("%Y-%m-%dT%H:%M")) for row in rows)
    critical = [row for row in rows if row["indicator"] == "critical"]
    assert all(row["sets_met"] and row["decisive_values"] and row["decisive_times"] for row in critical)

    document = json.loads((out / "worklist.json").read_text())
    FhirList.model_validate(document)
    assert [e["item"]["reference"] for e in document["entry"]] == [f"Patient/{row['patient_id']}" for row in rows]

    with (out / "cards_over_time.csv").open(encoding="utf-8") as stream:
        over_time = list(csv.DictReader(stream))
    assert 2 <= len({row["as_of"] for row in over_time}) <= 7  # times without any card have no row

    report = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in report and not re.search(r"(src|href)=['\"]https?:", report)
    assert report.count("<svg") == 4  # indicators, sets, decisive values, cards per time
    assert "200" in report and "Cards per as-of time" in report
    assert report.count("<tr><td>2026-") == 7  # one row per as-of time, cards or not
    assert f"{len(rows):,}" in report
