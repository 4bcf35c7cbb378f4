"""The three steps of a screening job, as pure functions of picklable arguments: any engine (a local
process pool, Dask workers) runs them as they are.

1. scan(chunk): light decode; who is in the export, who could get a card (`prefilter`), per as-of time.
2. gather(chunk): copy the lines of the candidates into spill files, partitioned by patient.
3. evaluate(partition): decode those lines in full, group by patient, run the hook's evaluation
   (`evaluate_mas`, `screen_row`) as of each time the patient is a candidate.
"""

from __future__ import annotations

import os
import time
import zlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from cds_service.cards.explanation import ScreenRow, screen_row
from cds_service.evaluation.mas import MasRules, evaluate_mas, record_from_resources
from cds_service.fhir.identity import names_other_patient
from cds_service.fhir.model import Condition, MedicationRequest, Observation, Patient
from cds_service.population.light import (
    FastObservation,
    LightMedicationRequest,
    LightObservation,
    LightPatient,
    decode_fast_block,
    decode_light,
    decode_observation,
    owner,
    patient_of_reference,
    split_lines,
)
from cds_service.population.prefilter import COUNTED_STATUSES, Event, FastCheck, Prefilter
from cds_service.population.source import Chunk, read_blocks


@dataclass
class ScanResult:
    chunk: int
    lines: int = 0
    bytes: int = 0
    malformed: int = 0
    unattributed: int = 0  # resources that name no patient: never attached to one
    by_type: dict[str, int] = field(default_factory=dict)
    patients: set[str] = field(default_factory=set)  # every patient a line belongs to
    always: set[str] = field(default_factory=set)  # coded underlying disease or finding
    events: dict[str, list[Event]] = field(default_factory=dict)
    medication_requests: int = 0
    cpu: float = 0.0  # CPU seconds of this task (time.process_time in the worker)


def scan(chunk: Chunk, spill: str, prefilter: Prefilter) -> ScanResult:
    """Scan one chunk; the owner of every line goes to spill/owners/<chunk>.txt (run-length: most exports
    keep a patient's lines together) so that `gather` never decodes a line again."""
    started = time.process_time()
    result = ScanResult(chunk.index)
    by_type: defaultdict[str, int] = defaultdict(int)
    events: defaultdict[str, list[Event]] = defaultdict(list)
    runs: list[list[Any]] = []  # [owner or "", count]
    check = prefilter.fast_check()
    for block in read_blocks(chunk):
        result.bytes += len(block)
        fast = decode_fast_block(block)
        if fast is not None:
            raws, observations = fast
            result.lines += len(raws)
            by_type["Observation"] += len(raws)
            owners = _scan_observations(raws, observations, prefilter, check, result, events)
        else:
            lines = split_lines(block)
            result.lines += len(lines)
            owners = _scan_any(lines, prefilter, result, by_type, events)
        for patient in owners:
            if runs and runs[-1][0] == patient:
                runs[-1][1] += 1
            else:
                runs.append([patient, 1])
    folder = Path(spill) / "owners"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"c{chunk.index:06d}.txt").write_text("".join(f"{n}\t{p}\n" for p, n in runs), encoding="utf-8")
    result.by_type = dict(by_type)
    result.events = dict(events)
    result.cpu = time.process_time() - started
    return result


def _scan_observations(
    lines: Sequence[msgspec.Raw],
    observations: Sequence[FastObservation],
    prefilter: Prefilter,
    check: FastCheck,
    result: ScanResult,
    events: defaultdict[str, list[Event]],
) -> list[str]:
    """The hot loop (most lines of an export): owner, status, and one cached threshold per code and unit."""
    patients = result.patients
    counted = COUNTED_STATUSES
    owners: list[str] = []
    last = ""
    for line, observation in zip(lines, observations, strict=True):
        subject = observation.subject
        reference = subject.reference if subject is not None else None
        if reference is not None and reference.startswith("Patient/") and reference.find("/", 8) < 0:
            patient = reference[8:]
        else:
            patient = patient_of_reference(subject) or ""
        owners.append(patient)
        if not patient:
            result.unattributed += 1
            continue
        if patient != last:
            patients.add(patient)
            last = patient
        if observation.status not in counted:
            continue
        quantity = observation.valueQuantity
        if quantity is None or quantity.value is None or quantity.comparator is not None:
            continue
        ranged = bool(observation.referenceRange) and bytes(observation.referenceRange) != b"null"
        if check.clearly_normal_raw(bytes(observation.code), quantity, ranged=ranged):
            continue
        absent = observation.dataAbsentReason
        if absent and bytes(absent) != b"null":
            continue
        exact = decode_observation(line)  # near or past a threshold, or an unusual unit: read it exactly
        event = prefilter.observation_event(exact) if exact is not None else None
        if event is not None:
            events[patient].append(event)
    return owners


