"""`make bench`: the benchmark suite. Prints a markdown report and writes it to bench/results.md.

1. In-process cost of the MAS screen and the dose check against prefetch size (10 to 10,000 Observations),
   split into decode / service / encode (median and p95 of repeated runs).
2. Instructions per HTTP request (valgrind callgrind, whole server process): the services and the
   decode-only endpoint in the same process, at 10, 100 and 1,000 Observations; fixed cost per call and
   cost per Observation. Deterministic: the figures to compare changes by.
3. HTTP throughput and latency (p50/p95/p99) of patient-view and order-select at 1 and 16 connections,
   uvicorn with 1 and 2 workers, wrk on 127.0.0.1, with the decode-only baseline on the same server;
   medians of alternating rounds.
4. Cold start: process start to the first answered discovery call, on one core, runtime dependencies only.
5. Worker memory under the 16-connection load: peak, and growth over a long run.

Options: --quick (short runs, for a smoke test), --instructions (section 2 only: rewrites that part of
bench/results.md and of the README), --no-instructions, --seconds N (one HTTP round), --rounds N,
--memory-seconds N, --database-url URL.
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
from typing import Any

import orjson

from bench import callgrind, inprocess
from bench import http_load as http
from bench import instructions as instr
from bench.workloads import order_select, patient_view

RESULTS = Path(__file__).resolve().parent / "results.md"
README = RESULTS.parent.parent / "README.md"
BLOCK = ("<!-- bench:start -->", "<!-- bench:end -->")
INSTRUCTIONS_BLOCK = ("<!-- bench-instructions:start -->", "<!-- bench-instructions:end -->")
# Targets (issue 15). Ratios are decode-only / service, at 100 Observations.
INSTRUCTION_RATIO = {"mas-screen": 0.5, "anakinra-dose": 0.6}  # instructions per HTTP request
THROUGHPUT_RATIO = {"mas-screen": 0.5, "anakinra-dose": 0.6}  # req/s, 1 process, 16 connections
FIXED_ABOVE_BASELINE = 2e6  # instructions per call above decode-only
PER_OBSERVATION_ABOVE_BASELINE = 25e3  # instructions per Observation above decode-only
P99_MS = 50.0  # at 16 connections, 2 workers
IN_PROCESS_10K_MS = 100.0
COLD_START_S = 1.0
WORKLOADS = {"mas-screen": "patient-view, 100 Obs", "anakinra-dose": "order-select, 100 Obs"}


def machine(with_wrk: bool = True) -> str:
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
    text = f"{os.cpu_count()} vCPU ({cpu}), {memory} GiB RAM, Linux {platform.release()}, CPython "
    text += platform.python_version()
    if with_wrk:
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split()[1]  # noqa: S607
        text += f", wrk {wrk}"
    return text + "; shared with other work"


def load() -> str:
    """The machine's load when a wall-clock section starts: other work on the shared cores moves its figures."""
    one, five, _ = os.getloadavg()
    return f"Load average when this section started: {one:.1f} (1 min), {five:.1f} (5 min), on {os.cpu_count()} cores."


def yes_no(ok: bool | None) -> str:
    return "—" if ok is None else "yes" if ok else "**no**"


