"""The distributed engine: the same job on a Dask cluster of two worker processes on 127.0.0.1 gives the
embedded engine's result; plus the reading of the export (chunks, gzip, malformed and unattributed lines)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from cds_service.cli import main
from cds_service.evaluation.mas import load_rules
from cds_service.population.cli import UsageError, parse_as_of
from cds_service.population.engine import LocalEngine, screen
from cds_service.population.generate import Mix, generate
from cds_service.population.source import SourceError, ndjson_files, plan_chunks, read_blocks
from cds_service.settings import PROJECT_ROOT, Settings
from tests.conftest import FIXED_NOW

RULES = load_rules(Settings())
MIX = Mix(single_abnormal=0.3, mas=0.1, sepsis_only=0.05, malignancy_only=0.03)


def test_dask_cluster_of_two_workers_gives_the_embedded_result(tmp_path: Path) -> None:
    """`screen --engine dask --workers 2` (a local cluster of two worker processes on 127.0.0.1) and the embedded
    engine write the same worklist and cards over time. Each runs as its own process, as a user runs it (and
    so that no cluster state is left in the test process)."""
    pytest.importorskip("dask.distributed")
    generate(tmp_path / "data", patients=300, seed=3, anchor=FIXED_NOW, observations=40, mix=MIX)
    as_of = f"{(FIXED_NOW - timedelta(days=1)).isoformat()}..{FIXED_NOW.isoformat()}"
    outputs = {}
    for engine in ("dask", "local"):
        out = tmp_path / engine
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cds_service.cli",
                "screen",
                str(tmp_path / "data"),
                "--out",
                str(out),
                "--as-of",
                as_of,
                "--step",
                "12h",
                "--engine",
                engine,
                "--workers",
                "2",
                "--quiet",
            ],
            check=True,
            cwd=PROJECT_ROOT,
            timeout=300,
            capture_output=True,
        )
        outputs[engine] = out
    summary = json.loads((outputs["dask"] / "summary.json").read_text())
    assert summary["engine"].startswith("dask, 2 workers: ")
    addresses = summary["engine"].split(": ", 1)[1].split(", ")
    assert len(addresses) == 2 and all(a.startswith("tcp://127.0.0.1:") for a in addresses)
    for name in ("worklist.csv", "cards_over_time.csv"):
        assert (outputs["dask"] / name).read_text() == (outputs["local"] / name).read_text(), name
    criticals = [
        line for line in (outputs["local"] / "cards_over_time.csv").read_text().splitlines() if ",critical," in line
    ]
    assert len(criticals) >= 10
    assert json.loads((outputs["local"] / "summary.json").read_text())["patients"] == 300


def test_chunks_split_lines_exactly_once(tmp_path: Path) -> None:
    generate(tmp_path, patients=40, seed=1, anchor=FIXED_NOW, observations=30, files_per_type=1)
    path = tmp_path / "Observation.0.ndjson"
    expected = path.read_bytes().splitlines()
    chunks = [c for c in plan_chunks([path], chunk_bytes=997)]
    assert len(chunks) > 10
    seen = [line for chunk in chunks for block in read_blocks(chunk, block_bytes=300) for line in block.splitlines()]
    assert seen == expected


def test_gzip_malformed_and_unattributed_lines(tmp_path: Path) -> None:
    generate(tmp_path, patients=60, seed=2, anchor=FIXED_NOW, observations=20, files_per_type=1, compress=True, mix=MIX)
    with gzip.open(tmp_path / "Observation.0.ndjson.gz", "ab") as stream:
        stream.write(b'{"resourceType":"Observation","status":"final"\n')  # malformed
        stream.write(b'{"resourceType":"Observation","id":"x","status":"final"}\n')  # names no patient
        stream.write(b'{"resourceType":"Encounter","id":"e","subject":{"reference":"Patient/pop0000001"}}\n')
    (tmp_path / "notes.txt").write_text("not part of the export")
    assert all(p.name.endswith(".ndjson.gz") for p in ndjson_files(tmp_path))
    with LocalEngine(2) as engine:
        outcome = screen(tmp_path, as_of=[FIXED_NOW], rules=RULES, engine=engine)
    assert outcome.patients == 60
    assert outcome.malformed == 1 and outcome.unattributed == 1
    assert outcome.by_type["Observation"] == 60 * 20 + 1


def test_sources_that_cannot_be_read_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["screen", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["screen", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert main(["screen", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--as-of", "2026-01-01T00:00"]) == 2
    assert "no time zone" in capsys.readouterr().err
    with pytest.raises(SourceError):
        ndjson_files(tmp_path / "empty")


def test_as_of_ranges() -> None:
    times = parse_as_of("2026-01-01T00:00Z..2026-01-03T00:00Z", "12h", now=FIXED_NOW)
    assert len(times) == 5 and times[1] - times[0] == timedelta(hours=12)
    assert parse_as_of("2026-01-01T00:00Z/2026-01-02T00:00Z", "P1D", now=FIXED_NOW)[-1].day == 2
    assert parse_as_of(None, None, now=FIXED_NOW) == [FIXED_NOW]
    for text, step in (
        ("2026-01-02T00:00Z..2026-01-01T00:00Z", None),
        ("2026-01-01T00:00Z", "1d"),
        ("2026-01-01T00:00Z..2026-01-02T00:00Z", "0h"),
        ("yesterday", None),
    ):
        with pytest.raises(UsageError):
            parse_as_of(text, step, now=FIXED_NOW)


def test_blank_lines_and_crlf_give_the_same_screen(tmp_path: Path) -> None:
    """The scan reads a clean block as one array and an irregular one line by line; gather always line by line:
    blank lines, CRLF endings and a resource spread over lines must not shift which line belongs to whom."""
    clean, messy = tmp_path / "clean", tmp_path / "messy"
    generate(clean, patients=80, seed=4, anchor=FIXED_NOW, observations=30, files_per_type=1, mix=MIX)
    messy.mkdir()
    for path in clean.iterdir():
        lines = path.read_bytes().splitlines()
        if path.name.startswith("Observation"):
            lines.insert(7, b"")
            lines[3] = json.dumps(json.loads(lines[3]), indent=1).encode()  # one resource over several lines
        (messy / path.name).write_bytes(b"\r\n".join(lines) + b"\r\n")
    with LocalEngine(2) as engine:
        outcomes = [
            screen(folder, as_of=[FIXED_NOW], rules=RULES, engine=engine, chunk_bytes=50_000)
            for folder in (clean, messy)
        ]
    cards = [{(r.patient_id, row.indicator, row.summary) for r in o.cards for _, row in r.rows} for o in outcomes]
    assert cards[0] and cards[0] == cards[1]
    assert outcomes[1].malformed >= 1  # the spread-out resource's lines are not JSON on their own
