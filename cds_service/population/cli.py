"""`cds-service screen SOURCE --out DIR [--as-of TIME | START..END --step 1d] [--engine local|dask]`.

SOURCE is a folder of Bulk Data NDJSON files, or a FHIR server base URL whose `$export` is run first
(`cds_service.population.bulk_client`). Exit 0 when the outputs are written, 2 on a usage or source error.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from cds_service.population.progress import Progress
from cds_service.population.source import SourceError
from cds_service.settings import Settings

MAX_TIMES = 10_000
_STEP = re.compile(r"^(?:(\d+)\s*([mhd])|P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?)$", re.IGNORECASE)


class UsageError(ValueError):
    pass


def parse_time(text: str, *, now: datetime) -> datetime:
    if text.strip().lower() == "now":
        return now
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as error:
        raise UsageError(f"not an ISO 8601 time: {text!r}") from error
    if moment.tzinfo is None:
        raise UsageError(f"{text!r} has no time zone (write Z or an offset such as +01:00): it is not guessed")
    return moment.astimezone(UTC)


def parse_step(text: str) -> timedelta:
    match = _STEP.match(text.strip())
    if not match or not any(match.groups()):
        raise UsageError(f"not a step: {text!r} (e.g. 1d, 6h, 30m, P1D, PT12H)")
    number, unit, days, hours, minutes = match.groups()
    if number:
        step = timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit.lower()]: int(number)})
    else:
        step = timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0))
    if step <= timedelta(0):
        raise UsageError("the step must be positive")
    return step


def parse_as_of(text: str | None, step: str | None, *, now: datetime) -> list[datetime]:
    """One time, or every time from START to END inclusive by STEP (START..END or START/END)."""
    if text is None:
        return [now]
    for separator in ("..", "/"):
        if separator in text:
            first, _, last = text.partition(separator)
            start, end = parse_time(first, now=now), parse_time(last, now=now)
            if end < start:
                raise UsageError("the range ends before it starts")
            interval = parse_step(step or "1d")
            count = int((end - start) / interval) + 1
            if count > MAX_TIMES:
                raise UsageError(f"{count:,} times in the range: at most {MAX_TIMES:,}")
            return [start + i * interval for i in range(count)]
    if step is not None:
        raise UsageError("--step needs a range: --as-of START..END")
    return [parse_time(text, now=now)]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    screen = commands.add_parser(
        "screen",
        help="run the MAS rules over a Bulk Data export (folder or FHIR server): worklist and alert-burden report",
    )
    screen.add_argument("source", help="folder of .ndjson/.ndjson.gz files, or a FHIR base URL ($export is run)")
    screen.add_argument("--out", required=True, type=Path, help="folder for worklist.csv, worklist.json, report.html")
    screen.add_argument("--as-of", help="TIME, or START..END with --step (default: now)")
    screen.add_argument("--step", help="step of an --as-of range: 1d, 6h, 30m, P1D (default 1d)")
    screen.add_argument("--engine", choices=("local", "dask"), default="local")
    screen.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    screen.add_argument("--scheduler", help="dask: address of a running scheduler (default: a local cluster)")
    screen.add_argument("--no-prefilter", action="store_true", help="evaluate every patient in full")
    screen.add_argument("--quiet", action="store_true", help="no progress output")
    export = screen.add_argument_group("Bulk Data $export (SOURCE is a URL)")
    export.add_argument("--group", help="Group id: Group/[id]/$export instead of Patient/$export")
    export.add_argument("--client-id", help="SMART Backend Services client id (with --private-key)")
    export.add_argument("--private-key", type=Path, help="PEM private key (RS384 or ES384) for the client assertion")
    export.add_argument("--key-id", help="kid of the key in the client's registered JWKS")
    export.add_argument("--token-url", help="token endpoint (default: from .well-known/smart-configuration)")
    export.add_argument(
        "--scope",
        default="system/Patient.read system/Observation.read system/Condition.read system/MedicationRequest.read",
    )
    export.add_argument("--download-dir", type=Path, help="keep the downloaded NDJSON here (default: a temp folder)")
    export.add_argument("--since", help="_since for the export (ISO time)")
    export.add_argument("--timeout", type=float, default=3600.0, help="give up on the export after this many seconds")


def command_screen(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    # Imported here: `cds-service serve` and the other commands need none of the screening machinery.
    from cds_service.evaluation.mas import load_rules
    from cds_service.population.engine import screen
    from cds_service.population.outputs import write_outputs

    settings = Settings()
    rules = load_rules(settings)
    now = datetime.now(UTC)
    try:
        as_of = parse_as_of(args.as_of, args.step, now=now)
    except UsageError as error:
        print(f"screen: {error}", file=sys.stderr)
        return 2
    progress = Progress(enabled=not args.quiet)
    source = str(args.source)
    temporary: tempfile.TemporaryDirectory[str] | None = None
    try:
        if re.match(r"^https?://", source):
            from cds_service.population.bulk_client import BulkExportError, run_export_from_args
            from cds_service.population.codes import export_request

            folder = args.download_dir or Path((temporary := tempfile.TemporaryDirectory(prefix="bulk-")).name)
            try:
                run_export_from_args(args, folder, progress, export_request(rules.pack))
            except BulkExportError as error:
                print(f"screen: {error}", file=sys.stderr)
                return 2
        else:
            folder = Path(source)
        started = time.perf_counter()
        engine_name = args.engine
        with _engine(args) as engine:
            try:
                outcome = screen(
                    folder,
                    as_of=as_of,
                    rules=rules,
                    engine=engine,
                    progress=progress,
                    prefilter=not args.no_prefilter,
                )
            except SourceError as error:
                print(f"screen: {error}", file=sys.stderr)
                return 2
            engine_name = engine.description()
        paths = write_outputs(outcome, args.out, source=source, engine=engine_name)
    finally:
        if temporary is not None:
            temporary.cleanup()
    cards = sum(1 for rows in outcome.cards for index, _ in rows.rows if index == len(as_of) - 1)
    print(
        f"{outcome.patients:,} patients screened, {cards:,} would get a card "
        f"({time.perf_counter() - started:.1f} s); wrote {', '.join(str(p) for p in paths.values())}",
        file=out,
    )
    return 0


def _engine(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    if args.engine == "dask":
        from cds_service.population.dask_engine import DaskEngine

        return DaskEngine(workers=args.workers, scheduler=args.scheduler)
    from cds_service.population.engine import LocalEngine

    return LocalEngine(args.workers)
