"""The distributed engine: the same job on a Dask cluster of two worker processes on 127.0.0.1 gives the
embedded engine's result; plus the reading of the export (chunks, gzip, malformed and unattributed lines)."""

from __future__ import annotations

import gzip
from datetime import timedelta
from pathlib import Path

import pytest

from cds_service.cli import main
from cds_service.evaluation.mas import load_rules
from cds_service.population.cli import UsageError, parse_as_of
from cds_service.population.engine import LocalEngine, ScreenOutcome, screen
from cds_service.population.generate import Mix, generate
from cds_service.population.source import SourceError, ndjson_files, plan_chunks, read_blocks
from cds_service.settings import Settings
from tests.conftest import FIXED_NOW

RULES = load_rules(Settings())
MIX = Mix(single_abnormal=0.3, mas=0.1, sepsis_only=0.05, malignancy_only=0.03)


def _summary(outcome: ScreenOutcome) -> set[tuple[str, int, str | None, tuple[str, ...]]]:
    return {(r.patient_id, i, row.indicator, row.sets_met) for r in outcome.cards for i, row in r.rows}


def test_dask_cluster_of_two_workers_gives_the_embedded_result(tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    from cds_service.population.dask_engine import DaskEngine

    generate(tmp_path / "data", patients=300, seed=3, anchor=FIXED_NOW, observations=40, mix=MIX)
    as_of = [FIXED_NOW - timedelta(days=1), FIXED_NOW]
    with DaskEngine(workers=2) as engine:
        assert len(engine._client.scheduler_info()["workers"]) == 2
        addresses = {w for w in engine._client.scheduler_info()["workers"]}
        assert all(a.startswith("tcp://127.0.0.1:") for a in addresses)
        distributed = screen(tmp_path / "data", as_of=as_of, rules=RULES, engine=engine, chunk_bytes=300_000)
    with LocalEngine(1) as engine:
        embedded = screen(tmp_path / "data", as_of=as_of, rules=RULES, engine=engine, chunk_bytes=300_000)
    assert distributed.patients == embedded.patients == 300
    assert _summary(distributed) == _summary(embedded)
    assert sum(1 for *_, indicator, _ in _summary(embedded) if indicator == "critical") >= 10


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
