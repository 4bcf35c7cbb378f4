"""Deterministic cost per HTTP request: instructions executed by the whole uvicorn server process (every
thread: event loop, audit writer), counted by valgrind callgrind, for the services and for the decode-only
endpoint in the same process.

For each workload the server gets a few warm-up requests, then batches of sequential requests on one
keep-alive connection; after each batch the process dumps its counts (`callgrind_control`). The event loop
also runs a timer when idle (uvicorn's 0.1 s tick); its rate is measured in the same process with no
requests and subtracted for each batch's duration (it is cost per second, not per call; ~0.2 % of a call).
The figure per call is the median over the batches; the spread between batches is reported.

Run: `make bench-instructions` (or `make bench BENCH_ARGS=--instructions`).
"""

from __future__ import annotations

import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import callgrind
from bench.http_load import ROOT, base_env, free_port
from bench.workloads import order_select, patient_view

SERVICES: dict[str, Callable[[int], dict[str, Any]]] = {"mas-screen": patient_view, "anakinra-dose": order_select}
SIZES = (10, 100, 1000)


@dataclass(frozen=True)
class Measured:
    endpoint: str  # "mas-screen" or "decode-only/mas-screen"
    observations: int
    per_call: float  # instructions per call (median over batches, idle timer subtracted)
    spread: float  # (max - min) / median over the batches
    batches: int
    calls: int


