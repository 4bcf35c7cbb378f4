"""Test populations as NDJSON folders: the fixture patients and a generated population, every resource
shifted to the same "now" that the hook is fired with."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from cds_service.population.generate import Mix, patient_resources
from cds_service.sandbox.fixtures import FIXTURE_EPOCH, FixturePatient, load_patients


def generated_patients(count: int, seed: int, mix: Mix | None = None) -> dict[str, FixturePatient]:
    """Generated patients wrapped as fixture patients (anchored at the fixture epoch, so shifted alike)."""
    rng = random.Random(seed)
    found: dict[str, FixturePatient] = {}
    for index in range(count):
        resources = list(
            patient_resources(index, rng=rng, anchor=FIXTURE_EPOCH, observations=60, days=6, mix=mix or Mix())
        )
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
        found[f"generated-{index}"] = FixturePatient(f"generated-{index}", bundle)
    return found


def write_ndjson(patients: dict[str, FixturePatient], now: datetime, folder: Path, files_per_type: int = 2) -> Path:
    """Each type in several files; a patient's resources spread over them, as in a real export."""
    folder.mkdir(parents=True, exist_ok=True)
    lines: defaultdict[tuple[str, int], list[bytes]] = defaultdict(list)
    for number, patient in enumerate(patients.values()):
        for resource in patient.resources(now):
            lines[(resource["resourceType"], number % files_per_type)].append(orjson.dumps(resource))
    for (kind, part), content in lines.items():
        (folder / f"{kind}.{part}.ndjson").write_bytes(b"\n".join(content) + b"\n")
    return folder


def fixture_patients() -> dict[str, FixturePatient]:
    return load_patients()


def resource_types(patient: FixturePatient) -> set[str]:
    entries: list[dict[str, Any]] = patient.bundle.get("entry", [])
    return {e["resource"]["resourceType"] for e in entries}
