"""A screening job: scan, gather, evaluate (`steps`), run on an engine.

Engines differ only in where the steps run: `LocalEngine` (the default) uses a process per core on this
machine; `cds_service.population.dask_engine.DaskEngine` sends the same functions to Dask workers. The job
streams: workers read chunks of the files themselves, the candidates' lines go to spill files partitioned by
patient, and a partition is evaluated by one worker at a time, so memory is bounded by the chunk and
partition sizes, not by the size of the export.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cds_service.evaluation.mas import MasRules
from cds_service.population import steps
from cds_service.population.prefilter import Event, Prefilter
from cds_service.population.progress import Progress
from cds_service.population.source import Chunk, ndjson_files, plan_chunks

T = TypeVar("T")
PARTITION_BYTES = 24 * 1024 * 1024  # raw candidate lines per partition (decoded: a few times more in memory)


class Engine(Protocol):
    workers: int

    def run(self, function: Callable[..., T], calls: Sequence[tuple[Any, ...]]) -> Iterator[T]:
        """Call function(*args) for every args, in parallel; results in completion order."""
        ...

    def share(self, value: Any) -> Any:
        """A handle for an argument passed to many calls (sent once where the engine can)."""
        ...

    def description(self) -> str:
        """Which engine, how many workers, where (for the report)."""
        ...


class LocalEngine:
    """One process per core (the rules are CPU-bound Python: threads would share one interpreter lock)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or steps.cpu_count()
        self._pool: Executor | None = None

    def __enter__(self) -> LocalEngine:
        self._pool = ProcessPoolExecutor(max_workers=self.workers, initializer=steps.worker_setup)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def share(self, value: Any) -> Any:
        return value  # each task pickles it; a process pool has no cheaper broadcast

    def description(self) -> str:
        return f"local, {self.workers} worker processes"

    def run(self, function: Callable[..., T], calls: Sequence[tuple[Any, ...]]) -> Iterator[T]:
        if self._pool is None:
            raise RuntimeError("use LocalEngine as a context manager")
        futures = [self._pool.submit(function, *args) for args in calls]
        for future in as_completed(futures):
            yield future.result()


@dataclass
class ScreenOutcome:
    as_of: list[datetime]
    patients: int
    candidates_per_time: list[int]
    cards: list[steps.PatientRows]
    lines: int
    bytes: int
    by_type: dict[str, int]
    malformed: int
    unattributed: int
    evaluations: int
    prefiltered: bool
    timings: dict[str, float] = field(default_factory=dict)
    set_names: dict[str, str] = field(default_factory=dict)  # criteria set key -> name, from the rule pack
    rule_pack: dict[str, str] = field(default_factory=dict)  # id, version, sha256 of the pack in force


def screen(
    source: Path,
    *,
    as_of: Sequence[datetime],
    rules: MasRules,
    engine: Engine,
    progress: Progress | None = None,
    prefilter: bool = True,
    medications_known: bool = True,
    spill_dir: Path | None = None,
    chunk_bytes: int | None = None,
) -> ScreenOutcome:
    progress = progress or Progress(enabled=False)
    prefilter_of_pack = Prefilter(rules.pack)
    files = ndjson_files(source)
    chunks = plan_chunks(files, chunk_bytes) if chunk_bytes else plan_chunks(files)

    spill_root = Path(tempfile.mkdtemp(prefix="screen-", dir=spill_dir))
    try:
        return _screen(
            chunks, spill_root, as_of, rules, engine, progress, prefilter, medications_known, prefilter_of_pack
        )
    finally:
        shutil.rmtree(spill_root, ignore_errors=True)


