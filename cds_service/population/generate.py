"""A synthetic inpatient population as FHIR Bulk Data NDJSON, deterministic by seed (tests and benchmarks).

The mix (per patient, drawn from the seed): most have normal labs; some have one abnormal lab; a few have
MAS-like labs (with or without sJIA, sepsis or malignancy coded); results that are stale (older than the
lab window), cancelled or entered in error, and results in other units (ferritin µg/L, platelets /µL and
10*3/µL, temperature °F, fibrinogen g/L, triglycerides mmol/L) are mixed in. Times lie in the `days`
before `anchor`, so screening as of `anchor` sees the latest results inside the 72 h window.

    python -m cds_service.population.generate OUT --patients 1000 --seed 7 [--gzip] [--anchor ISO]
"""

from __future__ import annotations

import argparse
import gzip
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

# analyte: (LOINC, display, normal range in the canonical unit, canonical UCUM code)
NORMAL: dict[str, tuple[str, str, tuple[float, float], str]] = {
    "ferritin": ("2276-4", "Ferritin", (20, 300), "ng/mL"),
    "platelets": ("777-3", "Platelets", (160, 380), "10*9/L"),
    "wbc": ("6690-2", "Leukocytes", (5.5, 10.5), "10*9/L"),
    "anc": ("751-8", "Neutrophils", (2.0, 7.0), "10*9/L"),
    "hemoglobin": ("718-7", "Hemoglobin", (11.5, 15.5), "g/dL"),
    "ast": ("1920-8", "AST", (12, 38), "U/L"),
    "alt": ("1742-6", "ALT", (10, 40), "U/L"),
    "ldh": ("2532-0", "LDH", (120, 240), "U/L"),
    "triglycerides": ("2571-8", "Triglycerides", (50, 160), "mg/dL"),
    "fibrinogen": ("3255-7", "Fibrinogen", (210, 400), "mg/dL"),
    "inr": ("6301-6", "INR", (0.9, 1.2), "{INR}"),
    "crp": ("1988-5", "CRP", (0.5, 9), "mg/L"),
    "esr": ("4537-7", "ESR", (2, 20), "mm/h"),
    "creatinine": ("2160-0", "Creatinine", (0.5, 1.1), "mg/dL"),
    "temperature": ("8310-5", "Body temperature", (36.3, 37.6), "Cel"),
}
PANEL = [k for k in NORMAL if k != "temperature"]
# MAS-like values (canonical units).
MAS: dict[str, tuple[float, float]] = {
    "ferritin": (4000, 40000),
    "platelets": (30, 95),
    "wbc": (1.5, 3.8),
    "anc": (0.4, 0.95),
    "hemoglobin": (7.0, 8.8),
    "ast": (130, 600),
    "alt": (130, 500),
    "ldh": (600, 2500),
    "triglycerides": (280, 600),
    "fibrinogen": (60, 140),
    "inr": (1.6, 2.4),
    "crp": (20, 200),
    "esr": (5, 30),
    "temperature": (39.0, 40.5),
}
SINGLE_ABNORMAL: dict[str, tuple[float, float]] = {
    "ferritin": (520, 1800),
    "platelets": (70, 140),
    "ast": (45, 150),
    "triglycerides": (170, 300),
    "crp": (15, 120),
    "temperature": (38.1, 39.2),
    "hemoglobin": (8.0, 10.5),
}
CONDITIONS = {
    "sjia": ("M08.20", "Systemic juvenile idiopathic arthritis"),
    "sepsis": ("A41.9", "Sepsis, unspecified organism"),
    "malignancy": ("C83.30", "Diffuse large B-cell lymphoma"),
    "hypertension": ("I10", "Essential (primary) hypertension"),
    "diabetes": ("E11.9", "Type 2 diabetes mellitus without complications"),
    "splenomegaly": ("R16.1", "Splenomegaly"),
}


