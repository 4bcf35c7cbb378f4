"""`cds-service`: serve, run the fixture FHIR server, list fixtures, fire a hook at a fixture and check every case.

    cds-service serve [--host H] [--port P] [--sandbox]
    cds-service fhir-server [--port 8081]
    cds-service fixtures
    cds-service fire PATIENT [--hook H] [--order ORDER] [--url URL] [--no-prefetch --fhir-server URL] [--brief]
    cds-service fire --case CASE
    cds-service check [--url URL]
    cds-service screen SOURCE --out DIR [--as-of TIME | START..END --step 1d] [--engine local|dask]
    cds-service rules [--format markdown|json] [--out FILE] [--schema]

`fire` exits 0 when the cards match the fixture case's expectation (or, with no case, when the call
answered 200), 1 when they do not, 2 on a usage, configuration or transport error. `check` fires every
case. `rules` prints the rule book of the rule pack the settings select (CDS_RULE_PACK_DIR,
CDS_RULE_PACK_OVERRIDES), so a site reads its own overrides. Errors are one line on stderr, never a
traceback; cards and results go to stdout, and the in-process service logs only errors, so the output is
not interleaved with JSON log lines.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

import httpx

from cds_service.data_paths import data_dir
from cds_service.population import cli as population_cli
from cds_service.registry import Registry, load_registry
from cds_service.sandbox.fixtures import FixtureCase, build_request, load_cases, load_order, load_patients
from cds_service.settings import Settings
from cds_service.startup import EXIT_STATUS, SETTINGS_ERRORS, StartupError, describe

SERVICE_FOR_HOOK = {"patient-view": "mas-screen", "order-select": "anakinra-dose", "order-sign": "anakinra-dose"}
COLOURS = {"critical": "\033[1;31m", "warning": "\033[1;33m", "info": "\033[1;34m"}
RESET = "\033[0m"


class CliError(Exception):
    """A usage, configuration or transport error: one line on stderr, exit status 2."""


@dataclass(frozen=True)
class Outcome:
    status: int
    body: Any


class Caller:
    """Sends hook requests in-process (the app itself) or to a running service at a URL."""

    def __init__(self, url: str | None) -> None:
        self.url = url.rstrip("/") if url else None
        self._client: Any = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Caller:
        if self.url is None:
            # In-process calls go through Starlette's test client, which warns about its httpx backend.
            warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
            from fastapi.testclient import TestClient

            from cds_service.app import create_app

            self._tmp = tempfile.TemporaryDirectory()
            try:
                settings = Settings(
                    sandbox=True, database_url=f"sqlite:///{Path(self._tmp.name) / 'cli.sqlite3'}", gc_freeze=False
                )
                app = create_app(settings, log_level=logging.ERROR)
            except (StartupError, *SETTINGS_ERRORS) as error:
                self._tmp.cleanup()
                raise CliError(f"cannot start the service: {describe(error)}") from error
            self._client = TestClient(app)
            self._client.__enter__()
        else:
            self._client = httpx.Client(base_url=self.url, timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.__exit__(*exc)
        if self._tmp is not None:
            self._tmp.cleanup()

    def post(self, service: str, body: dict[str, Any]) -> Outcome:
        try:
            response = self._client.post(f"/cds-services/{service}", json=body)
        except httpx.HTTPError as error:
            raise CliError(f"could not reach {self.url}: {error}") from error
        try:
            document = response.json()
        except ValueError:
            document = response.text
        return Outcome(response.status_code, document)


def _colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def render(outcome: Outcome, *, out: TextIO, brief: bool) -> None:
    colour = _colour(out)
    if outcome.status != 200:
        out.write(f"HTTP {outcome.status}\n{json.dumps(outcome.body, indent=2)}\n")
        return
    cards = outcome.body.get("cards", [])
    if not cards:
        out.write("no cards\n")
    for card in cards:
        indicator = card["indicator"]
        badge = f"{COLOURS[indicator]}[{indicator.upper()}]{RESET}" if colour else f"[{indicator.upper()}]"
        out.write(f"\n{badge} {card['summary']}\n")
        out.write(f"  source: {card['source']['label']} · topic {card['source'].get('topic', {}).get('code', '-')}\n")
        if not brief and card.get("detail"):
            out.write("\n" + "\n".join(f"  {line}" for line in card["detail"].splitlines()) + "\n")
        for suggestion in card.get("suggestions", []):
            out.write(f"\n  suggestion: {suggestion['label']}\n")
            if not brief:
                for action in suggestion["actions"]:
                    resource = json.dumps(action.get("resource"), indent=2).replace("\n", "\n      ")
                    out.write(f"    {action['type']}: {action['description']}\n      {resource}\n")
        for link in card.get("links", []):
            out.write(f"  link: {link['label']} <{link['url']}>\n")


def matches(case: FixtureCase, outcome: Outcome) -> tuple[bool, str]:
    if outcome.status != 200:
        return False, f"HTTP {outcome.status}"
    cards = outcome.body.get("cards", [])
    actual = sorted((c["source"]["topic"]["code"], c["indicator"]) for c in cards)
    expected = sorted((e.topic, e.indicator) for e in case.expected)
    if actual != expected:
        return False, f"expected {expected or 'no cards'}, got {actual or 'no cards'}"
    for expectation in case.expected:
        if expectation.summary_contains:
            card = next(c for c in cards if c["source"]["topic"]["code"] == expectation.topic)
            if expectation.summary_contains not in card["summary"]:
                return False, f"summary lacks {expectation.summary_contains!r}"
    return True, "as expected"


def _request(registry: Registry, case: FixtureCase | None, args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    patients = load_patients()
    patient_name = case.patient if case else args.patient
    hook = case.hook if case else args.hook
    order_name = case.order if case else args.order
    if patient_name not in patients:
        raise CliError(f"unknown fixture patient '{patient_name}' (see `cds-service fixtures`)")
    if hook != "patient-view" and not order_name:
        raise CliError(f"{hook} needs --order (see `cds-service fixtures`)")
    service = registry.get(SERVICE_FOR_HOOK[hook])
    if service is None:
        raise CliError(f"no service in {data_dir('hooks')} answers {hook}")
    order = _order(order_name) if order_name and hook != "patient-view" else None
    prefetch = not getattr(args, "no_prefetch", False)
    body = build_request(
        patients[patient_name],
        service,
        hook=hook,
        now=datetime.now(UTC),
        order=order,
        prefetch=prefetch,
        fhir_server=getattr(args, "fhir_server", None),
    )
    return registry.endpoint_id(service.id, hook), body


def _order(name: str) -> dict[str, Any]:
    if name not in _order_names():
        raise CliError(f"unknown draft order '{name}' (see `cds-service fixtures`)")
    return load_order(name)


def _order_names() -> list[str]:
    return sorted(path.stem for path in (data_dir("fixtures") / "orders").glob("*.json"))


def _registry() -> Registry:
    try:
        return load_registry(data_dir("hooks"))
    except StartupError as error:
        raise CliError(describe(error)) from error


def _find_case(args: argparse.Namespace, cases: Sequence[FixtureCase]) -> FixtureCase | None:
    if args.case:
        found = next((c for c in cases if c.name == args.case), None)
        if found is None:
            raise CliError(f"unknown case '{args.case}' (see `cds-service fixtures`)")
        return found
    return next(
        (
            c
            for c in cases
            if c.patient == args.patient
            and c.hook == args.hook
            and (c.order or None) == (args.order if args.hook != "patient-view" else None)
        ),
        None,
    )


def command_fire(args: argparse.Namespace, out: TextIO) -> int:
    if not args.case and not args.patient:
        raise CliError("fire needs a PATIENT or --case (see `cds-service fixtures`)")
    registry = _registry()
    case = _find_case(args, load_cases())
    service, body = _request(registry, case, args)
    with Caller(args.url) as caller:
        outcome = caller.post(service, body)
    if case:
        out.write(f"case {case.name}: {case.story}\n")
    render(outcome, out=out, brief=args.brief)
    if case is None:
        return 0 if outcome.status == 200 else 1
    ok, why = matches(case, outcome)
    out.write(f"\n{'MATCH' if ok else 'MISMATCH'}: {why}\n")
    return 0 if ok else 1


def command_check(args: argparse.Namespace, out: TextIO) -> int:
    registry = _registry()
    cases = load_cases()
    failures = 0
    with Caller(args.url) as caller:
        for case in cases:
            service, body = _request(registry, case, argparse.Namespace(no_prefetch=False, fhir_server=None))
            ok, why = matches(case, caller.post(service, body))
            failures += not ok
            out.write(f"{'ok  ' if ok else 'FAIL'} {case.name:<34} {case.hook:<13} {why}\n")
    out.write(f"{len(cases) - failures} passed, {failures} failed\n")
    return 0 if failures == 0 else 1


def command_fixtures(out: TextIO) -> int:
    cases = load_cases()
    stories = {c.patient: c.story for c in cases if c.hook == "patient-view"}
    out.write("Patients:\n")
    for name in load_patients():
        out.write(f"  {name:<40} {stories.get(name, '')}\n")
    out.write("\nDraft orders:\n")
    for name in _order_names():
        out.write(f"  {name}\n")
    out.write("\nCases:\n")
    for case in cases:
        expected = ", ".join(f"{e.topic}/{e.indicator}" for e in case.expected) or "no cards"
        out.write(f"  {case.name:<34} {case.hook:<13} -> {expected}\n")
    return 0


def command_rules(args: argparse.Namespace, out: TextIO) -> int:
    # Imported here: the other commands need neither the pack loader nor the rule book.
    from cds_service.cards.rulebook import render_json, render_markdown
    from cds_service.rulepack.loader import RulePackError
    from cds_service.rulepack.selection import pack_for

    if args.schema:
        text = _pack_schema()
    else:
        try:
            settings = Settings()
        except SETTINGS_ERRORS as error:
            raise CliError(describe(error)) from error
        try:
            pack = pack_for(settings)
        except RulePackError as error:
            # A YAML error spans several lines; the message stays one line.
            raise CliError(f"rule pack refused: {' '.join(str(error).split())}") from error
        text = render_json(pack) if args.format == "json" else render_markdown(pack)
    if args.out is None:
        out.write(text)
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot write {args.out}: {error.strerror or error}") from error
    out.write(f"wrote {args.out}\n")
    return 0


def _pack_schema() -> str:
    """The rule pack's file formats as JSON Schema (for reviewers and site tooling)."""
    from pydantic import BaseModel

    from cds_service.rulepack import schema

    models: dict[str, type[BaseModel]] = {
        "pack.yaml": schema.PackManifest,
        "analytes.yaml": schema.AnalyteFile,
        "conditions.yaml": schema.ConditionsFile,
        "dosing.yaml": schema.DosingFile,
        "workup.yaml": schema.WorkupFile,
        "valuesets/<id>.yaml": schema.ValueSetSpec,
        "criteria/<key>.yaml": schema.CriteriaSetSpec,
        "site overrides (CDS_RULE_PACK_OVERRIDES)": schema.SiteOverrides,
    }
    document = {name: model.model_json_schema(by_alias=True) for name, model in models.items()}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def command_serve(args: argparse.Namespace) -> int:
    import uvicorn

    if args.sandbox:
        os.environ["CDS_SANDBOX"] = "true"
    os.environ["CDS_HOST"] = args.host  # the app refuses a sandbox on a non-loopback address
    uvicorn.run(
        "cds_service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        access_log=False,
        workers=args.workers,
        ws="none",  # no WebSocket routes; loading uvicorn's WebSocket support costs start-up time
    )
    return 0