class CallgrindServer:
    """The real uvicorn server (1 process) under callgrind, on 127.0.0.1."""

    def __init__(self, python: str, database_url: str, out_dir: Path) -> None:
        self.port = free_port()
        self.out_dir = out_dir
        argv = [
            python,
            "-m",
            "uvicorn",
            "cds_service.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--ws",
            "none",  # as `make run` and `cds-service serve` start it
            "--log-level",
            "warning",
        ]
        # A fixed hash seed: set and dict iteration orders (and so the instructions) repeat between runs.
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0", **base_env(database_url)}
        self.process = subprocess.Popen(  # noqa: S603 (fixed command line)
            callgrind.command(out_dir, argv, separate_threads=True),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def wait_for(self, path: str, timeout: float = 600) -> None:
        """Poll `path` until it answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the server under callgrind exited")
            try:
                if self.request("GET", path, b"")[0] == 200:
                    return
            except OSError:
                self.connection.close()
            time.sleep(0.2)
        raise TimeoutError(f"the server under callgrind did not answer {path}")

    def request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body else {}
        self.connection.request(method, path, body=body or None, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def post_many(self, path: str, body: bytes, count: int) -> None:
        for _ in range(count):
            status, answer = self.request("POST", path, body)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}: {answer[:300]!r}")

    def dump(self, name: str) -> int:
        return callgrind.dump(self.process.pid, self.out_dir, name).instructions

    def settle(self, quiet: float = 2e6, timeout: float = 300) -> None:
        """Wait until the process does no more than idle work (the warm-up thread goes on after /readyz)."""
        deadline = time.monotonic() + timeout
        self.dump("settle-start")
        while time.monotonic() < deadline:
            started = time.monotonic()
            time.sleep(1.0)
            if self.dump(f"settle-{started}") / (time.monotonic() - started) < quiet:
                return
        raise TimeoutError("the server under callgrind did not go idle")

    def stop(self) -> None:
        self.connection.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@dataclass(frozen=True)
class Startup:
    """Instructions from process start to the first answered discovery call: in the main thread (the
    critical path) and in the other threads meanwhile (the warm-up thread); then on to /readyz."""

    main_thread: int
    other_threads: int
    to_ready: int


@contextmanager
def callgrind_server(python: str, database_url: str) -> Iterator[tuple[CallgrindServer, Startup]]:
    with tempfile.TemporaryDirectory(prefix="cds-bench-callgrind-") as folder:
        server = CallgrindServer(python, database_url, Path(folder))
        try:
            server.wait_for("/cds-services")
            first = callgrind.dump(server.process.pid, server.out_dir, "first-answer")
            server.wait_for("/readyz")
            ready = server.dump("ready")
            yield server, Startup(first.per_thread[0], sum(first.per_thread[1:]), first.instructions + ready)
        finally:
            server.stop()


def batch_size(observations: int) -> int:
    """Calls per batch: ~1-3 s of callgrind time each, so a batch spans many event-loop ticks and GC runs."""
    return 20 if observations <= 100 else 8 if observations <= 1000 else 2


def measure(
    python: str,
    database_url: str,
    *,
    sizes: Sequence[int] = SIZES,
    batches: int = 3,
    warm_up: int = 3,
    progress: Callable[[str], None] = print,
) -> tuple[list[Measured], float, Startup]:
    """Instructions per call of each service and its decode-only baseline, at each prefetch size.
    Also returns the idle rate (instructions per second with no requests) that was subtracted, and the
    start-up counts."""
    results: list[Measured] = []
    with callgrind_server(python, database_url) as (server, startup):
        progress(
            f"start-up to first discovery answer: {startup.main_thread / 1e9:.3f} G (main thread), "
            f"{startup.other_threads / 1e9:.3f} G (other threads); to ready: {startup.to_ready / 1e9:.3f} G"
        )
        server.connection.close()  # uvicorn closes a keep-alive connection idle for 5 s; the next request reopens
        server.settle()
        idle_seconds = 3.0
        started = time.monotonic()
        time.sleep(idle_seconds)
        idle_rate = server.dump("idle") / (time.monotonic() - started)
        for service, build in SERVICES.items():
            for size in sizes:
                body = orjson.dumps(build(size))
                for endpoint in (f"decode-only/{service}", service):
                    path = f"/bench/{endpoint}" if endpoint.startswith("decode-only") else f"/cds-services/{service}"
                    server.post_many(path, body, warm_up)
                    server.dump(f"{endpoint}-{size}-warm")
                    count = batch_size(size)
                    per_call = []
                    for index in range(batches):
                        started = time.monotonic()
                        server.post_many(path, body, count)
                        total = server.dump(f"{endpoint}-{size}-{index}")
                        per_call.append((total - idle_rate * (time.monotonic() - started)) / count)
                    median = statistics.median(per_call)
                    row = Measured(
                        endpoint, size, median, (max(per_call) - min(per_call)) / median, batches, batches * count
                    )
                    results.append(row)
                    progress(f"{endpoint:28} {size:>6,} Obs  {median / 1e6:8.3f} M/call  spread {row.spread:.2%}")
    return results, idle_rate, startup


@dataclass(frozen=True)
class Line:
    """instructions ≈ fixed + per_observation × Observations (least squares over the measured sizes)."""

    fixed: float
    per_observation: float
    worst_residual: float  # largest |measured - line| / measured over the sizes


def fit(points: Sequence[tuple[int, float]]) -> Line:
    xs = [float(x) for x, _ in points]
    ys = [y for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum((x - mean_x) ** 2 for x in xs)
    intercept = mean_y - slope * mean_x
    residual = max(abs(y - (intercept + slope * x)) / y for x, y in zip(xs, ys, strict=True))
    return Line(intercept, slope, residual)


@dataclass(frozen=True)
class Summary:
    service: str
    service_line: Line
    baseline_line: Line

    @property
    def fixed_above_baseline(self) -> float:
        return self.service_line.fixed - self.baseline_line.fixed

    @property
    def per_observation_above_baseline(self) -> float:
        return self.service_line.per_observation - self.baseline_line.per_observation


def summarise(rows: Sequence[Measured]) -> list[Summary]:
    summaries = []
    for service in SERVICES:
        own = [(r.observations, r.per_call) for r in rows if r.endpoint == service]
        base = [(r.observations, r.per_call) for r in rows if r.endpoint == f"decode-only/{service}"]
        if len(own) >= 2 and len(base) >= 2:
            summaries.append(Summary(service, fit(own), fit(base)))
    return summaries


def per_call(rows: Sequence[Measured], endpoint: str, observations: int) -> float | None:
    return next((r.per_call for r in rows if r.endpoint == endpoint and r.observations == observations), None)


def startup_markdown(startup: Startup) -> str:
    return (
        f"Start-up, process start to the first answered `GET /cds-services`: {startup.main_thread / 1e9:.2f} G "
        f"instructions in the main thread (the critical path), while the warm-up thread had run "
        f"{startup.other_threads / 1e9:.2f} G; {startup.to_ready / 1e9:.2f} G in all to `/readyz` ready."
    )


def markdown(rows: Sequence[Measured], idle_rate: float, database: str) -> list[str]:
    out = [
        "Whole uvicorn server process (1 worker, runtime dependencies only) under valgrind callgrind, "
        f"{database} audit log; batches of sequential requests on one keep-alive connection after 3 warm-up "
        f"calls; median over batches; the idle event-loop timer ({idle_rate / 1e3:,.0f} K instructions/s) is "
        "subtracted. Instruction counts repeat within ~0.5 % between runs; wall time does not.",
        "",
        "| service | Observations | instructions per call | decode-only, same body | ratio | above decode-only "
        "| spread over batches |",
        "|---|---|---|---|---|---|---|",
    ]
    for service in SERVICES:
        for row in (r for r in rows if r.endpoint == service):
            base = per_call(rows, f"decode-only/{service}", row.observations)
            assert base is not None
            out.append(
                f"| {service} | {row.observations:,} | {row.per_call / 1e6:.2f} M | {base / 1e6:.2f} M | "
                f"{base / row.per_call:.2f}× | {(row.per_call - base) / 1e6:+.2f} M | {row.spread:.2%} |"
            )
    out += [
        "",
        "Cost per call as a line over prefetch size (least squares over the sizes above):",
        "",
        "| service | fixed per call | per Observation | decode-only fixed | decode-only per Observation "
        "| fixed above decode-only | per Observation above decode-only | worst deviation from the line |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summarise(rows):
        out.append(
            f"| {s.service} | {s.service_line.fixed / 1e6:.2f} M | {s.service_line.per_observation / 1e3:.1f} K | "
            f"{s.baseline_line.fixed / 1e6:.2f} M | {s.baseline_line.per_observation / 1e3:.1f} K | "
            f"{s.fixed_above_baseline / 1e6:.2f} M | {s.per_observation_above_baseline / 1e3:.1f} K | "
            f"{max(s.service_line.worst_residual, s.baseline_line.worst_residual):.1%} |"
        )
    return out


def main() -> None:  # pragma: no cover (a script)
    from bench.http_load import production_python, temp_sqlite

    if not callgrind.available():
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    rows, idle, startup = measure(production_python(), temp_sqlite())
    print("\n".join(markdown(rows, idle, "SQLite")))
    print(startup_markdown(startup))


if __name__ == "__main__":
    main()