@dataclass(frozen=True)
class Mix:
    """Shares of the population (the rest is normal)."""

    single_abnormal: float = 0.12
    mas: float = 0.03
    sepsis_only: float = 0.03
    malignancy_only: float = 0.01


def _unit(rng: random.Random, analyte: str, value: float, canonical: str) -> dict[str, Any]:
    """The value in the canonical unit, or (about one in six) in another unit the catalogue converts."""
    if rng.random() < 0.17:
        if analyte == "ferritin":
            return {"value": round(value, 1), "unit": "ug/L", "system": UCUM, "code": "ug/L"}
        if analyte == "platelets":
            return {"value": round(value * 1000), "unit": "/uL", "system": UCUM, "code": "/uL"}
        if analyte == "temperature":
            return {"value": round(value * 9 / 5 + 32, 1), "unit": "[degF]", "system": UCUM, "code": "[degF]"}
        if analyte == "fibrinogen":
            return {"value": round(value / 100, 2), "unit": "g/L", "system": UCUM, "code": "g/L"}
        if analyte == "triglycerides":
            return {"value": round(value / 88.57, 2), "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}
        if analyte == "wbc":
            return {"value": round(value, 2), "unit": "10*3/uL", "system": UCUM, "code": "10*3/uL"}
    digits = 2 if value < 20 else 1
    return {"value": round(value, digits), "unit": canonical, "system": UCUM, "code": canonical}


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def patient_resources(
    index: int, *, rng: random.Random, anchor: datetime, observations: int, days: int, mix: Mix
) -> Iterator[dict[str, Any]]:
    """One patient's Patient, Observations, Conditions and MedicationRequests."""
    pid = f"pop{index:07d}"
    ref = {"reference": f"Patient/{pid}"}
    draw = rng.random()
    kind = "normal"
    for name, share in (
        ("mas", mix.mas),
        ("single", mix.single_abnormal),
        ("sepsis", mix.sepsis_only),
        ("malignancy", mix.malignancy_only),
    ):
        if draw < share:
            kind = name
            break
        draw -= share
    age = rng.choice((rng.randint(2, 17), rng.randint(18, 90), rng.randint(18, 90)))
    born = (anchor - timedelta(days=365 * age + rng.randint(0, 364))).date().isoformat()
    yield {"resourceType": "Patient", "id": pid, "gender": rng.choice(("female", "male")), "birthDate": born}

    conditions: list[str] = []
    if rng.random() < 0.3:
        conditions.append(rng.choice(("hypertension", "diabetes")))
    if kind == "mas":
        conditions.append(rng.choice(("sjia", "sepsis", "malignancy", "sjia", "none", "none")))
        if rng.random() < 0.3:
            conditions.append("splenomegaly")
    elif kind in ("sepsis", "malignancy"):
        conditions.append(kind)
    for number, key in enumerate(c for c in conditions if c != "none"):
        code, display = CONDITIONS[key]
        yield {
            "resourceType": "Condition",
            "id": f"{pid}-c{number}",
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"coding": [{"system": ICD10, "code": code, "display": display}], "text": display},
            "subject": ref,
            "recordedDate": _time(anchor - timedelta(days=rng.randint(1, 400))),
        }
    if rng.random() < 0.08:
        drug = rng.choice(("prednisone 20 MG Oral Tablet", "methotrexate 2.5 MG Oral Tablet", "anakinra 100 MG/0.67ML"))
        yield {
            "resourceType": "MedicationRequest",
            "id": f"{pid}-m0",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"text": drug},
            "subject": ref,
            "authoredOn": _time(anchor - timedelta(days=rng.randint(1, 90))),
        }

    abnormal = rng.choice(list(SINGLE_ABNORMAL)) if kind == "single" else None
    weight = round(rng.uniform(12, 60) if age < 18 else rng.uniform(45, 120), 1)
    yield _observation(
        f"{pid}-w",
        ref,
        "29463-7",
        "Body weight",
        {"value": weight, "unit": "kg", "system": UCUM, "code": "kg"},
        anchor - timedelta(hours=rng.uniform(1, 60)),
        "final",
        "vital-signs",
    )
    span = timedelta(days=days)
    for number in range(max(observations - 1, 0)):
        analyte = "temperature" if number % 4 == 0 else rng.choice(PANEL)
        loinc, display, normal, canonical = NORMAL[analyte]
        when = anchor - span * (rng.random() ** 1.5)  # more results recently, as in an admission
        recent = anchor - when <= timedelta(hours=60)
        low, high = normal
        if kind == "mas" and recent and analyte in MAS:
            low, high = MAS[analyte]
        elif analyte == abnormal and recent:
            low, high = SINGLE_ABNORMAL[analyte]
        elif kind == "normal" and not recent and analyte in MAS and rng.random() < 0.02:
            low, high = MAS[analyte]  # stale: abnormal, but older than the lab window
        status = "final"
        roll = rng.random()
        if roll < 0.01:
            status, (low, high) = "cancelled", MAS.get(analyte, normal)  # never counted, whatever the value
        elif roll < 0.015:
            status = "entered-in-error"
        elif roll < 0.03:
            status = "preliminary"
        quantity = _unit(rng, analyte, rng.uniform(low, high), canonical)
        category = "vital-signs" if analyte == "temperature" else "laboratory"
        yield _observation(f"{pid}-o{number}", ref, loinc, display, quantity, when, status, category)


