"""Valgrind callgrind as a deterministic instruction counter (this machine's `perf stat` has no hardware
counters, and wall-clock figures on a shared 2-core machine move by tens of percent between runs).

A running process under callgrind is asked to write its counts with `callgrind_control --dump=NAME PID`;
each dump holds the instructions executed since the previous one (a dump also zeroes the counters), in all
threads of the process. The process may dump itself (it is interrupted while it waits for the command).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

VALGRIND = ("valgrind", "--tool=callgrind", "-q")


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


def command(out_dir: Path, argv: Sequence[str], *, separate_threads: bool = False) -> list[str]:
    """`argv` under callgrind, writing one file per dump (and thread) into `out_dir`."""
    threads = ["--separate-threads=yes"] if separate_threads else []
    return [*VALGRIND, *threads, f"--callgrind-out-file={out_dir}/callgrind.out.%p", *argv]


@dataclass(frozen=True)
class Dump:
    name: str
    paths: tuple[Path, ...]  # one file per thread with --separate-threads=yes (main thread first), else one
    per_thread: tuple[int, ...]

    @property
    def instructions(self) -> int:
        return sum(self.per_thread)

    @property
    def path(self) -> Path:
        return self.paths[0]


def dump(pid: int, out_dir: Path, name: str, timeout: float = 120.0) -> Dump:
    """Ask process `pid` for a dump named `name` (unique) and return its instruction counts."""
    subprocess.run(  # noqa: S603 (fixed command line)
        ["callgrind_control", f"--dump={name}", str(pid)],  # noqa: S607
        check=True,
        capture_output=True,
        timeout=timeout,
    )
    deadline = time.monotonic() + timeout
    trigger = f"desc: Trigger: dump {name}\n"
    settled = False
    while time.monotonic() < deadline:
        found = sorted(
            ((path, _summary(path)) for path in out_dir.glob(f"callgrind.out.{pid}.*") if trigger in _head(path)),
            key=lambda item: _thread_number(item[0]),
        )
        if found and all(count is not None for _, count in found):
            if settled:
                return Dump(name, tuple(path for path, _ in found), tuple(count or 0 for _, count in found))
            settled = True  # one more look: with one file per thread, they are written one after another
            time.sleep(0.2)
            continue
        time.sleep(0.05)
    raise TimeoutError(f"callgrind dump {name!r} of {pid} did not appear")


def _summary(path: Path) -> int | None:
    head = _head(path)
    return int(head.split("\nsummary: ", 1)[1].split()[0]) if "\nsummary: " in head else None


def _thread_number(path: Path) -> int:
    """callgrind.out.PID.PART-TID with --separate-threads=yes (TID 1 is the main thread), else 1."""
    tail = path.name.rsplit(".", 1)[-1]
    return int(tail.split("-", 1)[1]) if "-" in tail else 1


def _head(path: Path) -> str:
    with path.open("rb") as file:
        return file.read(4096).decode(errors="replace")


def dump_self(name: str) -> int:
    """From inside a process running under callgrind: dump this process's counts, return the total."""
    out_dir = Path(os.environ["CALLGRIND_OUT_DIR"])
    return dump(os.getpid(), out_dir, name).instructions


@dataclass(frozen=True)
class FunctionCost:
    obj: str
    function: str
    instructions: int  # exclusive: executed in this function's own code


_NAME = re.compile(r"^\((\d+)\)(?: (.*))?$")


def exclusive_costs(path: Path) -> list[FunctionCost]:
    """Exclusive instruction counts per (object file, function) of one dump, largest first."""
    names: dict[tuple[str, str], str] = {}

    def resolve(kind: str, value: str) -> str:
        match = _NAME.match(value.strip())
        if match is None:
            return value.strip()
        number, text = match.groups()
        if text is not None:
            names[(kind, number)] = text
            return text
        return names.get((kind, number), f"({number})")

    totals: dict[tuple[str, str], int] = defaultdict(int)
    obj = function = ""
    skip_next_cost = False
    with path.open(encoding="utf-8", errors="replace") as file:
        for raw in file:
            line = raw.rstrip("\n")
            if not line or line[0] == "#":
                continue
            head, _, value = line.partition("=")
            if value and head in {"ob", "fn", "cob", "cfn", "cfi", "cfl", "fl", "fi", "fe", "calls"}:
                if head == "ob":
                    obj = resolve("ob", value)
                elif head == "fn":
                    function = resolve("fn", value)
                elif head == "cob":
                    resolve("ob", value)
                elif head == "cfn":
                    resolve("fn", value)
                elif head == "calls":
                    skip_next_cost = True  # the next cost line is the call's inclusive cost
                continue
            if line[0].isdigit() or line[0] in "+-*":
                if skip_next_cost:
                    skip_next_cost = False
                    continue
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    totals[(obj, function)] += int(parts[1])
    costs = [FunctionCost(o, f, n) for (o, f), n in totals.items()]
    return sorted(costs, key=lambda c: c.instructions, reverse=True)
