"""Population screening benchmark (a script, not a test): end-to-end `cds-service screen` on generated NDJSON.

    python -m bench.population [--patients 100000] [--observations 100] [--small 25000] [--dask-patients 25000]

Measures, each in a fresh process tree: wall time and peak memory (sum of the RSS of the screen process and
all its workers, sampled every 0.1 s) for the embedded engine at two sizes (cost per Observation: linear?);
the Dask engine with 1 and 2 local workers on the same data (speed-up); the time of each step. Data is
generated once under var/population-bench/. Writes bench/population_results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "var" / "population-bench"
ANCHOR = "2026-01-01T12:00:00+00:00"
RESULTS = ROOT / "bench" / "population_results.md"


@dataclass
class Run:
    label: str
    observations: int
    seconds: float
    cpu_seconds: float  # user + system of the screen process and its workers
    peak_mib: float
    steps: str
    cards: str
    load: float  # 1-minute load average at the end (the machine is shared)
    worker_cpu: float  # CPU inside the tasks (parallel part)
    main_cpu: float  # CPU of the coordinating process (serial part)


def dataset(patients: int, observations: int) -> Path:
    folder = DATA / f"p{patients}-o{observations}"
    if not (folder / ".complete").exists():
        print(f"generating {patients:,} patients × {observations} Observations in {folder} ...", flush=True)
        subprocess.run(  # noqa: S603 (our own interpreter and module, fixed arguments)
            [
                sys.executable,
                "-m",
                "cds_service.population.generate",
                str(folder),
                "--patients",
                str(patients),
                "--observations",
                str(observations),
                "--anchor",
                ANCHOR,
                "--files-per-type",
                "4",
                "--seed",
                "1",
            ],
            check=True,
            cwd=ROOT,
        )
        (folder / ".complete").touch()
    return folder


def _tree_rss_kib(root: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        ppid = int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        rss[int(entry)] = int(found.group(1)) if found else 0
        children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def screen(label: str, folder: Path, observations: int, *extra: str) -> Run:
    out = DATA / "out" / label.replace(" ", "-")
    command = [
        sys.executable,
        "-m",
        "cds_service.cli",
        "screen",
        str(folder),
        "--out",
        str(out),
        "--as-of",
        ANCHOR,
        *extra,
    ]
    peak = 0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss_kib(process.pid))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{label} failed:\n{stderr[-2000:]}")
    found = re.findall(r"^(\w+): done, [^\n]*? in ([\d.]+ s)", stderr, re.M)
    steps = "; ".join(f"{name} {took}" for name, took in found)
    cards = stdout.strip().split(";")[0]
    timings = json.loads((out / "summary.json").read_text())["seconds"]
    run = Run(
        label,
        observations,
        seconds,
        cpu,
        peak / 1024,
        steps,
        cards,
        os.getloadavg()[0],
        timings["worker_cpu"],
        timings["main_cpu"],
    )
    load = os.getloadavg()[0]
    print(
        f"{label}: {seconds:.1f} s, CPU {cpu:.1f} s, load {load:.1f}, peak {run.peak_mib:.0f} MiB ({steps})", flush=True
    )
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--observations", type=int, default=100)
    parser.add_argument("--small", type=int, default=25_000, help="patients of the smaller run (linearity)")
    parser.add_argument("--dask-patients", type=int, default=100_000)
    args = parser.parse_args()
    big = dataset(args.patients, args.observations)
    small = dataset(args.small, args.observations)
    runs = [
        screen(f"embedded {args.small:,} patients", small, args.small * args.observations),
        screen(f"embedded {args.patients:,} patients", big, args.patients * args.observations),
    ]
    dask_data = dataset(args.dask_patients, args.observations)
    dask = [
        screen(
            f"dask 1 worker {args.dask_patients:,}",
            dask_data,
            args.dask_patients * args.observations,
            "--engine",
            "dask",
            "--workers",
            "1",
        ),
        screen(
            f"dask 2 workers {args.dask_patients:,}",
            dask_data,
            args.dask_patients * args.observations,
            "--engine",
            "dask",
            "--workers",
            "2",
        ),
    ]
    lines = [
        "# Population screening benchmark",
        "",
        f"`python -m bench.population` on {os.cpu_count()} cores (shared machine; figures vary with other load).",
        "",
        "| run | Observations | wall s | CPU s (all processes) | cores used (CPU/wall) | load avg "
        "| CPU µs per Observation | peak MiB (all processes) | steps (wall) | result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in [*runs, *dask]:
        lines.append(
            f"| {run.label} | {run.observations:,} | {run.seconds:.1f} | {run.cpu_seconds:.1f} "
            f"| {run.cpu_seconds / run.seconds:.2f} | {run.load:.1f} "
            f"| {run.cpu_seconds / run.observations * 1e6:.2f} | {run.peak_mib:.0f} | {run.steps} | {run.cards} |"
        )
    per_small = runs[0].cpu_seconds / runs[0].observations
    per_big = runs[1].cpu_seconds / runs[1].observations
    speedup = dask[0].seconds / dask[1].seconds
    one = dask[0]
    # What two otherwise idle cores would give: the serial part (coordination) plus the tasks' CPU halved.
    ideal = (one.main_cpu + one.worker_cpu) / (one.main_cpu + one.worker_cpu / 2)
    lines += [
        "",
        "| target | measured | met |",
        "|---|---|---|",
        f"| 10 M Observations end to end < 60 s (embedded) | {runs[1].seconds:.1f} s for {runs[1].observations:,} "
        f"| {'yes' if runs[1].seconds < 60 and runs[1].observations >= 10_000_000 else 'no'} |",
        f"| peak memory < 1 GiB | {runs[1].peak_mib:.0f} MiB | {'yes' if runs[1].peak_mib < 1024 else 'no'} |",
        f"| cost linear in Observations | {per_small * 1e6:.2f} vs {per_big * 1e6:.2f} CPU µs per Observation "
        f"({args.small:,} vs {args.patients:,} patients) | {'yes' if per_big <= per_small * 1.25 else 'no'} |",
        f"| Dask 2 workers ≥ 1.7× 1 worker | {speedup:.2f}× measured (load {dask[1].load:.1f}); {ideal:.2f}× "
        f"estimated for idle cores from the 1-worker run (tasks {one.worker_cpu:.1f} CPU s, coordination "
        f"{one.main_cpu:.1f} CPU s) | {'yes' if speedup >= 1.7 else 'no'} |",
    ]
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