def command_fhir_server(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run(
        "cds_service.sandbox.fhir_server:create_fhir_app",
        factory=True,
        host=args.host,
        port=args.port,
        access_log=False,
    )
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors are one line (with a pointer to --help) like every other CLI error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_STATUS, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog="cds-service", description="MAS CDS Hooks service and sandbox tools")
    commands = root.add_subparsers(dest="command", required=True, parser_class=_Parser)
    serve = commands.add_parser("serve", help="run the CDS Hooks service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--sandbox", action="store_true", help="sandbox mode (loopback, fixture data, /sandbox page)")
    fhir = commands.add_parser("fhir-server", help="run the FHIR R4 server over the fixture patients")
    fhir.add_argument("--host", default="127.0.0.1")
    fhir.add_argument("--port", type=int, default=8081)
    commands.add_parser("fixtures", help="list fixture patients, draft orders and cases")
    fire = commands.add_parser("fire", help="fire a hook at a fixture patient and show the cards")
    fire.add_argument("patient", nargs="?")
    fire.add_argument("--case", help="a case name from fixtures/cases.json")
    fire.add_argument("--hook", default="patient-view", choices=sorted(SERVICE_FOR_HOOK))
    fire.add_argument("--order", help="a draft order from fixtures/orders (order hooks)")
    fire.add_argument("--url", help="a running service (default: in-process)")
    fire.add_argument("--no-prefetch", action="store_true", help="send no prefetch: the service queries --fhir-server")
    fire.add_argument("--fhir-server", help="FHIR base URL sent as fhirServer (e.g. http://127.0.0.1:8081)")
    fire.add_argument("--brief", action="store_true", help="summaries and suggestion labels only")
    check = commands.add_parser("check", help="fire every fixture case and compare with its expected cards")
    check.add_argument("--url", help="a running service (default: in-process)")
    population_cli.add_parser(commands)
    rules = commands.add_parser(
        "rules", help="print the rule book of the rule pack in force (the document the CDS committee signs off)"
    )
    rules.add_argument("--format", choices=("markdown", "json"), default="markdown")
    rules.add_argument("--out", type=Path, help="write the book to this file (default: stdout)")
    rules.add_argument("--schema", action="store_true", help="print the pack's file formats as JSON Schema instead")
    return root


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _run(args, out)
    except CliError as error:
        stream = err or sys.stderr
        stream.write(f"cds-service {args.command}: {error}\n")
        stream.flush()
        return EXIT_STATUS


def _run(args: argparse.Namespace, out: TextIO) -> int:
    if args.command == "rules":  # needs the rule pack only, no fixtures
        return command_rules(args, out)
    if args.command != "serve" and not (data_dir("fixtures") / "cases.json").is_file():
        raise CliError(f"no fixtures at {data_dir('fixtures')}: run from a checkout or from the installed wheel")
    if args.command == "fire":
        return command_fire(args, out)
    if args.command == "check":
        return command_check(args, out)
    if args.command == "fixtures":
        return command_fixtures(out)
    if args.command == "serve":
        return command_serve(args)
    if args.command == "screen":
        return population_cli.command_screen(args, out)
    return command_fhir_server(args)


if __name__ == "__main__":
    raise SystemExit(main())
