"""`make bench`: the benchmark suite. Prints a markdown report and writes it to bench/results.md.

1. In-process cost of the MAS screen and the dose check against prefetch size (10 to 10,000 Observations),
   split into decode / rules / cards / encode (median and p95 of repeated runs).
2. HTTP throughput and latency (p50/p95/p99) of patient-view and order-select at 1 and 16 connections,
   uvicorn with 1 and 2 workers, wrk on 127.0.0.1, with the decode-only baseline on the same server.
3. Cold start: process start to the first answered discovery call.
4. Worker memory under the 16-connection load: peak, and growth over a long run.

Options: --quick (short runs, for a smoke test), --seconds N (HTTP run length), --memory-seconds N.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bench import http_load as http
from bench import inprocess
from bench.workloads import order_select, patient_view

RESULTS = Path(__file__).resolve().parent / "results.md"
TARGETS = {
    "ratio": 0.5,  # MAS screen throughput >= 0.5x the decode-only baseline (100 Observations)
    "p99_ms": 50.0,  # at 16 connections, 2 workers
    "in_process_10k_ms": 250.0,
    "cold_start_s": 1.0,
}


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        (
            int(line.split()[1]) // 1024 // 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split()[1]  # noqa: S607
    return (
        f"{os.cpu_count()} vCPU ({cpu}), {memory} GiB RAM, Linux {platform.release()}, "
        f"CPython {platform.python_version()}, wrk {wrk}; load generator and server share the cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--memory-seconds", type=int, default=60)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file (as `make run`)")
    args = parser.parse_args()
    seconds = 2 if args.quick else args.seconds
    memory_seconds = 5 if args.quick else args.memory_seconds
    sizes = (10, 100, 1000) if args.quick else (10, 100, 1000, 10000)
    database = args.database_url or http.temp_sqlite()
    out: list[str] = [
        f"# Benchmarks — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}. Database: {'PostgreSQL' if database.startswith('postgresql') else 'SQLite (WAL)'}"
        " audit log. Sandbox mode (no JWT: verification adds ~0.2 ms RS384 / ~0.9 ms ES384 per call).",
        "",
        "## 1. In-process cost against prefetch size (ms per call)",
        "",
        "| service | Observations | body KiB | runs | median | p95 | decode | rules | cards | encode |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    # The service runs with gc.freeze() and a raised young-generation threshold (settings): measure the same.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20000, 50, 100)
    in_process = []
    for service in ("mas-screen", "anakinra-dose"):
        for size in sizes:
            row = inprocess.measure(service, size, min_seconds=0.5 if args.quick else 2.0)
            in_process.append(row)
            out.append(
                f"| {service} | {size:,} | {row['body_kib']:,} | {row['runs']} | {row['median_ms']:.2f} | "
                f"{row['p95_ms']:.2f} | {row['decode_ms']:.2f} | {row['rules_ms']:.2f} | "
                f"{row['cards_ms']:.2f} | {row['encode_ms']:.2f} |"
            )
            print(out[-1], flush=True)
    folder = Path(tempfile.mkdtemp(prefix="cds-bench-bodies-"))
    (folder / "patient-view.json").write_bytes(orjson.dumps(patient_view(100)))
    (folder / "order-select.json").write_bytes(orjson.dumps(order_select(100)))
    bodies = {
        "patient-view, 100 Obs": ("mas-screen", folder / "patient-view.json"),
        "order-select, 100 Obs": ("anakinra-dose", folder / "order-select.json"),
    }
    out += [
        "",
        "## 2. HTTP, uvicorn, wrk closed loop on 127.0.0.1 (service vs decode-only baseline, same server)",
        "",
        "| workload | workers | conns | req/s | p50 ms | p95 ms | p99 ms | baseline req/s | baseline p99 ms | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    http_rows = []
    for workers in (1, 2):
        for row in http.throughput(
            bodies, workers=workers, database_url=database, seconds=seconds, connections=(1, 16)
        ):
            http_rows.append(row)
            s, b = row["service"], row["baseline"]
            out.append(
                f"| {row['workload']} | {workers} | {row['connections']} | {s['rps']:,.0f} | "
                f"{s['p50_us'] / 1000:.1f} | {s['p95_us'] / 1000:.1f} | {s['p99_us'] / 1000:.1f} | "
                f"{b['rps']:,.0f} | {b['p99_us'] / 1000:.1f} | {row['ratio']:.2f} |"
            )
            print(out[-1], flush=True)
            if s["errors"] or s["non2xx"]:
                out.append(f"|  | errors: {s['errors']}, non-2xx: {s['non2xx']} | | | | | | | | |")
    production = http.production_python()
    cold = http.cold_start(database, runs=3 if args.quick else 7, python=production)
    cold_dev = http.cold_start(database, runs=3, python=sys.executable)
    memory = http.memory_under_load(
        folder / "patient-view.json", "mas-screen", database_url=database, workers=2, seconds=memory_seconds
    )
    peak_mib = max(memory["peak_kib"].values()) / 1024
    growth = ", ".join(
        f"{(memory['rss_end_kib'][pid] - memory['rss_start_kib'][pid]) / 1024:+.1f} MiB"
        for pid in memory["rss_start_kib"]
    )
    peaks = ", ".join(f"{value / 1024:.0f} MiB" for value in memory["peak_kib"].values())
    out += [
        "",
        "## 3. Cold start",
        "",
        f"Process start to first answered `GET /cds-services` (uvicorn, 1 worker, runtime dependencies only, "
        f"as deployed): median {cold['median_s']:.2f} s, max {cold['max_s']:.2f} s. In the development venv, whose "
        f"extras (e.g. rich) structlog and httpx import too: median {cold_dev['median_s']:.2f} s.",
        "",
        "## 4. Worker memory (2 workers, 16 connections, patient-view)",
        "",
        f"Peak RSS per worker: {peaks}. RSS growth over a {memory_seconds} s run ({memory['requests']:,} requests) "
        f"after a 5 s warm-up: {growth}.",
    ]
    mas_100_2w_16 = next(
        r
        for r in http_rows
        if r["workload"].startswith("patient-view") and r["workers"] == 2 and r["connections"] == 16
    )
    mas_10k = next((r for r in in_process if r["service"] == "mas-screen" and r["observations"] == 10000), None)
    checks = [
        (
            "MAS screen throughput ≥ 0.5× decode-only (100 Obs, 2 workers, 16 conns)",
            f"{mas_100_2w_16['ratio']:.2f}×",
            mas_100_2w_16["ratio"] >= TARGETS["ratio"],
        ),
        (
            "MAS screen p99 < 50 ms (16 conns, 2 workers)",
            f"{mas_100_2w_16['service']['p99_us'] / 1000:.1f} ms",
            mas_100_2w_16["service"]["p99_us"] / 1000 < TARGETS["p99_ms"],
        ),
        (
            "10,000 Observations < 250 ms in-process",
            f"{mas_10k['median_ms']:.0f} ms" if mas_10k else "not run (--quick)",
            None if mas_10k is None else mas_10k["median_ms"] < TARGETS["in_process_10k_ms"],
        ),
        ("Cold start < 1 s", f"{cold['median_s']:.2f} s", cold["median_s"] < TARGETS["cold_start_s"]),
        (
            "No worker memory growth (< 5 MiB) over the long run",
            f"{memory['growth_kib'] / 1024:+.1f} MiB",
            memory["growth_kib"] < 5 * 1024,
        ),
        ("Peak worker memory", f"{peak_mib:.0f} MiB", True),
    ]
    out += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    out += [f"| {name} | {value} | {'—' if ok is None else 'yes' if ok else '**no**'} |" for name, value, ok in checks]
    report = "\n".join(out) + "\n"
    RESULTS.write_text(report, encoding="utf-8")
    update_readme(report)
    print(report)


def update_readme(report: str) -> None:
    """Put this run's report between the README's bench markers, so its figures are always a real run's."""
    readme = RESULTS.parent.parent / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start in text and end in text:
        body = report.split("\n", 2)[2].replace("\n## ", "\n#### ")  # drop the title; nest the headings
        head = report.split("\n", 1)[0].removeprefix("# ")
        block = f"{start}\n_{head}; `make bench` rewrote this block._\n\n{body.strip()}\n{end}"
        readme.write_text(text[: text.index(start)] + block + text[text.index(end) + len(end) :], encoding="utf-8")


if __name__ == "__main__":
    main()