def instruction_section(database: str, progress: Any = print) -> list[str]:
    rows, idle, startup = instr.measure(http.production_python(), database, progress=progress)
    label = "PostgreSQL" if database.startswith("postgresql") else "SQLite"
    out = [
        "## 2. Instructions per HTTP request (callgrind, deterministic)",
        "",
        INSTRUCTIONS_BLOCK[0],
        f"_Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; CPython {platform.python_version()}._",
        "",
        *instr.markdown(rows, idle, label),
        "",
        instr.startup_markdown(startup),
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    summaries = {s.service: s for s in instr.summarise(rows)}
    for service, target in INSTRUCTION_RATIO.items():
        base = instr.per_call(rows, f"decode-only/{service}", 100)
        own = instr.per_call(rows, service, 100)
        if base is not None and own is not None:
            out.append(
                f"| {service} ≥ {target}× decode-only (100 Obs) | {base / own:.2f}× | {yes_no(base / own >= target)} |"
            )
    for service, s in summaries.items():
        fixed_ok = s.fixed_above_baseline <= FIXED_ABOVE_BASELINE
        slope_ok = s.per_observation_above_baseline <= PER_OBSERVATION_ABOVE_BASELINE
        out.append(
            f"| {service}: fixed cost ≤ 2 M above decode-only | {s.fixed_above_baseline / 1e6:.2f} M "
            f"| {yes_no(fixed_ok)} |"
        )
        out.append(
            f"| {service}: ≤ 25 K per Observation above decode-only | "
            f"{s.per_observation_above_baseline / 1e3:.1f} K | {yes_no(slope_ok)} |"
        )
    out.append(INSTRUCTIONS_BLOCK[1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--instructions", action="store_true", help="only the callgrind section")
    parser.add_argument("--no-instructions", action="store_true")
    parser.add_argument("--seconds", type=int, default=2, help="length of one HTTP round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--memory-seconds", type=int, default=60)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file (as `make run`)")
    args = parser.parse_args()
    database = args.database_url or http.temp_sqlite()
    if args.instructions:
        section = instruction_section(http.temp_sqlite())
        replace_instructions(RESULTS, section)
        replace_instructions(README, section)
        print("\n".join(section))
        return
    run_all(args, database)


def run_all(args: argparse.Namespace, database: str) -> None:
    seconds = 1 if args.quick else args.seconds
    rounds = 2 if args.quick else args.rounds
    memory_seconds = 5 if args.quick else args.memory_seconds
    sizes = (10, 100, 1000) if args.quick else (10, 100, 1000, 10000)
    out: list[str] = [
        f"# Benchmarks — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}. Database: {'PostgreSQL' if database.startswith('postgresql') else 'SQLite (WAL)'}"
        " audit log. Sandbox mode (no JWT: verification adds ~0.2 ms RS384 / ~0.9 ms ES384 per call).",
        "",
        "## 1. In-process cost against prefetch size (ms per call)",
        "",
        "Decode (envelope and prefetch), service (the registered handler: facts, rules, cards), encode "
        f"(response JSON); no HTTP, audit, log or metrics. {load()}",
        "",
        "| service | Observations | body KiB | runs | median | p95 | decode | service | encode |",
        "|---|---|---|---|---|---|---|---|---|",
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
                f"{row['p95_ms']:.2f} | {row['decode_ms']:.2f} | {row['service_ms']:.2f} | {row['encode_ms']:.2f} |"
            )
            print(out[-1], flush=True)
    out.append("")
    if args.no_instructions or not callgrind.available():
        out += ["## 2. Instructions per HTTP request (callgrind, deterministic)", "", INSTRUCTIONS_BLOCK[0]]
        out += ["Not run (valgrind missing or --no-instructions).", INSTRUCTIONS_BLOCK[1]]
    else:
        out += instruction_section(http.temp_sqlite())  # in-process SQLite: the database work is counted too
    folder = Path(tempfile.mkdtemp(prefix="cds-bench-bodies-"))
    (folder / "patient-view.json").write_bytes(orjson.dumps(patient_view(100)))
    (folder / "order-select.json").write_bytes(orjson.dumps(order_select(100)))
    bodies = {
        WORKLOADS["mas-screen"]: ("mas-screen", folder / "patient-view.json"),
        WORKLOADS["anakinra-dose"]: ("anakinra-dose", folder / "order-select.json"),
    }
    out += [
        "",
        "## 3. HTTP, uvicorn, wrk closed loop on 127.0.0.1 (service vs decode-only baseline, same server)",
        "",
        f"Medians of {rounds} alternating rounds of {seconds} s. One worker: the server on core 0, wrk on core 1. "
        f"Two workers: server and wrk share both cores. {load()}",
        "",
        "| workload | workers | conns | req/s | p50 ms | p95 ms | p99 ms | baseline req/s | baseline p99 ms | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    http_rows: list[dict[str, Any]] = []
    for workers in (1, 2):
        for row in http.throughput(
            bodies, workers=workers, database_url=database, seconds=seconds, connections=(1, 16), rounds=rounds
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
    cold_load = load()
    cold = http.cold_start(database, runs=3 if args.quick else 9, python=http.production_python())
    memory = http.memory_under_load(
        folder / "patient-view.json", "mas-screen", database_url=database, workers=2, seconds=memory_seconds
    )
    growth = ", ".join(
        f"{(memory['rss_end_kib'][pid] - memory['rss_start_kib'][pid]) / 1024:+.1f} MiB"
        for pid in memory["rss_start_kib"]
    )
    peaks = ", ".join(f"{value / 1024:.0f} MiB" for value in memory["peak_kib"].values())
    out += [
        "",
        "## 4. Cold start",
        "",
        f"Process start to first answered `GET /cds-services` (uvicorn, 1 worker confined to one core, runtime "
        f"dependencies only, as deployed), {cold['runs']} runs: median {cold['median_s']:.2f} s "
        f"(min {cold['min_s']:.2f}, max {cold['max_s']:.2f}); CPU time used by then: median "
        f"{cold['cpu_median_s']:.2f} s. {cold_load}",
        "",
        "## 5. Worker memory (2 workers, 16 connections, patient-view)",
        "",
        f"Peak RSS per worker: {peaks}. RSS growth over a {memory_seconds} s run ({memory['requests']:,} requests) "
        f"after a 5 s warm-up: {growth}.",
    ]
    out += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    out += [f"| {name} | {value} | {yes_no(ok)} |" for name, value, ok in checks(http_rows, in_process, cold, memory)]
    report = "\n".join(out) + "\n"
    RESULTS.write_text(report, encoding="utf-8")
    update_readme(report)
    print(report)


def checks(
    http_rows: list[dict[str, Any]], in_process: list[dict[str, Any]], cold: dict[str, Any], memory: dict[str, Any]
) -> list[tuple[str, str, bool | None]]:
    def row(service: str, workers: int, connections: int) -> dict[str, Any]:
        return next(
            r
            for r in http_rows
            if r["workload"] == WORKLOADS[service] and r["workers"] == workers and r["connections"] == connections
        )

    result: list[tuple[str, str, bool | None]] = []
    for service, target in THROUGHPUT_RATIO.items():
        one = row(service, 1, 16)
        result.append(
            (
                f"{service} req/s ≥ {target}× decode-only (100 Obs, 1 process, 16 conns)",
                f"{one['ratio']:.2f}×",
                one["ratio"] >= target,
            )
        )
    for service in THROUGHPUT_RATIO:
        two = row(service, 2, 16)
        p99 = two["service"]["p99_us"] / 1000
        result.append((f"{service} p99 < 50 ms (16 conns, 2 workers)", f"{p99:.1f} ms", p99 < P99_MS))
    for service in THROUGHPUT_RATIO:
        big = next((r for r in in_process if r["service"] == service and r["observations"] == 10000), None)
        result.append(
            (
                f"{service}: 10,000 Observations < 100 ms in-process",
                f"{big['median_ms']:.0f} ms" if big else "not run (--quick)",
                None if big is None else big["median_ms"] < IN_PROCESS_10K_MS,
            )
        )
    result += [
        (
            "Cold start < 1 s (median, one core)",
            f"{cold['median_s']:.2f} s",
            cold["median_s"] < COLD_START_S,
        ),
        (
            "No worker memory growth (< 5 MiB) over the long run",
            f"{memory['growth_kib'] / 1024:+.1f} MiB",
            memory["growth_kib"] < 5 * 1024,
        ),
        ("Peak worker memory", f"{max(memory['peak_kib'].values()) / 1024:.0f} MiB", True),
    ]
    return result


def replace_instructions(path: Path, section: list[str]) -> None:
    """Rewrite only the callgrind part of a file written by a full run (the rest keeps its own run's figures)."""
    text = path.read_text(encoding="utf-8")
    start, end = INSTRUCTIONS_BLOCK
    if start not in text or end not in text:
        sys.exit(f"{path.name} has no instruction block yet: run the full `make bench` once")
    block = "\n".join(section[section.index(start) : section.index(end) + 1])
    path.write_text(text[: text.index(start)] + block + text[text.index(end) + len(end) :], encoding="utf-8")


def update_readme(report: str) -> None:
    """Put this run's report between the README's bench markers, so its figures are always a real run's."""
    text = README.read_text(encoding="utf-8")
    start, end = BLOCK
    if start in text and end in text:
        body = report.split("\n", 2)[2].replace("\n## ", "\n#### ")  # drop the title; nest the headings
        head = report.split("\n", 1)[0].removeprefix("# ")
        block = f"{start}\n_{head}; `make bench` rewrote this block._\n\n{body.strip()}\n{end}"
        README.write_text(text[: text.index(start)] + block + text[text.index(end) + len(end) :], encoding="utf-8")


if __name__ == "__main__":
    main()
