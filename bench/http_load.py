"""HTTP benchmarks against real uvicorn servers on 127.0.0.1, driven by wrk (a bounded, closed-loop load
generator: fixed connections, fixed duration). Server and load generator share the machine's 2 cores."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "post.lua"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def production_python() -> str:
    """An interpreter with only the runtime dependencies (`pip install .`, no dev extras such as rich,
    which structlog and httpx import when present): what a hospital deployment runs. Built once."""
    venv = ROOT / "var" / "bench-production-venv"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    pyproject = ROOT / "pyproject.toml"
    if not stamp.exists() or stamp.stat().st_mtime < pyproject.stat().st_mtime:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(ROOT)], check=True)  # noqa: S603
        stamp.touch()
    return str(python)


def pinned(cpus: str | None, argv: list[str]) -> list[str]:
    """`argv` restricted to the given CPUs (taskset), or unchanged."""
    return ["taskset", "-c", cpus, *argv] if cpus else argv


def separate_cores() -> tuple[str | None, str | None]:
    """(server CPUs, load generator CPUs) for a one-process server: apart when the machine has two cores."""
    return ("0", "1") if (os.cpu_count() or 1) >= 2 and shutil.which("taskset") else (None, None)


class Server:
    def __init__(
        self, env: Mapping[str, str], workers: int, python: str = sys.executable, cpus: str | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.started = time.perf_counter()
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
            "--workers",
            str(workers),
            "--no-access-log",
            "--ws",
            "none",  # as `make run` and `cds-service serve` start it
            "--log-level",
            "warning",
        ]
        self.process = subprocess.Popen(  # noqa: S603 (fixed command line)
            pinned(cpus, argv),
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_first_answer(self, path: str = "/cds-services", timeout: float = 30) -> float:
        """Seconds from process start to the first 200 on `path`. Polls with a bare socket every 3 ms: an
        HTTP client library costs the poller tens of milliseconds per attempt and blurs the figure."""
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as connection:
                    connection.sendall(request)
                    if connection.recv(64).startswith((b"HTTP/1.1 200 ", b"HTTP/1.0 200 ")):
                        return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.003)
        raise TimeoutError("server did not answer")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = [int(p) for p in children.read_text().split()] if children.exists() else []
        # With --workers 1 uvicorn serves from the master process itself; with more, from spawned children.
        return [pid for pid in pids if _is_worker(pid)] or [self.process.pid]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _is_worker(pid: int) -> bool:
    try:
        return "spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


@contextmanager
def server(env: Mapping[str, str], workers: int, cpus: str | None = None) -> Iterator[Server]:
    running = Server(env, workers, cpus=cpus)
    try:
        running.wait_first_answer("/readyz")
        yield running
    finally:
        running.stop()


def wrk(url: str, body_file: Path, *, connections: int, seconds: int, cpus: str | None = None) -> dict[str, Any]:
    output = subprocess.run(  # noqa: S603
        pinned(cpus, ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA), url]),
        env={**os.environ, "BODY_FILE": str(body_file)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK "))
    result: dict[str, Any] = json.loads(line.removeprefix("WRK "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def base_env(database_url: str) -> dict[str, str]:
    return {"CDS_SANDBOX": "true", "CDS_BENCHMARK_ENDPOINTS": "true", "CDS_DATABASE_URL": database_url}


def throughput(
    bodies: Mapping[str, tuple[str, Path]],
    *,
    workers: int,
    database_url: str,
    seconds: int,
    connections: tuple[int, ...],
    rounds: int = 5,
) -> list[dict[str, Any]]:
    """Each workload and its decode-only baseline, at each concurrency, on one server setup: `rounds`
    alternating runs of each, medians reported (a shared machine's background load comes and goes).
    A one-process server runs on core 0 and wrk on core 1, so the load generator does not take the
    server's CPU; with two worker processes they share both cores."""
    server_cpus, wrk_cpus = separate_cores() if workers == 1 else (None, None)
    rows = []
    with server(base_env(database_url), workers, server_cpus) as running:
        for name, (service, body) in bodies.items():
            for conns in connections:
                urls = {
                    "service": f"{running.url}/cds-services/{service}",
                    "baseline": f"{running.url}/bench/decode-only/{service}",
                }
                for url in urls.values():  # warm-up
                    wrk(url, body, connections=conns, seconds=1, cpus=wrk_cpus)
                runs: dict[str, list[dict[str, Any]]] = {"service": [], "baseline": []}
                for _ in range(rounds):
                    for kind, url in urls.items():
                        runs[kind].append(wrk(url, body, connections=conns, seconds=seconds, cpus=wrk_cpus))
                real, baseline = _medians(runs["service"]), _medians(runs["baseline"])
                rows.append(
                    {
                        "workload": name,
                        "workers": workers,
                        "connections": conns,
                        "pinned": server_cpus is not None,
                        "service": real,
                        "baseline": baseline,
                        "ratio": real["rps"] / baseline["rps"],
                    }
                )
    return rows


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {
        key: statistics.median(run[key] for run in runs) for key in ("rps", "p50_us", "p95_us", "p99_us")
    }
    merged["errors"] = sum(run["errors"] for run in runs)
    merged["non2xx"] = sum(run["non2xx"] for run in runs)
    merged["requests"] = sum(run["requests"] for run in runs)
    return merged


def cold_start(database_url: str, runs: int = 5, python: str = sys.executable) -> dict[str, float]:
    """Process start to the first answered discovery call, the server confined to one core (core 0; the
    poller runs on another). Also the CPU time the server had used by then, which a busy machine moves less."""
    server_cpus, poller_cpus = separate_cores()
    affinity = os.sched_getaffinity(0)
    if poller_cpus:
        os.sched_setaffinity(0, {int(poller_cpus)})
    times, cpu = [], []
    try:
        for _ in range(runs):
            running = Server(base_env(database_url), 1, python, cpus=server_cpus)
            try:
                times.append(running.wait_first_answer("/cds-services"))
                cpu.append(running.cpu_seconds())
            finally:
                running.stop()
    finally:
        os.sched_setaffinity(0, affinity)
    return {
        "median_s": statistics.median(times),
        "max_s": max(times),
        "min_s": min(times),
        "cpu_median_s": statistics.median(cpu),
        "runs": runs,
    }


def memory_under_load(body: Path, service: str, *, database_url: str, workers: int, seconds: int) -> dict[str, Any]:
    """RSS of each worker after a warm-up and at the end of a `seconds`-long 16-connection run, and peak RSS."""
    with server(base_env(database_url), workers) as running:
        url = f"{running.url}/cds-services/{service}"
        wrk(url, body, connections=16, seconds=5)
        pids = running.worker_pids()
        start = {pid: memory_kib(pid, "VmRSS") for pid in pids}
        result = wrk(url, body, connections=16, seconds=seconds)
        end = {pid: memory_kib(pid, "VmRSS") for pid in pids}
        peak = {pid: memory_kib(pid, "VmHWM") for pid in pids}
    return {
        "requests": result["requests"],
        "rss_start_kib": start,
        "rss_end_kib": end,
        "peak_kib": peak,
        "growth_kib": max(end[p] - start[p] for p in pids),
    }


def temp_sqlite() -> str:
    return f"sqlite:///{Path(tempfile.mkdtemp(prefix='cds-bench-')) / 'bench.sqlite3'}"
