"""Decode cost per Observation: our typed msgspec subset vs orjson vs full fhir.resources validation.

Run: PYTHONPATH=. .venv/bin/python -m bench.decode_bench [N]   (prints a markdown table; median of repeated runs)
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import orjson
from fhir.resources.R4B.bundle import Bundle

from cds_service.fhir.model import decode_payload
from cds_service.sandbox.fixtures import FIXTURE_EPOCH, load_patients


def observations_bundle(count: int) -> bytes:
    patient = load_patients()["adult-sepsis-mas-82kg"]
    templates = [r for r in patient.resources(FIXTURE_EPOCH) if r["resourceType"] == "Observation"]
    entries = []
    for index in range(count):
        resource = dict(templates[index % len(templates)])
        resource["id"] = f"obs-{index}"
        entries.append({"fullUrl": f"Observation/obs-{index}", "resource": resource, "search": {"mode": "match"}})
    return orjson.dumps({"resourceType": "Bundle", "type": "searchset", "entry": entries})


def median_ms(function: Callable[[], object], *, repeats: int = 7, min_seconds: float = 0.2) -> float:
    samples = []
    function()
    for _ in range(repeats):
        loops = 0
        started = time.perf_counter()
        while True:
            function()
            loops += 1
            elapsed = time.perf_counter() - started
            if elapsed >= min_seconds:
                break
        samples.append(elapsed / loops * 1000)
    return statistics.median(samples)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    body = observations_bundle(count)
    rows = [
        ("msgspec typed subset (cds_service.fhir.model.decode_payload)", lambda: decode_payload(body)),
        ("orjson.loads (dicts, no types)", lambda: orjson.loads(body)),
        ("fhir.resources R4B Bundle.model_validate_json (full validation)", lambda: Bundle.model_validate_json(body)),
    ]
    print(f"| decoder ({count} Observations, {len(body) // 1024} KiB) | ms per bundle | µs per Observation |")
    print("|---|---|---|")
    for name, function in rows:
        ms = median_ms(function)
        print(f"| {name} | {ms:.2f} | {ms * 1000 / count:.1f} |")


if __name__ == "__main__":
    main()
