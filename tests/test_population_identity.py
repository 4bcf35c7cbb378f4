"""Population screening answers exactly as the hook: every fixture patient and a generated population are
fired through the mas-screen hook (HTTP app, prefetch from the service's own templates) and screened from
NDJSON by `cds-service screen`; indicator, summary and the validated criteria sets met must agree."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.cli import main
from cds_service.registry import load_registry
from cds_service.rulepack import default_pack
from cds_service.sandbox.fixtures import FixturePatient, build_request
from cds_service.settings import PROJECT_ROOT
from tests.conftest import FIXED_NOW
from tests.population_data import fixture_patients, generated_patients, write_ndjson

SERVICE = load_registry(PROJECT_ROOT / "hooks").services["mas-screen"]
PACK = default_pack()
NAME_TO_KEY = {definition.short_name: definition.key for definition in PACK.sets}
VALIDATED = {definition.key for definition in PACK.sets if definition.validated}
CRITERIA_MET = re.compile(r"\*\*MAS likely:\*\* (.+?) met\.(?:\n|$)")


def hook_answers(client: TestClient, patients: dict[str, FixturePatient], now: datetime) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for patient in patients.values():
        body = build_request(patient, SERVICE, hook="patient-view", now=now)
        response = client.post("/cds-services/mas-screen", json=body)
        assert response.status_code == 200, response.text
        cards = response.json()["cards"]
        assert len(cards) <= 1
        answers[patient.patient_id] = cards[0] if cards else None
    return answers


def screen_rows(folder: Path, out: Path, now: datetime, *extra: str) -> dict[str, dict[str, str]]:
    code = main(["screen", str(folder), "--out", str(out), "--as-of", now.isoformat(), "--quiet", *extra])
    assert code == 0
    with (out / "worklist.csv").open(encoding="utf-8") as stream:
        return {row["patient_id"]: row for row in csv.DictReader(stream)}


def validated_sets_in(card: dict[str, Any]) -> set[str]:
    found = CRITERIA_MET.search(card.get("detail", ""))
    if not found:
        return set()
    text, keys = found.group(1), set()
    for name in sorted(NAME_TO_KEY, key=len, reverse=True):  # "trial criteria (sJIA path)" before "trial criteria"
        if name in text:
            keys.add(NAME_TO_KEY[name])
            text = text.replace(name, "")
    return keys


def compare(hook: dict[str, Any], rows: dict[str, dict[str, str]]) -> None:
    validated = VALIDATED
    for patient_id, card in hook.items():
        row = rows.get(patient_id)
        if card is None:
            assert row is None, f"{patient_id}: screen has a card the hook does not give"
            continue
        assert row is not None, f"{patient_id}: the hook gives a {card['indicator']} card, screen none"
        assert row["indicator"] == card["indicator"], patient_id
        assert row["summary"] == card["summary"], patient_id
        screened_validated = set(row["sets_met"].split(";")) & validated if row["sets_met"] else set()
        if card["indicator"] == "critical":
            assert screened_validated == validated_sets_in(card), patient_id
        else:
            assert not screened_validated, patient_id
    assert set(rows) <= set(hook), "screen lists a patient the hook never saw"


@pytest.fixture
def hook_client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(clock=lambda: FIXED_NOW)


def test_every_fixture_patient_screens_as_the_hook_answers(hook_client: TestClient, tmp_path: Path) -> None:
    patients = fixture_patients()
    hook = hook_answers(hook_client, patients, FIXED_NOW)
    assert any(card and card["indicator"] == "critical" for card in hook.values())
    assert any(card and card["indicator"] == "warning" for card in hook.values())
    assert any(card is None for card in hook.values())
    rows = screen_rows(write_ndjson(patients, FIXED_NOW, tmp_path / "ndjson"), tmp_path / "out", FIXED_NOW)
    compare(hook, rows)


@pytest.mark.parametrize("seed", [11, 12])
def test_generated_population_screens_as_the_hook_answers(hook_client: TestClient, tmp_path: Path, seed: int) -> None:
    patients = generated_patients(150, seed)
    hook = hook_answers(hook_client, patients, FIXED_NOW)
    indicators = [card["indicator"] if card else None for card in hook.values()]
    assert indicators.count("critical") >= 2 and indicators.count(None) >= 100
    folder = write_ndjson(patients, FIXED_NOW, tmp_path / "ndjson", files_per_type=3)
    compare(hook, screen_rows(folder, tmp_path / "out", FIXED_NOW))