def _scan_any(
    lines: Sequence[bytes],
    prefilter: Prefilter,
    result: ScanResult,
    by_type: defaultdict[str, int],
    events: defaultdict[str, list[Event]],
) -> list[str]:
    decoded, malformed = decode_light(lines)
    result.malformed += malformed
    owners: list[str] = []
    for resource in decoded:
        if resource is None:
            owners.append("")
            continue
        if isinstance(resource, LightObservation):
            kind, patient = "Observation", owner("Observation", resource.id, resource.subject)
        elif isinstance(resource, LightPatient):
            kind, patient = "Patient", owner("Patient", resource.id, None)
        elif isinstance(resource, Condition):
            kind, patient = "Condition", owner("Condition", resource.id, resource.subject)
        else:
            kind, patient = "MedicationRequest", owner("MedicationRequest", resource.id, resource.subject)
        by_type[kind] += 1
        owners.append(patient or "")
        if patient is None:
            result.unattributed += 1
            continue
        result.patients.add(patient)
        if isinstance(resource, LightObservation):
            event = prefilter.observation_event(resource)
            if event is not None:
                events[patient].append(event)
        elif isinstance(resource, Condition):
            if prefilter.condition_makes_candidate(resource):
                result.always.add(patient)
        elif isinstance(resource, LightMedicationRequest):
            result.medication_requests += 1
    return owners


def candidate_times(
    events: Sequence[Event], always: bool, as_of: Sequence[datetime], prefilter: Prefilter
) -> list[int]:
    """Indexes of the as-of times at which this patient must be evaluated in full."""
    if always:
        return list(range(len(as_of)))
    return [index for index, moment in enumerate(as_of) if prefilter.is_candidate(events, moment)]


def partition_of(patient: str, partitions: int) -> int:
    return zlib.crc32(patient.encode()) % partitions  # stable across processes (unlike hash())


@dataclass(frozen=True)
class GatherResult:
    chunk: int
    lines: int
    bytes: int
    cpu: float


def gather(chunk: Chunk, candidates: frozenset[str], partitions: int, spill: str) -> GatherResult:
    """Write the candidates' lines of this chunk to spill/<partition>/<chunk>.ndjson, reading each line's
    owner from the scan's owners file (the same blocks and lines, in the same order)."""
    started = time.process_time()
    outputs: dict[int, list[bytes]] = defaultdict(list)
    kept = size = 0
    runs = _owner_runs(Path(spill) / "owners" / f"c{chunk.index:06d}.txt")
    current, remaining = "", 0
    for block in read_blocks(chunk):
        for line in split_lines(block):
            if remaining == 0:
                current, remaining = next(runs)
            remaining -= 1
            if current and current in candidates:
                outputs[partition_of(current, partitions)].append(line)
                kept += 1
                size += len(line) + 1
    for partition, lines in outputs.items():
        folder = Path(spill) / f"p{partition:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"c{chunk.index:06d}.ndjson", "wb") as stream:
            stream.write(b"\n".join(lines) + b"\n")
    return GatherResult(chunk.index, kept, size, time.process_time() - started)


def _owner_runs(path: Path) -> Iterator[tuple[str, int]]:
    with path.open(encoding="utf-8") as stream:
        for text in stream:
            count, _, patient = text.rstrip("\n").partition("\t")
            yield patient, int(count)


FullResource = Observation | Patient | Condition | MedicationRequest
_FULL = msgspec.json.Decoder(FullResource)


@dataclass(frozen=True)
class PatientRows:
    patient_id: str
    rows: tuple[tuple[int, ScreenRow], ...]  # (as-of index, row) for every time evaluated


@dataclass(frozen=True)
class EvaluateResult:
    partition: int
    patients: int
    evaluations: int
    cards: tuple[PatientRows, ...]  # only patients with at least one card
    problems: int
    cpu: float


def evaluate(
    partition: int,
    spill: str,
    plan: dict[str, list[int]],
    as_of: Sequence[datetime],
    rules: MasRules,
    medications_known: bool,
) -> EvaluateResult:
    """Full evaluation of one partition's candidates, each at the as-of times the plan gives it."""
    started = time.process_time()
    grouped: defaultdict[str, list[FullResource]] = defaultdict(list)
    problems = 0
    folder = Path(spill) / f"p{partition:05d}"
    for path in sorted(folder.glob("*.ndjson")) if folder.is_dir() else ():
        for line in split_lines(path.read_bytes()):
            try:
                resource = _FULL.decode(line)
            except msgspec.DecodeError:
                problems += 1  # a line the scan read but the full model refuses: the hook would drop it too
                continue
            patient = owner(type(resource).__name__, resource.id, getattr(resource, "subject", None))
            if patient is None or names_other_patient(resource, patient):
                continue
            grouped[patient].append(resource)
    cards: list[PatientRows] = []
    evaluations = 0
    for patient, resources in grouped.items():
        times = plan.get(patient, ())
        record = record_from_resources(patient, resources, medications_known=medications_known)
        rows: list[tuple[int, ScreenRow]] = []
        for index in times:
            evaluation = evaluate_mas(record, now=as_of[index], rules=rules)
            evaluations += 1
            if evaluation.indicator is not None:
                rows.append((index, screen_row(evaluation)))
        if rows:
            cards.append(PatientRows(patient, tuple(rows)))
    return EvaluateResult(partition, len(grouped), evaluations, tuple(cards), problems, time.process_time() - started)


def worker_setup() -> None:
    """In each worker process: far fewer young-generation collections (the scan and the rules allocate
    millions of short-lived objects; CPython's default threshold of 700 rescans the heap constantly)."""
    import gc

    gc.set_threshold(100_000, 50, 100)


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
