"""In-process cost of the MAS screen and the dose check against prefetch size, split into phases:
decode (envelope + prefetch -> typed resources, as the route does), service (the registered guard and
handler: facts, rules, cards) and encode (the CDS Hooks response JSON). No HTTP, audit, log or metrics.

It drives the services through the registry, as the route does, so it does not depend on how the rules
and cards are organised inside a service.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from typing import Any

import orjson

from bench.workloads import NOW, REGISTRY, order_select, patient_view
from cds_service.call import HookCall
from cds_service.fhir.client import ReadBudget
from cds_service.fhir.prefetch import resolve_prefetch
from cds_service.settings import Settings
from cds_service.spec.response import CdsResponse
from cds_service.transport.envelope import check_context, decode_envelope

SETTINGS = Settings(sandbox=True, gc_freeze=False)
PHASES = ("decode", "service", "encode")


async def call_once(service_id: str, raw: bytes) -> dict[str, float]:
    """One call as the route makes it, timed by phase. Raises if the service declines the call."""
    service = REGISTRY.get(service_id)
    assert service is not None
    clock = time.perf_counter
    marks = [clock()]
    envelope = decode_envelope(raw)
    tokens = check_context(envelope)
    call = HookCall(service_id, envelope.hook, envelope.hookInstance, envelope.context, NOW, SETTINGS)
    if service.guard is not None and not await service.guard(call):
        raise RuntimeError(f"{service_id} declined the benchmark call")
    data = await resolve_prefetch(service.prefetch, envelope.prefetch, tokens, None, budget=_budget(), max_pages=1)
    marks.append(clock())
    result = await service.handler(call, data)
    marks.append(clock())
    CdsResponse(cards=list(result.cards)).to_json()
    marks.append(clock())
    return {phase: marks[i + 1] - marks[i] for i, phase in enumerate(PHASES)}


def body(service_id: str, observations: int) -> bytes:
    return orjson.dumps(patient_view(observations) if service_id == "mas-screen" else order_select(observations))


def measure(service_id: str, observations: int, *, min_runs: int = 15, min_seconds: float = 1.0) -> dict[str, Any]:
    raw = body(service_id, observations)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(call_once(service_id, raw))  # warm-up (lazy validators, caches)
        samples: list[dict[str, float]] = []
        gc.collect()
        started = time.perf_counter()
        while len(samples) < min_runs or time.perf_counter() - started < min_seconds:
            samples.append(loop.run_until_complete(call_once(service_id, raw)))
            if len(samples) >= 400:
                break
    finally:
        loop.close()
    totals = sorted(sum(s.values()) for s in samples)
    row: dict[str, Any] = {
        "service": service_id,
        "observations": observations,
        "body_kib": len(raw) // 1024,
        "runs": len(samples),
        "median_ms": statistics.median(totals) * 1000,
        "p95_ms": totals[min(len(totals) - 1, int(len(totals) * 0.95))] * 1000,
    }
    for phase in PHASES:
        row[f"{phase}_ms"] = statistics.median(s[phase] for s in samples) * 1000
    return row


def _budget() -> ReadBudget:
    """The FHIR read budget a call starts with (nothing is fetched here: every key is prefetched)."""
    return ReadBudget.starting_now(2.0, 8 << 20)
