"""Order-check and safety assessments -> cards for order-select / order-sign."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

from cds_service.cards.common import fit_summary, markdown_cell, overrides, source, stable_uuid, trial_link
from cds_service.cards.fhir_out import ResourceBuildError, corrected_order
from cds_service.cards.wording import for_card, local, number
from cds_service.facts.observations import SkippedResult
from cds_service.rules.dosing.calculator import DoseNotCalculated, ProtocolDose, format_amount
from cds_service.rules.dosing.order_check import Concern, OrderCheck
from cds_service.rules.dosing.protocol import OrderTemplate, Protocol
from cds_service.rules.dosing.safety import Outcome, SafetyResult, SafetyRules
from cds_service.spec.response import Action, Card, Indicator, Suggestion

# Why one overdose is a warning while drafting and critical at signing (issue #3): said on the card itself.
SEVERITY_WHY = {
    "order-select": "A warning while drafting; critical if signed unchanged.",
    "order-sign": "Critical at signing: it would be placed as written.",
}

# Plain words, not emoji: EHR card panels often lack emoji fonts.
ICON = {Concern.OVERDOSE: "**Overdose:**", Concern.WARNING: "**Warning:**", Concern.INFO: "Note:"}


def order_check_card(
    check: OrderCheck,
    *,
    order_key: str,
    order_name: str,
    original: dict[str, Any] | None,
    hook: str,
    hook_instance: str,
    protocol: Protocol,
    template: OrderTemplate,
    zone: tzinfo,
    unused_weights: Sequence[SkippedResult] = (),
) -> Card | None:
    """One card per checked order; none when the order matches the protocol and nothing is missing.

    `order_key` (the order's id) keeps the card's uuid stable; `order_name` is what the clinician ordered."""
    if not check.findings:
        return None
    indicator = _indicator(check, hook)
    suggestion, build_note = _correction(check, original, order_name, order_key, hook_instance, template)
    detail = _order_detail(check, order_name, build_note, unused_weights, protocol, zone)
    if check.overdose and hook in SEVERITY_WHY:
        detail += f"\n\n_{SEVERITY_WHY[hook]}_"
    return Card(
        uuid=stable_uuid(hook_instance, "anakinra-dose-check", order_key),
        summary=fit_summary(_order_summary(check, protocol)),
        detail=detail,
        indicator=indicator,
        source=source("anakinra-dose-check", "Anakinra dose check"),
        suggestions=[suggestion] if suggestion else None,
        selectionBehavior="any" if suggestion else None,  # Epic supports only "any"
        overrideReasons=overrides("dose"),
        links=[trial_link(protocol)],
    )


def _indicator(check: OrderCheck, hook: str) -> Indicator:
    # Issue #3: an overdose is critical at signing, a warning while the order is being drafted.
    if check.overdose:
        return "critical" if hook == "order-sign" else "warning"
    if any(f.concern is Concern.WARNING for f in check.findings):
        return "warning"
    return "info"


def drafted_text(check: OrderCheck) -> str:
    d = check.drafted
    dose = f"{format_amount(d.per_dose_mg)} mg" if d.per_dose_mg is not None else d.dose_as_written
    timing = f"q{format_amount(d.interval_hours)}h" if d.interval_hours is not None else d.timing_as_written
    return f"{dose} {timing}"


def protocol_text(protocol: ProtocolDose) -> str:
    n = format_amount
    return f"{n(protocol.per_dose_mg)} mg q{protocol.interval_hours}h ({n(protocol.per_day_mg)} mg/day)"


def _order_summary(check: OrderCheck, rules: Protocol) -> str:
    protocol = check.protocol
    first = sorted(check.findings, key=lambda f: list(Concern).index(f.concern))[0]
    drafted = drafted_text(check)
    if isinstance(protocol, DoseNotCalculated):
        if check.overdose:
            return f"Anakinra {drafted} exceeds protocol caps; mg/kg check needs {protocol.needed}"
        return f"Anakinra {drafted}: dose not verifiable, needs {protocol.needed}"
    weight = f"{format_amount(protocol.weight.value)} kg"
    target = protocol_text(protocol)
    lead = {
        "over-per-dose-cap": f"above protocol max {format_amount(rules.max_mg_per_dose)} mg/dose",
        "over-daily-cap": "above protocol daily cap",
        "over-mg-per-kg": "above protocol mg/kg/day",
        "under-dose": "below protocol dose",
        "wrong-interval": "wrong interval",
        "not-subcutaneous": "route not subcutaneous",
        "no-route": "no route",
        "dose-unreadable": "dose not verifiable",
        "timing-unreadable": "timing not verifiable",
        "not-measurable": "protocol dose below syringe range",
        "several-instructions": "several dosage instructions",
    }.get(first.code, first.text)
    return f"Anakinra {drafted}: {lead}. Protocol for {weight}: {target}"


def _order_detail(
    check: OrderCheck,
    order_name: str,
    build_note: str | None,
    unused_weights: Sequence[SkippedResult],
    rules: Protocol,
    zone: tzinfo,
) -> str:
    """Drafted against protocol (a 3-column table), the findings, the arithmetic in one line, the source; blocks
    separated by blank lines."""
    d = check.drafted
    protocol = check.protocol
    n = format_amount
    blocks = [f"**{markdown_cell(order_name)}**, as drafted against the protocol:"]
    # As written when it was converted (mL or syringes: the conversion shows), else in mg.
    shown_mg = d.per_dose_mg
    per_dose = (
        f"{n(shown_mg)} mg"
        if shown_mg is not None and "(=" not in d.dose_as_written
        else markdown_cell(d.dose_as_written)
    )
    per_day = f"{n(d.per_day_mg)} mg" if d.per_day_mg is not None else "not verifiable"
    table = ["| | Drafted | Protocol |", "|---|---|---|"]
    if isinstance(protocol, ProtocolDose):
        table += [
            f"| Per dose | {per_dose} | {n(protocol.per_dose_mg)} mg ({n(protocol.volume_ml)} mL) |",
            f"| Per day | {per_day} | {n(protocol.per_day_mg)} mg (cap {n(protocol.band.max_mg_per_day)}) |",
            f"| Interval | {markdown_cell(d.timing_as_written)} | every {protocol.interval_hours} h |",
        ]
        if d.subcutaneous is not True:  # a route other than the protocol's is also a finding below
            table.append(f"| Route | {markdown_cell(d.route_as_written)} | {rules.route} |")
    else:
        table += [
            f"| Per dose | {per_dose} | ≤ {n(rules.max_mg_per_dose)} mg |",
            f"| Per day | {per_day} | ≤ {n(rules.max_mg_per_day_any_band)} mg (any band) |",
        ]
    blocks.append("\n".join(table))
    blocks.append("\n".join(f"- {ICON[f.concern]} {markdown_cell(f.text)}" for f in check.findings))
    if isinstance(protocol, ProtocolDose):
        blocks.append(f"**Arithmetic:** {markdown_cell(arithmetic(protocol, zone))}")
    else:
        blocks.append(f"**Not calculated:** {protocol.reason}; please record {protocol.needed}.")
    if unused_weights:
        reasons = "; ".join(sorted({s.reason for s in unused_weights}))
        blocks.append(f"**Weights not used:** {markdown_cell(reasons)}.")
    if build_note:
        blocks.append(f"_{build_note}_")
    blocks.append(f"{rules.version.split('-')[0]} protocol; off-label: check local protocol.")
    return "\n\n".join(blocks)


def arithmetic(dose: ProtocolDose, zone: tzinfo) -> str:
    """The protocol dose in one line, e.g. "82 kg (9 Mar 16:00), adult: 5 mg/kg/day × 82 kg = 410 mg/day, cap
    400 → 400 ÷ 4 = 100 mg every 6 h (0.67 mL)"."""
    n = format_amount
    band = dose.band
    who = "adult" if dose.adult else ("child" if dose.adult is False else "age unknown")
    by_weight = band.mg_per_kg_per_day * dose.weight.value
    capped = f", cap {n(band.max_mg_per_day)}" if dose.capped else ""
    return (
        f"{n(dose.weight.value)} kg ({local(dose.weight.when, zone)}), {who}: {n(band.mg_per_kg_per_day)} mg/kg/day × "
        f"{n(dose.weight.value)} kg = {n(by_weight)} mg/day{capped} → {n(dose.exact_per_day_mg)} ÷ "
        f"{dose.doses_per_day} = {n(dose.per_dose_mg)} mg every {dose.interval_hours} h ({n(dose.volume_ml)} mL)"
    )


def _correction(
    check: OrderCheck,
    original: dict[str, Any] | None,
    order_name: str,
    order_key: str,
    hook_instance: str,
    template: OrderTemplate,
) -> tuple[Suggestion | None, str | None]:
    protocol = check.protocol
    if not isinstance(protocol, ProtocolDose) or original is None:
        return None, None
    try:
        resource = corrected_order(original, protocol, template)
    except ResourceBuildError as error:
        return None, f"No corrected order offered: the drafted order is {error}."
    n = format_amount
    label = (
        f"Change to {n(protocol.per_dose_mg)} mg every {protocol.interval_hours} h subcutaneously "
        f"({n(protocol.per_day_mg)} mg/day)"
    )
    action = Action(type="update", description=f"Update the {order_name} order: {label}", resource=resource)
    return Suggestion(
        label=label,
        uuid=stable_uuid(hook_instance, "anakinra-dose-check", order_key, "correct"),
        isRecommended=True,
        actions=[action],
    ), None


def safety_cards(
    *,
    renal: SafetyResult,
    anc: SafetyResult,
    tnf: SafetyResult,
    duplicate: SafetyResult,
    hook_instance: str,
    rules: SafetyRules,
    protocol: Protocol,
) -> list[Card]:
    cards: list[Card] = []
    crcl = number(rules.crcl_limit_ml_min)
    anc_limit = number(rules.anc_limit)
    if renal.outcome is Outcome.CONCERN:
        cards.append(
            _safety_card(
                "anakinra-renal",
                "Anakinra renal function",
                f"Anakinra: estimated renal function < {crcl} — label: consider every-other-day dosing; "
                "pharmacist review",
                f"{renal.text}.\n\nThe US label advises considering every-other-day dosing when CrCl < {crcl} mL/min. "
                "The trial protocol gives no renal adjustment: please review the schedule with a pharmacist.\n\n"
                f"Source: {for_card(rules.renal_citation)}.",
                hook_instance,
                protocol,
            )
        )
    if anc.outcome is Outcome.CONCERN:
        cards.append(
            _safety_card(
                "anakinra-neutropenia",
                "Anakinra neutropenia",
                f"Anakinra: {anc.text.split(' (')[0]} — below {anc_limit}; EU label: do not start in neutropenia",
                f"{anc.text}.\n\nThe EU SmPC says anakinra must not be initiated when ANC < {anc_limit} × 10⁹/L; the "
                "US label asks for ANC monitoring. Weigh against MAS severity.\n\n"
                f"Source: {for_card(rules.anc_citation)}.",
                hook_instance,
                protocol,
            )
        )
    if tnf.outcome is Outcome.CONCERN:
        cards.append(
            _safety_card(
                "anakinra-tnf-inhibitor",
                "Anakinra with TNF inhibitor",
                f"Anakinra with active TNF inhibitor ({tnf.text}): combination not recommended",
                f"Active order: {markdown_cell(tnf.text)}.\n\nCombining anakinra with TNF blockers raised serious "
                f"infections and neutropenia.\n\nSource: {for_card(rules.tnf_citation)}.",
                hook_instance,
                protocol,
            )
        )
    if duplicate.outcome is Outcome.CONCERN:
        caps = "; ".join(f"{number(band.max_mg_per_day)} mg/day {band.label}" for band in protocol.bands)
        cards.append(
            _safety_card(
                "anakinra-duplicate",
                "Duplicate anakinra",
                f"Possible duplicate: another anakinra order exists ({duplicate.text})",
                f"Another anakinra order exists: {markdown_cell(duplicate.text)}. Two concurrent orders can double "
                f"the daily dose (protocol caps: {caps}).",
                hook_instance,
                protocol,
            )
        )
    missing = [item for result in (renal, anc, tnf, duplicate) for item in result.missing]
    if missing:
        cards.append(
            Card(
                uuid=stable_uuid(hook_instance, "anakinra-checks-incomplete"),
                summary=fit_summary(
                    "Anakinra safety checks incomplete: " + ", ".join(m.split(" (")[0] for m in missing)
                ),
                detail="These checks could not be done because data is missing:\n\n"
                + "\n".join(f"- {markdown_cell(m)}" for m in missing)
                + f"\n\nRenal function (label: CrCl < {crcl} mL/min), neutrophils (EU label: ANC < {anc_limit} × "
                "10⁹/L), TNF-inhibitor co-medication and duplicate orders are checked whenever the data is there.",
                indicator="info",
                source=source("anakinra-checks-incomplete", "Anakinra safety checks incomplete"),
            )
        )
    return cards


def other_patient_draft_card(count: int, hook_instance: str) -> Card:
    """A drafted anakinra order whose subject is not this chart's patient: not checked, and said so
    (silence would read as "dose checked, nothing found"). The other patient is never named."""
    orders = "an anakinra draft order" if count == 1 else f"{count} anakinra draft orders"
    return Card(
        uuid=stable_uuid(hook_instance, "anakinra-other-patient"),
        summary=fit_summary(
            f"Dose not checked: {orders} {'names' if count == 1 else 'name'} a different patient than this chart"
        ),
        detail=(
            f"The EHR sent {orders} whose subject is not the patient of this chart. Such an order is never "
            "checked against this patient's weight and labs. Please make sure the order is placed in the right "
            "patient's chart; the dose check runs once the order names this patient."
        ),
        indicator="warning",
        source=source("anakinra-other-patient", "Anakinra order for a different patient"),
    )


def _safety_card(topic: str, display: str, summary: str, detail: str, hook_instance: str, protocol: Protocol) -> Card:
    return Card(
        uuid=stable_uuid(hook_instance, topic),
        summary=fit_summary(summary),
        detail=detail,
        indicator="warning",
        source=source(topic, display),
        overrideReasons=overrides("safety"),
        links=[trial_link(protocol)],
    )


def worst_first(cards: Sequence[Card]) -> list[Card]:
    rank = {"critical": 0, "warning": 1, "info": 2}
    return sorted(cards, key=lambda card: rank[card.indicator])
