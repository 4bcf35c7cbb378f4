"""Prometheus metrics: latency per service and hook, cards by indicator, FHIR fallback calls, 4xx/5xx.

One registry per app (tests build many apps). With several worker processes, set PROMETHEUS_MULTIPROC_DIR
and /metrics aggregates all workers (prometheus_client multiprocess mode).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "cds_hook_call_seconds",
            "Hook call latency",
            ["service", "hook", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cards = Counter("cds_cards", "Cards returned", ["service", "indicator"], registry=self.registry)
        self.fhir_calls = Counter(
            "cds_fhir_fallback_requests",
            "FHIR server requests made for missing data",
            ["outcome"],
            registry=self.registry,
        )
        self.responses = Counter(
            "cds_http_responses", "HTTP responses by status class", ["status_class"], registry=self.registry
        )
        self.auth_failures = Counter("cds_auth_failures", "Refused bearer tokens", registry=self.registry)
        # Label lookups cost more than the observation itself: each call's children are found once.
        self._call_latency: dict[tuple[str, str, str], Any] = {}
        self._call_cards: dict[tuple[str, str], Any] = {}

    def observe_call(self, service: str, hook: str, status: str, seconds: float, indicators: Sequence[str]) -> None:
        """One hook call: its latency, and each card it returned by indicator."""
        key = (service, hook, status)
        latency = self._call_latency.get(key)
        if latency is None:
            latency = self._call_latency[key] = self.latency.labels(*key)
        latency.observe(seconds)
        for indicator in indicators:
            cards = self._call_cards.get((service, indicator))
            if cards is None:
                cards = self._call_cards[(service, indicator)] = self.cards.labels(service, indicator)
            cards.inc()

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client.multiprocess import MultiProcessCollector  # only in multiprocess mode

            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


class StatusCounter:
    """Counts every response by status class (2xx, 4xx, 5xx), including those of error handlers."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.responses.labels(f"{message['status'] // 100}xx").inc()
            await send(message)

        await self.app(scope, receive, counting_send)