def _screen(
    chunks: Sequence[Chunk],
    spill_root: Path,
    as_of: Sequence[datetime],
    rules: MasRules,
    engine: Engine,
    progress: Progress,
    prefilter: bool,
    medications_known: bool,
    candidates: Prefilter,
) -> ScreenOutcome:
    import time

    timings: dict[str, float] = {}
    main_cpu = time.process_time()
    worker_cpu = 0.0
    started = time.perf_counter()
    step = progress.step("scan", len(chunks), "chunks")
    scans = []
    shared_prefilter = engine.share(candidates)  # the pack's rules travel to each worker once
    for result in engine.run(steps.scan, [(chunk, str(spill_root), shared_prefilter) for chunk in chunks]):
        scans.append(result)
        worker_cpu += result.cpu
        step.advance()
    patients: set[str] = set().union(*(s.patients for s in scans)) if scans else set()
    always: set[str] = set().union(*(s.always for s in scans)) if scans else set()
    events: dict[str, list[Event]] = {}
    for result in scans:
        for patient, found in result.events.items():
            events.setdefault(patient, []).extend(found)
    plan: dict[str, list[int]] = {}
    for patient in patients:
        times = (
            steps.candidate_times(events.get(patient, ()), patient in always, as_of, candidates)
            if prefilter
            else list(range(len(as_of)))
        )
        if times:
            plan[patient] = times
    candidates_per_time = [0] * len(as_of)
    for times in plan.values():
        for index in times:
            candidates_per_time[index] += 1
    total_bytes = sum(s.bytes for s in scans)
    step.finish(f"{len(patients):,} patients, {len(plan):,} to evaluate")
    timings["scan"] = time.perf_counter() - started

    started = time.perf_counter()
    share = len(plan) / len(patients) if patients else 0.0
    partitions = max(1, min(4096, math.ceil(total_bytes * share / PARTITION_BYTES)), engine.workers * 2)
    candidate_set = engine.share(frozenset(plan))
    step = progress.step("gather", len(chunks), "chunks")
    gathered = 0
    calls = [(chunk, candidate_set, partitions, str(spill_root)) for chunk in chunks] if plan else []
    for gathered_chunk in engine.run(steps.gather, calls):
        gathered += gathered_chunk.lines
        worker_cpu += gathered_chunk.cpu
        step.advance()
    step.finish(f"{gathered:,} lines of {len(plan):,} patients")
    timings["gather"] = time.perf_counter() - started

    started = time.perf_counter()
    by_partition: dict[int, dict[str, list[int]]] = {}
    for patient, times in plan.items():
        by_partition.setdefault(steps.partition_of(patient, partitions), {})[patient] = times
    step = progress.step("evaluate", len(plan), "patients")
    cards: list[steps.PatientRows] = []
    evaluations = 0
    shared_rules = engine.share(rules)
    evaluate_calls = [
        (partition, str(spill_root), part_plan, list(as_of), shared_rules, medications_known)
        for partition, part_plan in sorted(by_partition.items())
    ]
    for evaluated in engine.run(steps.evaluate, evaluate_calls):
        cards.extend(evaluated.cards)
        evaluations += evaluated.evaluations
        worker_cpu += evaluated.cpu
        step.advance(len(by_partition[evaluated.partition]))
    step.finish(f"{sum(len(c.rows) for c in cards):,} cards")
    timings["evaluate"] = time.perf_counter() - started
    # CPU in the tasks (parallel) and in this process (merging, planning: serial), for the scaling estimate.
    timings["worker_cpu"] = worker_cpu
    timings["main_cpu"] = time.process_time() - main_cpu

    by_type: dict[str, int] = {}
    for result in scans:
        for kind, count in result.by_type.items():
            by_type[kind] = by_type.get(kind, 0) + count
    return ScreenOutcome(
        as_of=list(as_of),
        patients=len(patients),
        candidates_per_time=candidates_per_time,
        cards=sorted(cards, key=lambda c: c.patient_id),
        lines=sum(s.lines for s in scans),
        bytes=total_bytes,
        by_type=by_type,
        malformed=sum(s.malformed for s in scans),
        unattributed=sum(s.unattributed for s in scans),
        evaluations=evaluations,
        prefiltered=prefilter,
        timings=timings,
        set_names={definition.key: definition.name for definition in rules.pack.sets},
        rule_pack=dict(rules.pack.identity()),
    )


def chunks_of(source: Path) -> Iterable[Chunk]:
    return plan_chunks(ndjson_files(source))