def _observation(
    oid: str,
    ref: dict[str, str],
    loinc: str,
    display: str,
    quantity: dict[str, Any],
    when: datetime,
    status: str,
    category: str,
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}]},
        "subject": ref,
        "effectiveDateTime": _time(when),
        "valueQuantity": quantity,
    }


def generate(
    out: Path,
    *,
    patients: int,
    seed: int = 1,
    anchor: datetime | None = None,
    observations: int = 100,
    days: int = 10,
    files_per_type: int = 2,
    compress: bool = False,
    mix: Mix | None = None,
) -> dict[str, int]:
    """Write `<Type>.<n>.ndjson[.gz]` files to `out`; returns the number of resources per type."""
    out.mkdir(parents=True, exist_ok=True)
    moment = (anchor or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    rng = random.Random(seed)  # noqa: S311 (synthetic data, reproducible by seed)
    suffix = ".ndjson.gz" if compress else ".ndjson"
    handles: dict[tuple[str, int], IO[bytes] | gzip.GzipFile] = {}
    counts: dict[str, int] = {}

    def handle(kind: str, part: int) -> IO[bytes] | gzip.GzipFile:
        key = (kind, part)
        if key not in handles:
            path = out / f"{kind}.{part}{suffix}"
            # Closed in the finally below: one handle per (type, part), open for the whole run.
            handles[key] = gzip.open(path, "wb", compresslevel=1) if compress else path.open("wb")  # noqa: SIM115
        return handles[key]

    try:
        for index in range(patients):
            part = index % files_per_type  # a patient's resources spread over files of each type
            for resource in patient_resources(
                index, rng=rng, anchor=moment, observations=observations, days=days, mix=mix or Mix()
            ):
                kind = resource["resourceType"]
                handle(kind, part).write(orjson.dumps(resource) + b"\n")
                counts[kind] = counts.get(kind, 0) + 1
    finally:
        for stream in handles.values():
            stream.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--observations", type=int, default=100, help="Observations per patient")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--anchor", help="ISO time the data is 'now' for (default: now)")
    parser.add_argument("--files-per-type", type=int, default=2)
    parser.add_argument("--gzip", action="store_true")
    args = parser.parse_args(argv)
    anchor = datetime.fromisoformat(args.anchor) if args.anchor else None
    counts = generate(
        args.out,
        patients=args.patients,
        seed=args.seed,
        anchor=anchor,
        observations=args.observations,
        files_per_type=args.files_per_type,
        compress=args.gzip,
    )
    print(", ".join(f"{kind}: {count:,}" for kind, count in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
