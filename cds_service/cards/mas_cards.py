"""The MAS screen's evaluation -> one patient-view card a clinician reads in seconds in a 400 px EHR panel.

Decision first (one line), then the few decisive findings with value, unit and local time (a 3-column table),
what is missing, the protocol anakinra line, and the actions. Every criterion of every set, the trends, the dose
arithmetic and the citations are in the MAS work-up app the card links to (and in the audit), not on the card.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from cds_service.cards import wording
from cds_service.cards.common import fit_summary, markdown_cell, overrides, source, stable_uuid, trial_link
from cds_service.cards.fhir_out import ResourceBuildError, new_protocol_order, workup_service_request
from cds_service.evaluation.mas import AnakinraPlan, MasEvaluation
from cds_service.facts.analytes import A
from cds_service.facts.observations import Measurement
from cds_service.rules.dosing.calculator import DoseNotCalculated, ProtocolDose
from cds_service.rules.mas.common import ItemResult, SetResult, Status
from cds_service.rules.mas.definitions import LabItem
from cds_service.rules.mas.screen import WorkupGroup
from cds_service.spec.response import Action, Card, Link, Suggestion

# Which findings a card shows first when several are decisive (presentation order, not a clinical rule).
PRIORITY = (
    A.FERRITIN,
    A.PLATELETS,
    A.FIBRINOGEN,
    A.AST,
    A.ALT,
    A.TRIGLYCERIDES,
    A.TEMPERATURE,
    A.ANC,
    A.WBC,
    A.HEMOGLOBIN,
    A.LDH,
    A.INR,
    A.DDIMER_FEU,
    A.DDIMER_DDU,
    A.ESR,
)
MAX_FINDINGS = 4
APP_LINK_LABEL = "MAS work-up: every criterion and trend charts"


@dataclass(frozen=True)
class DecisiveValue:
    analyte: A
    label: str
    value: str  # with its unit, e.g. "8,450 ng/mL"
    time: datetime  # UTC
    source: str  # "Observation/<id>" (for the app and the worklist, never shown on the card)


def mas_card(
    evaluation: MasEvaluation,
    *,
    encounter_id: str | None,
    hook_instance: str,
    data_notes: Sequence[str],
    app_url: str | None = None,
) -> Card | None:
    assessment = evaluation.assessment
    if not assessment.suggestive:
        return None
    likely = assessment.likely
    topic = "mas-likely" if likely else "mas-incomplete"
    suggestions: list[Suggestion] = []
    anakinra_line = None
    if likely:
        anakinra, anakinra_line = _anakinra(evaluation, encounter_id, hook_instance)
        if anakinra is not None:
            suggestions.append(anakinra)
    suggestions += _workup_suggestions(evaluation, encounter_id, hook_instance)
    links: list[Link] = []
    if app_url:
        # No appContext: the EHR launch carries the patient, and Oracle Health does not support appContext.
        links.append(Link(label=APP_LINK_LABEL, url=app_url, type="smart"))
    links.append(trial_link(evaluation.rules.pack.protocol))
    return Card(
        uuid=stable_uuid(hook_instance, topic),
        summary=mas_summary(evaluation),
        detail=_detail(evaluation, anakinra_line, data_notes, with_app=bool(app_url)),
        indicator="critical" if likely else "warning",
        source=source(
            topic, "Possible macrophage activation syndrome" if likely else "MAS not excluded: incomplete work-up"
        ),
        suggestions=suggestions or None,
        selectionBehavior="any" if suggestions else None,
        overrideReasons=overrides("mas"),
        links=links,
    )


def mas_summary(evaluation: MasEvaluation) -> str:
    """The card's one-line summary (also the worklist's summary column)."""
    assessment = evaluation.assessment
    findings = ", ".join(f"{f.label.lower()} {f.value}" for f in decisive_values(evaluation)[:2])
    if assessment.likely:
        names = wording.listing([r.definition.short_name for r in assessment.met_sets if r.validated])
        return fit_summary(f"Possible MAS: {findings} — {names} met")
    missing = [group.label for group in assessment.missing_workup]
    if missing:
        todo = f"order {wording.listing(missing[:2])}" + (f" and {len(missing) - 2} more" if len(missing) > 2 else "")
    else:
        todo = "criteria undecided"
    return fit_summary(f"MAS not excluded: {findings or 'criteria undecided'} — {todo}")


def decisive_values(evaluation: MasEvaluation, limit: int = MAX_FINDINGS) -> list[DecisiveValue]:
    """The few values that decide: met laboratory items of the met sets, then of the undecided applicable sets,
    and the ferritin that raised a warning — one per analyte, in presentation order."""
    assessment = evaluation.assessment
    ordered = [*assessment.met_sets, *(r for r in assessment.sets if r not in assessment.met_sets)]
    found: dict[A, tuple[ItemResult, Measurement]] = {}
    for result in ordered:
        if not result.applicable or result.definition.role == "display":
            continue
        for item in _met_leaves(result):
            measurement = item.measurements[0]
            found.setdefault(measurement.analyte, (item, measurement))
    values = []
    catalogue = evaluation.rules.pack.catalogue
    for analyte, (item, measurement) in found.items():
        label = catalogue[analyte].name if isinstance(item.definition, LabItem) else item.label
        if analyte is A.TEMPERATURE:
            label = "Max temperature"
        values.append(
            DecisiveValue(
                analyte,
                label,
                wording.measured(measurement, catalogue[analyte]),
                measurement.when,
                f"Observation/{measurement.observation_id}",
            )
        )
    ferritin = assessment.warning_ferritin
    if ferritin is not None and A.FERRITIN not in found:
        values.append(
            DecisiveValue(
                A.FERRITIN,
                catalogue[A.FERRITIN].name,
                wording.measured(ferritin, catalogue[A.FERRITIN]),
                ferritin.when,
                f"Observation/{ferritin.observation_id}",
            )
        )
    values.sort(key=lambda v: PRIORITY.index(v.analyte) if v.analyte in PRIORITY else len(PRIORITY))
    return values[:limit]


def _met_leaves(result: SetResult) -> Iterator[ItemResult]:
    """Met items that carry a measured value (laboratory items, score bands and points-if items)."""
    stack = [result.result] if result.result is not None else list(result.items)
    while stack:
        item = stack.pop(0)
        if item is None:
            continue
        if item.parts and not item.measurements:
            stack[0:0] = list(item.parts)
            continue
        if item.status is Status.MET and item.measurements and (item.points is None or item.points[0] > 0):
            yield item


def _detail(evaluation: MasEvaluation, anakinra_line: str | None, data_notes: Sequence[str], *, with_app: bool) -> str:
    """Paragraphs and one table, separated by blank lines (every markdown renderer then keeps them apart)."""
    assessment = evaluation.assessment
    zone = evaluation.rules.zone
    blocks = [_lead(evaluation)]
    findings = decisive_values(evaluation)
    if findings:
        rows = [f"| {f.label} | {markdown_cell(f.value)} | {wording.local(f.time, zone)} |" for f in findings]
        blocks.append("\n".join(["| Finding | Value | Time |", "|---|---|---|", *rows]))
    missing = [group.label for group in assessment.missing_workup]
    if missing:
        hours = int(evaluation.inputs.lab_window.total_seconds() // 3600)
        verb = "**Missing (last {h} h):**" if assessment.likely else "**Order to decide (none in {h} h):**"
        blocks.append(f"{verb.format(h=hours)} {wording.listing(missing)}.")
    if anakinra_line:
        blocks.append(anakinra_line)
    notes = [*data_notes]
    if assessment.skipped:
        count = len(assessment.skipped)
        notes.append(f"{count} result{'s' if count != 1 else ''} not used (status, unit or time)")
    if notes:
        blocks.append(f"**Not checked:** {markdown_cell('; '.join(notes))}.")
    if with_app:
        blocks.append("Every criterion, value and trend: open the MAS work-up (link below).")
    blocks.append(f"Decision support, not a diagnosis. Times in {evaluation.rules.zone}.")
    return "\n\n".join(blocks)


def _lead(evaluation: MasEvaluation) -> str:
    assessment = evaluation.assessment
    if assessment.likely:
        met = [_set_phrase(r) for r in assessment.met_sets if r.validated]
        return f"**MAS likely:** {wording.listing(met)} met."
    ferritin = assessment.warning_ferritin
    pack = evaluation.rules.pack
    reasons = []
    if ferritin is not None:
        reasons.append(
            f"ferritin {wording.measured(ferritin, pack.catalogue[A.FERRITIN])} "
            f"({wording.threshold(pack.decision.warning_ferritin)})"
        )
    reasons += [f"{r.definition.short_name} met" for r in assessment.met_sets if not r.validated]
    return (
        f"**MAS not excluded:** {wording.listing(reasons)}, and no validated criteria set is met yet — "
        "missing values count as unknown, not normal."
    )


def _set_phrase(result: SetResult) -> str:
    if result.score is None:
        return result.definition.short_name
    low, high = result.score
    shown = wording.number(low) if low == high else f"{wording.number(low)} to {wording.number(high)}"
    return f"{result.definition.short_name} ({shown})"


def _anakinra(evaluation: MasEvaluation, encounter_id: str | None, hook_instance: str) -> tuple[Suggestion | None, str]:
    plan: AnakinraPlan = evaluation.plan
    pack = evaluation.rules.pack
    trial = "NCT02780583"
    if plan.already_on_anakinra:
        return None, "**Anakinra:** already ordered; no new order suggested."
    if plan.malignancy:
        return None, (
            f"**Anakinra not suggested:** active malignancy coded ({markdown_cell(plan.malignancy)}), an exclusion of "
            f"{trial}; HLH in malignancy needs hematology input."
        )
    if not plan.medication_list_available:
        return None, "**Anakinra not suggested:** the medication list could not be read (no duplicate check)."
    dose = plan.dose
    if isinstance(dose, DoseNotCalculated):
        return None, f"**Anakinra not suggested:** {markdown_cell(dose.reason)}; please record {dose.needed}."
    line = f"**Anakinra ({trial}):** {_dose_phrase(dose)}, added to corticosteroids."
    if not dose.measurable:
        line += (
            f" Below the syringe's {wording.number(pack.product.smallest_measurable_mg)} mg mark: pharmacy preparation."
        )
    if dose.age is not None and dose.age.high < pack.protocol.minimum_age_years:
        line += " Younger than the trial's population: specialist review."
    try:
        resource = new_protocol_order(
            patient_id=evaluation.patient_id, dose=dose, encounter_id=encounter_id, template=pack.order
        )
    except ResourceBuildError as error:
        return None, f"**Anakinra not suggested:** {error}."
    label = f"Order anakinra {_dose_phrase(dose)} per {trial}"
    suggestion = Suggestion(
        label=label,
        uuid=stable_uuid(hook_instance, "mas-anakinra"),
        isRecommended=False,  # a drug order is the clinician's decision: never pre-selected
        actions=[Action(type="create", description=label, resource=resource)],
    )
    return suggestion, line


def _dose_phrase(dose: ProtocolDose) -> str:
    n = wording.number
    return (
        f"{n(dose.per_dose_mg)} mg SC every {dose.interval_hours} h ({n(dose.per_day_mg)} mg/day, "
        f"{n(dose.weight.value)} kg)"
    )


def _workup_suggestions(evaluation: MasEvaluation, encounter_id: str | None, hook_instance: str) -> list[Suggestion]:
    suggestions = []
    for group in evaluation.assessment.missing_workup:
        suggestion = _workup_suggestion(group, evaluation.patient_id, encounter_id, hook_instance)
        if suggestion is not None:
            suggestions.append(suggestion)
    return suggestions


def _workup_suggestion(
    group: WorkupGroup, patient_id: str, encounter_id: str | None, hook_instance: str
) -> Suggestion | None:
    try:
        resource = workup_service_request(
            patient_id=patient_id,
            loinc=group.order_code,
            display=group.order_display,
            text=group.label,
            encounter_id=encounter_id,
        )
    except ResourceBuildError:
        return None  # the order cannot be built for this patient id; the card still names the test
    label = f"Order {group.label}"
    return Suggestion(
        label=label,
        uuid=stable_uuid(hook_instance, "mas-workup", group.key),
        isRecommended=True,
        actions=[Action(type="create", description=f"{label} (MAS work-up)", resource=resource)],
    )
