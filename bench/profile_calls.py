"""Where a call's instructions go, stage by stage (the data behind bench/PROFILE.md).

Runs itself under valgrind callgrind and times each stage of a mas-screen and an anakinra-dose call in
instructions: the stage runs K times between two dumps of this process's own counts, at 10, 100 and 1,000
Observations, and a line through the sizes splits it into a fixed part and a part per Observation. The
cost of a dump request itself is measured just before (an empty batch) and subtracted. It also lists the
C functions and libraries the whole handler spends its instructions in.

The stages reach into the rules, facts and cards as they are at the time of writing (2026-11); when those
are reorganised, edit mas_stages and dose_stages to follow them. Nothing here is run by the tests.

Run: PYTHONPATH=. .venv/bin/python -m bench.profile_calls [--sizes 10,100,1000] [--micro] > /tmp/profile.md
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import io
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from bench import callgrind
from bench.instructions import fit
from bench.workloads import NOW, REGISTRY
from cds_service.fhir.client import ReadBudget

Stage = tuple[str, Callable[[], Callable[[], object]]]  # name, setup returning the measured thunk


def _module(name: str) -> Any:
    return importlib.import_module(name)


def run_coroutine(awaitable: Awaitable[Any]) -> Any:
    """Run a coroutine that never really waits (no I/O) without an event loop in the measurement."""
    coroutine = cast(Coroutine[Any, Any, Any], awaitable)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the coroutine waited for I/O")


class Call:
    """One decoded hook request, as the route has it just before the handler."""

    def __init__(self, service_id: str, raw: bytes) -> None:
        from bench.inprocess import SETTINGS
        from cds_service.call import HookCall
        from cds_service.fhir.prefetch import resolve_prefetch
        from cds_service.transport.envelope import check_context, decode_envelope

        self.service = REGISTRY.get(service_id)
        assert self.service is not None
        self.raw = raw
        self.envelope = decode_envelope(raw)
        self.tokens = check_context(self.envelope)
        self.data = run_coroutine(
            resolve_prefetch(
                self.service.prefetch, self.envelope.prefetch, self.tokens, None, budget=_budget(), max_pages=1
            )
        )
        self.settings = SETTINGS
        self.new_call: Callable[[], Any] = lambda: HookCall(
            service_id, self.envelope.hook, self.envelope.hookInstance, self.envelope.context, NOW, SETTINGS
        )

    def decode(self) -> object:
        from cds_service.fhir.prefetch import resolve_prefetch
        from cds_service.transport.envelope import check_context, decode_envelope

        assert self.service is not None
        envelope = decode_envelope(self.raw)
        tokens = check_context(envelope)
        return run_coroutine(
            resolve_prefetch(self.service.prefetch, envelope.prefetch, tokens, None, budget=_budget(), max_pages=1)
        )


def mas_stages(call: Call) -> list[Stage]:
    evaluation_module = _module("cds_service.evaluation.mas")
    facts_obs = _module("cds_service.facts.observations")
    facts_patient = _module("cds_service.facts.patient")
    facts_conditions = _module("cds_service.facts.conditions")
    screen = _module("cds_service.rules.mas.screen")
    trends = _module("cds_service.rules.mas.trends")
    mas_cards = _module("cds_service.cards.mas_cards")
    facts_units = _module("cds_service.facts.units")
    analytes = _module("cds_service.facts.analytes")
    identity = _module("cds_service.fhir.identity")
    data = call.data
    assert call.service is not None
    handler = call.service.handler
    rules = evaluation_module.load_rules(call.settings)
    observations = (*data["labs"].resources, *data["vitals"].resources)
    record = evaluation_module.PatientRecord(
        patient_id="adult-sepsis-mas-82kg",
        patient=data["patient"].resources,
        observations=observations,
        conditions=data["conditions"].resources,
        medications=data["medications"].resources,
    )
    evaluation = evaluation_module.evaluate_mas(record, now=NOW, rules=rules)
    inputs = evaluation.inputs

    def fresh_evaluation(with_plan: bool) -> Any:
        fresh = evaluation_module.MasEvaluation(record, rules, evaluation.patient, NOW, inputs, evaluation.assessment)
        if with_plan:
            _ = fresh.plan
        return fresh

    def each(make: Callable[[], Any], use: Callable[[Any], object]) -> Callable[[], Callable[[], object]]:
        """A stage on fresh objects made before the measurement (e.g. an evaluation whose plan is cached)."""

        def setup() -> Callable[[], object]:
            pool = [make() for _ in range(64)]
            return lambda: use(pool.pop())

        return setup

    def card(fresh: Any) -> object:
        return mas_cards.mas_card(fresh, encounter_id=None, hook_instance="h", data_notes=())

    stages: list[Stage] = [
        ("decode: envelope and prefetch", lambda: call.decode),
        ("facts: patient", lambda: lambda: facts_patient.extract_patient(tuple(record.patient))),
        (
            "facts: measurements (Observations → values)",
            lambda: lambda: facts_obs.extract_measurements(observations, patient_id=record.patient_id, now=NOW),
        ),
        (
            "facts: conditions and medications",
            lambda: lambda: facts_conditions.extract_clinical_context(record.conditions, record.medications, now=NOW),
        ),
    ]

    def per_observation(function: Callable[[Any], object]) -> Callable[[], Callable[[], object]]:
        """One step of extract_measurements, over every Observation of the call (its slope is per Observation)."""
        analyte_of = facts_obs._analyte_of

        def run() -> object:
            for observation in observations:
                if analyte_of(observation) is not None:
                    function(observation)
            return None

        return lambda: run

    def normalised(observation: Any) -> object:
        return facts_units.normalise(analytes.CATALOGUE[facts_obs._analyte_of(observation)], observation.valueQuantity)

    stages += [
        ("per Observation: loop and _analyte_of only", per_observation(lambda _: None)),
        ("per Observation: identity again (_is_about)", per_observation(lambda o: facts_obs._is_about(o, "p"))),
        ("per Observation: time (_time_of, parse_fhir_time)", per_observation(facts_obs._time_of)),
        ("per Observation: unit and plausibility (normalise)", per_observation(normalised)),
        ("per Observation: as_received text", per_observation(lambda o: facts_obs._as_received(o.valueQuantity))),
        (
            "per Observation: reference range (_upper_limit)",
            per_observation(lambda o: facts_obs._upper_limit(o, facts_obs._analyte_of(o))),
        ),
        (
            "per resource: transport identity filter (names_other_patient)",
            lambda: lambda: [identity.names_other_patient(o, "adult-sepsis-mas-82kg") for o in observations],
        ),
    ]

    def criteria_set(module: Any) -> Callable[[], Callable[[], object]]:
        return lambda: lambda: module.evaluate(inputs)

    for module in screen.SETS:
        stages.append((f"criteria: {module.__name__.rsplit('.', 1)[1]}", criteria_set(module)))
    stages += [
        ("criteria: trends", lambda: lambda: trends.evaluate(inputs)),
        ("criteria: assess_mas (all of the above + work-up)", lambda: lambda: screen.assess_mas(inputs)),
        (
            "evaluate_mas (facts + criteria)",
            lambda: lambda: evaluation_module.evaluate_mas(record, now=NOW, rules=rules),
        ),
        ("plan: anakinra dose, active orders", each(lambda: fresh_evaluation(False), lambda e: e.plan)),
        ("card: mas_card (plan already made)", each(lambda: fresh_evaluation(True), card)),
        ("handler (all of the above but decode)", lambda: lambda: run_coroutine(handler(call.new_call(), data))),
    ]
    return stages


def dose_stages(call: Call) -> list[Stage]:
    service = _module("cds_service.services.anakinra_dose")
    facts_obs = _module("cds_service.facts.observations")
    facts_patient = _module("cds_service.facts.patient")
    analytes = _module("cds_service.facts.analytes")
    calculator = _module("cds_service.rules.dosing.calculator")
    order_check = _module("cds_service.rules.dosing.order_check")
    medications = _module("cds_service.facts.medications")
    dose_cards = _module("cds_service.cards.dose_cards")
    safety = _module("cds_service.rules.dosing.safety")
    settings_view = _module("cds_service.services.settings_view")
    data = call.data
    observations = (*data["weights"].resources, *data["heights"].resources, *data["safety_labs"].resources)
    patient = facts_patient.extract_patient(data["patient"].resources)
    measurements = facts_obs.extract_measurements(observations, patient_id="adult-sepsis-mas-82kg", now=NOW)
    rules = settings_view.dosing_rules(call.settings)
    weight = measurements.latest_any_time(analytes.A.WEIGHT)
    protocol = calculator.calculate_protocol_dose(weight=weight, patient=patient, now=NOW, rules=rules)
    drafts = run_coroutine(service.draft_anakinra(call.new_call()))
    order = drafts.to_check[0]
    check = order_check.check_drafted_order(
        drafted=medications.read_drafted_dose(order.order),
        protocol=protocol,
        underdose_tolerance=settings_view.underdose_tolerance(call.settings),
    )
    window = timedelta(days=7)

    def safety_part() -> object:
        renal = safety.assess_renal(
            patient=patient,
            adult=True,
            weight=measurements.latest(analytes.A.WEIGHT, now=NOW, window=timedelta(days=30)),
            height=measurements.latest(analytes.A.HEIGHT, now=NOW, window=timedelta(days=90)),
            creatinine=measurements.latest(analytes.A.CREATININE, now=NOW, window=window),
            now=NOW,
        )
        anc = safety.assess_anc(measurements.latest(analytes.A.ANC, now=NOW, window=window))
        tnf, duplicate = safety.assess_comedication((), checked_ids=set(), other_draft_anakinra=())
        return dose_cards.safety_cards(renal=renal, anc=anc, tnf=tnf, duplicate=duplicate, hook_instance="h")

    def with_memo() -> Callable[[], object]:
        pool = []
        for _ in range(64):
            fresh = call.new_call()
            run_coroutine(service.draft_anakinra(fresh))
            pool.append(fresh)
        return lambda: run_coroutine(service.handle(pool.pop(), data))

    return [
        ("decode: envelope and prefetch", lambda: call.decode),
        (
            "guard: draft orders (decode draftOrders, resolve)",
            lambda: lambda: run_coroutine(service.draft_anakinra(call.new_call())),
        ),
        ("facts: patient", lambda: lambda: facts_patient.extract_patient(data["patient"].resources)),
        (
            "facts: measurements (Observations → values)",
            lambda: lambda: facts_obs.extract_measurements(observations, patient_id="adult-sepsis-mas-82kg", now=NOW),
        ),
        (
            "dose: protocol dose",
            lambda: lambda: calculator.calculate_protocol_dose(weight=weight, patient=patient, now=NOW, rules=rules),
        ),
        (
            "dose: order check",
            lambda: (
                lambda: order_check.check_drafted_order(
                    drafted=medications.read_drafted_dose(order.order),
                    protocol=protocol,
                    underdose_tolerance=settings_view.underdose_tolerance(call.settings),
                )
            ),
        ),
        ("card: original order JSON (orjson)", lambda: lambda: service._original_orders(call.new_call())),
        (
            "card: order_check_card",
            lambda: (
                lambda: dose_cards.order_check_card(
                    check, order_label="MedicationRequest/x", original=None, hook="order-select", hook_instance="h"
                )
            ),
        ),
        ("safety: renal, ANC, co-medication + cards", lambda: safety_part),
        ("handler, guard memo filled (all of the above but decode and guard)", with_memo),
    ]


def common_stages(call: Call) -> list[Stage]:
    """What the route adds around the handler: response JSON, audit record, log line, metrics."""
    from cds_service.observability.metrics import Metrics
    from cds_service.spec.response import CdsResponse
    from cds_service.storage.audit import AuditCard, AuditRecord, _AuditSink
    from cds_service.storage.database import create_database

    assert call.service is not None
    fresh = call.new_call()
    if call.service.guard is not None:
        run_coroutine(call.service.guard(fresh))
    result = run_coroutine(call.service.handler(fresh, call.data))
    cards = list(result.cards)
    folder = tempfile.mkdtemp(prefix="cds-profile-")
    engine = create_database(f"sqlite:///{folder}/audit.sqlite3")
    record = AuditRecord(
        service_id="mas-screen",
        hook="patient-view",
        hook_instance="h",
        issuer=None,
        tenant=None,
        status=200,
        outcome="ok",
        latency_ms=1.0,
        rule_versions=dict(result.rule_versions),
        cards=tuple(AuditCard(c.uuid, c.indicator, c.summary) for c in cards),
    )
    metrics = Metrics()
    import structlog

    from cds_service.observability.logging import configure_logging

    configure_logging(io.StringIO())
    log = structlog.get_logger("cds_service.calls").bind()  # as the route binds it
    sink = _AuditSink(engine)  # as the audit writer thread writes (without the thread hand-off)
    indicators = [card.indicator for card in cards]

    def log_line() -> None:
        log.info(
            "hook_call",
            service="s",
            hook="h",
            hook_instance="i",
            issuer=None,
            status=200,
            latency_ms=1.0,
            cards=indicators,
        )

    return [
        ("response: CdsResponse(cards).to_json()", lambda: lambda: CdsResponse(cards=cards).to_json()),
        ("audit: one record, SQLite insert + commit", lambda: lambda: sink.write([record])),
        ("log: one structlog JSON line", lambda: log_line),
        (
            "metrics: latency histogram + card counters",
            lambda: lambda: metrics.observe_call("s", "h", "200", 0.001, indicators),
        ),
    ]


_DUMPS = iter(range(1, 1_000_000))


def measure_stage(name: str, thunk: Callable[[], object], runs: int) -> tuple[float, Path]:
    name = f"{next(_DUMPS)}-{name}"  # dump names must be unique: a dump is found by its name
    thunk()
    thunk()
    callgrind.dump_self(f"{name}-warm")
    # What asking for a dump costs in this process as it is now (it grows with the heap): subtracted.
    overhead = callgrind.dump_self(f"{name}-empty")
    for _ in range(runs):
        thunk()
    done = callgrind.dump(os.getpid(), Path(os.environ["CALLGRIND_OUT_DIR"]), f"{name}-{runs}")
    return (done.instructions - overhead) / runs, done.path


def inner(sizes: list[int], *, micro_only: bool) -> None:
    body = _body

    gc.collect()
    gc.freeze()
    gc.set_threshold(20000, 50, 100)
    asyncio.set_event_loop(asyncio.new_event_loop())
    print("\n### Single operations, instructions each\n")
    print("| operation | instructions |")
    print("|---|---|")
    for name, thunk in micro_costs():
        gc.collect()
        gc.freeze()
        each, _ = measure_stage("micro", thunk, 2000)
        print(f"| {name} | {each:,.0f} |")
    if micro_only:
        return
    for service_id, stages_of in (("mas-screen", mas_stages), ("anakinra-dose", dose_stages)):
        table: dict[str, dict[int, float]] = {}
        handler_dump: Path | None = None
        for size in sizes:
            call = Call(service_id, body(service_id, size))
            runs = 20 if size <= 100 else 4
            for name, setup in [*stages_of(call), *common_stages(call)]:
                thunk = setup()
                # The inputs made so far are not the stage's work: keep the collector from walking them.
                gc.collect()
                gc.freeze()
                per_run, path = measure_stage(f"{service_id}-{size}", thunk, runs)
                table.setdefault(name, {})[size] = per_run
                if size == 100 and name.startswith("handler"):
                    handler_dump = path
            print(f"<!-- {service_id} {size} done -->", file=sys.stderr, flush=True)
        print(f"\n### {service_id}: instructions per call by stage\n")
        heads = " | ".join(f"{size:,} Obs" for size in sizes)
        print(f"| stage | {heads} | fixed | per Observation |")
        print("|---|" + "---|" * (len(sizes) + 2))
        for name, by_size in table.items():
            line = fit(sorted(by_size.items())) if len(by_size) > 1 else None
            cells = " | ".join(_m(by_size[size]) for size in sizes)
            fixed = _m(line.fixed) if line else ""
            slope = f"{line.per_observation / 1e3:.1f} K" if line else ""
            print(f"| {name} | {cells} | {fixed} | {slope} |")
        if handler_dump is not None:
            print_c_profile(service_id, handler_dump)


def micro_costs() -> list[tuple[str, Callable[[], object]]]:
    """Single operations the rules and cards repeat many times per call, in instructions each."""
    import dataclasses
    import hashlib
    import uuid
    from datetime import UTC, datetime
    from decimal import Decimal
    from typing import NamedTuple

    import msgspec

    from cds_service.spec.response import Card, CdsResponse

    analytes = _module("cds_service.facts.analytes")
    common = _module("cds_service.rules.mas.common")
    calculator = _module("cds_service.rules.dosing.calculator")
    cards_common = _module("cds_service.cards.common")
    first = next(iter(analytes.A))
    by_member = {member: 1 for member in analytes.A}
    by_value = {member.value: 1 for member in analytes.A}
    key = first.value
    moment = datetime(2026, 3, 10, 12, 34, 56, tzinfo=UTC)
    fields = {
        "key": "ferritin",
        "label": "Ferritin",
        "status": next(iter(common.Status)),
        "threshold": "> 684 ng/mL",
        "value": "8450 ng/mL",
        "time": moment,
        "source": "Observation/abc",
        "note": None,
        "points": None,
        "score_term": False,
    }

    class AsStruct(msgspec.Struct, frozen=True):
        key: str
        label: str
        status: Any
        threshold: str
        value: str | None = None
        time: datetime | None = None
        source: str | None = None
        note: str | None = None
        points: Any = None
        score_term: bool = False

    class AsTuple(NamedTuple):
        key: str
        label: str
        status: Any
        threshold: str
        value: str | None = None
        time: datetime | None = None
        source: str | None = None
        note: str | None = None
        points: Any = None
        score_term: bool = False

    @dataclasses.dataclass(slots=True)
    class AsSlots:
        key: str
        label: str
        status: Any
        threshold: str
        value: str | None = None
        time: datetime | None = None
        source: str | None = None
        note: str | None = None
        points: Any = None
        score_term: bool = False

    call = Call("mas-screen", _body("mas-screen", 100))
    assert call.service is not None
    result = run_coroutine(call.service.handler(call.new_call(), call.data))
    card = result.cards[0]
    card_fields = card.model_dump(exclude_none=True)
    identity = _module("cds_service.fhir.identity")
    observation = call.data["labs"].resources[0]
    namespace = uuid.UUID("6f1c1a4e-2d53-4f0b-9a55-1b2f0e6c9d11")
    amount = Decimal("8450.123456")
    stamp = "2026-03-10T12:34:56Z"
    return [
        ("(the harness: calling an empty lambda)", lambda: None),
        ("Enum member as a dict key (Python-level Enum.__hash__)", lambda: by_member[first]),
        ("the same lookup by a str key", lambda: by_value[key]),
        ("frozen dataclass, 10 fields (rules.mas.common.CriterionResult)", lambda: common.CriterionResult(**fields)),
        ("msgspec Struct, frozen, same 10 fields", lambda: AsStruct(**fields)),
        ("NamedTuple, same 10 fields", lambda: AsTuple(**fields)),
        ("dataclass(slots=True), not frozen, same 10 fields", lambda: AsSlots(**fields)),
        ("stable_uuid (uuid5 → str)", lambda: cards_common.stable_uuid("hook-instance", "mas-likely")),
        ("sha1 of the same input only", lambda: hashlib.sha1(namespace.bytes + b"hook-instance|mas-likely").digest()),  # noqa: S324
        ("f'{moment:%Y-%m-%d %H:%M} UTC' (strftime)", lambda: f"{moment:%Y-%m-%d %H:%M} UTC"),
        ("moment.isoformat(' ', 'minutes') + ' UTC'", lambda: moment.isoformat(" ", "minutes")[:16] + " UTC"),
        ("format_amount(Decimal) (round down, normalise, format)", lambda: calculator.format_amount(amount)),
        (
            "datetime.fromisoformat + astimezone(UTC)",
            lambda: datetime.fromisoformat(stamp).astimezone(UTC),
        ),
        ("Card(**fields): the MAS card validated from plain data", lambda: Card(**card_fields)),
        ("Card.model_construct(**fields) (no validation)", lambda: Card.model_construct(**card_fields)),
        ("CdsResponse(cards=[card]).to_json()", lambda: CdsResponse(cards=[card]).to_json()),
        (
            "transport identity filter, one Observation (names_other_patient)",
            lambda: identity.names_other_patient(observation, "adult-sepsis-mas-82kg"),
        ),
    ]


def print_c_profile(service_id: str, path: Path) -> None:
    costs = callgrind.exclusive_costs(path)
    total = sum(c.instructions for c in costs)
    by_object: Counter[str] = Counter()
    for cost in costs:
        by_object[Path(cost.obj).name] += cost.instructions
    print(f"\n{service_id}, 100 Observations, the measured handler stage by library (exclusive instructions):\n")
    print("| library | share |")
    print("|---|---|")
    for name, count in by_object.most_common(8):
        print(f"| {name} | {count / total:.1%} |")
    print("\nTop C functions:\n")
    print("| library | function | share |")
    print("|---|---|---|")
    for cost in costs[:25]:
        print(f"| {Path(cost.obj).name} | {cost.function} | {cost.instructions / total:.1%} |")


def print_function_profile(service_id: str, observations: int, calls: int = 200, top: int = 25) -> None:
    """Python functions by own time (cProfile, wall clock: shares only, its overhead inflates small
    functions), over whole in-process calls (bench.inprocess.call_once)."""
    import cProfile
    import pstats

    from bench.inprocess import body, call_once

    raw = body(service_id, observations)
    loop = asyncio.new_event_loop()
    for _ in range(5):
        loop.run_until_complete(call_once(service_id, raw))
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(calls):
        loop.run_until_complete(call_once(service_id, raw))
    profile.disable()
    loop.close()
    stats: Any = pstats.Stats(profile)
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)
    total = sum(row[1][2] for row in rows)
    print(f"\n{service_id}, {observations:,} Observations: Python functions by own time (cProfile, {calls} calls)\n")
    print("| function | calls per call | share of own time |")
    print("|---|---|---|")
    for (file, line, function), (_, ncalls, own, _, _) in rows[:top]:
        where = f"{Path(file).parent.name}/{Path(file).name}:{line}" if file != "~" else "builtin"
        print(f"| `{where} {function}` | {ncalls / calls:,.0f} | {own / total:.1%} |")


def _body(service_id: str, observations: int) -> bytes:
    from bench.inprocess import body

    return body(service_id, observations)


def _m(value: float) -> str:
    return f"{value / 1e6:.3f} M"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--micro", action="store_true", help="only the single-operation table")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.inner:
        inner(sizes, micro_only=args.micro)
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(20000, 50, 100)
    for service_id in ("mas-screen", "anakinra-dose"):
        for observations in () if args.micro else (10, 1000):
            print_function_profile(service_id, observations, calls=300 if observations == 10 else 30)
    if not callgrind.available():
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="cds-profile-callgrind-") as folder:
        env = {**os.environ, "CALLGRIND_OUT_DIR": folder, "PYTHONHASHSEED": "0"}
        argv = callgrind.command(
            Path(folder),
            [
                sys.executable,
                "-m",
                "bench.profile_calls",
                "--inner",
                "--sizes",
                args.sizes,
                *(["--micro"] if args.micro else []),
            ],
        )
        subprocess.run(argv, env=env, check=True)  # noqa: S603


if __name__ == "__main__":
    main()


def _budget() -> ReadBudget:
    """The FHIR read budget a call starts with (nothing is fetched here: every key is prefetched)."""
    return ReadBudget.starting_now(2.0, 8 << 20)
