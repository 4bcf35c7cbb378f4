"""The MAS screen's assessment -> one patient-view card (critical or warning) with its suggestions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from cds_service.cards.common import OVERRIDE_REASONS, TRIAL_LINK, fit_summary, markdown_cell, source, stable_uuid
from cds_service.cards.fhir_out import ResourceBuildError, new_protocol_order, workup_service_request
from cds_service.evaluation.mas import AnakinraPlan, MasEvaluation
from cds_service.facts.analytes import CATALOGUE, A
from cds_service.facts.observations import Measurement
from cds_service.rules.dosing.calculator import DoseNotCalculated, ProtocolDose, format_amount
from cds_service.rules.mas.common import Inputs, SetResult, Status
from cds_service.rules.mas.screen import MasAssessment
from cds_service.spec.response import Action, Card, Link, Suggestion

# Plain words, not emoji: EHR card panels often lack emoji fonts (seen in headless Chromium too).
RESULT_MARK = {Status.MET: "**met**", Status.NOT_MET: "not met", Status.UNKNOWN: "_unknown_"}
CRITERIA_LINKS = (
    Link(
        label="2016 EULAR/ACR/PRINTO MAS criteria (Ravelli, Ann Rheum Dis 2016)",
        url="https://ard.bmj.com/content/75/3/481",
        type="absolute",
    ),
    Link(
        label="HLH diagnosis and HLH-2004 criteria (Jordan et al., Blood 2011)",
        url="https://pmc.ncbi.nlm.nih.gov/articles/PMC3204727/",
        type="absolute",
    ),
    Link(
        label="Ferritin/ESR ratio in sJIA-MAS (Eloseily, ACR Open Rheumatol 2019)",
        url="https://pmc.ncbi.nlm.nih.gov/articles/PMC6857981/",
        type="absolute",
    ),
)


def mas_card(
    evaluation: MasEvaluation,
    *,
    encounter_id: str | None,
    hook_instance: str,
    data_notes: Sequence[str],
) -> Card | None:
    assessment, inputs, patient_id = evaluation.assessment, evaluation.inputs, evaluation.patient_id
    if not assessment.suggestive:
        return None
    plan = evaluation.plan
    topic = "mas-likely" if assessment.likely else "mas-incomplete"
    suggestions: list[Suggestion] = []
    notes: list[str] = []
    if assessment.likely:
        anakinra, why_not = _anakinra_suggestion(plan, patient_id, encounter_id, hook_instance)
        if anakinra is not None:
            suggestions.append(anakinra)
        if why_not:
            notes.append(why_not)
    suggestions += _workup_suggestions(assessment, patient_id, encounter_id, hook_instance)
    return Card(
        uuid=stable_uuid(hook_instance, topic),
        summary=mas_summary(evaluation),
        detail=_detail(assessment, inputs, plan, notes, data_notes),
        indicator="critical" if assessment.likely else "warning",
        source=source(
            topic,
            "Possible macrophage activation syndrome" if assessment.likely else "MAS not excluded: incomplete work-up",
        ),
        suggestions=suggestions or None,
        selectionBehavior="any" if suggestions else None,
        overrideReasons=list(OVERRIDE_REASONS),
        links=[TRIAL_LINK, *CRITERIA_LINKS],
    )


def human(measurement: Measurement) -> str:
    value = measurement.value
    number = f"{int(value):,}" if value >= 1000 and value == value.to_integral_value() else format_amount(value)
    unit = CATALOGUE[measurement.analyte].display_unit
    return f"{number} {unit}".strip()


def mas_summary(evaluation: MasEvaluation) -> str:
    """The card's one-line summary (also the worklist's summary column)."""
    return fit_summary(_summary(evaluation.assessment, evaluation.inputs))


def _summary(assessment: MasAssessment, inputs: Inputs) -> str:
    findings: list[str] = []
    for analyte, label in ((A.FERRITIN, "ferritin"), (A.PLATELETS, "platelets"), (A.FIBRINOGEN, "fibrinogen")):
        measurement = inputs.lab(analyte)
        if measurement is not None and len(findings) < 2:
            findings.append(f"{label} {human(measurement)}")
    shown = ", ".join(findings)
    if assessment.likely:
        return f"Possible MAS: {shown} — {assessment.short_name_of_first_met()} met"
    missing = len(assessment.missing_workup)
    order = f"; order {missing} missing test{'s' if missing != 1 else ''}" if missing else ""
    return f"MAS not excluded: {shown or 'criteria undecided'} — criteria undecided{order}"


def _detail(
    assessment: MasAssessment, inputs: Inputs, plan: AnakinraPlan, notes: Sequence[str], data_notes: Sequence[str]
) -> str:
    lines: list[str] = []
    if assessment.likely:
        met = ", ".join(s.name for s in assessment.met_sets if s.validated)
        lines.append(f"**Criteria met:** {markdown_cell(met)}.")
    else:
        lines.append(
            "**No validated criteria set is met yet, and MAS is not excluded**: the values below leave "
            "sets undecided. Missing items are *unknown*, never counted as normal."
        )
    if assessment.missing_workup:
        names = ", ".join(CATALOGUE[a].name for a, _ in assessment.missing_workup)
        hours = int(inputs.lab_window.total_seconds() // 3600)
        lines.append(f"**Missing work-up (no result in {hours} h):** {markdown_cell(names)}.")
    lines += [f"**Note:** {markdown_cell(n)}" for n in (*notes, *data_notes)]
    if plan.malignancy:
        lines.append(
            f"**Exclusion:** active malignancy coded ({markdown_cell(plan.malignancy)}): excluded from "
            "NCT02780583; HLH in malignancy needs hematology input."
        )
    if plan.already_on_anakinra:
        lines.append(f"**Already on anakinra:** {plan.already_on_anakinra}; no new order suggested.")
    lines.append("")
    applicable = [s for s in assessment.sets if s.applicable]
    for result in (*applicable, assessment.trends):
        lines += _set_table(result)
    others = [s for s in assessment.sets if not s.applicable]
    if others:
        lines.append("**Not applicable here:** " + "; ".join(f"{s.name} ({s.applicability})" for s in others) + ".")
        lines.append("")
    if assessment.skipped:
        lines.append("**Results not used**")
        lines += [
            f"- Observation/{markdown_cell(s.observation_id)} ({CATALOGUE[s.analyte].name}): {markdown_cell(s.reason)}"
            for s in assessment.skipped
        ]
        lines.append("")
    lines += _anakinra_section(plan)
    lines.append("Decision support only: classification criteria are not diagnostic; confirm clinically.")
    return "\n".join(lines)


def _set_table(result: SetResult) -> list[str]:
    lines = [
        f"#### {markdown_cell(result.name)}: {result.outcome.value.upper()}",
        f"{markdown_cell(result.summary)}. _{markdown_cell(result.citation)}; version {result.version}._",
        "",
        "| Criterion | Value | Time | Threshold | Result | Source |",
        "|---|---|---|---|---|---|",
    ]
    for item in result.criteria:
        if item.value:
            value = f"{item.value} ({item.note})" if item.note else item.value
        else:
            value = f"— ({item.note})" if item.note else "—"
        when = _when(item.time)
        points = ""
        if item.points is not None:
            low, high = item.points
            points = f" ({_points(low)})" if low == high else f" ({_points(low)} to {_points(high)})"
        mark = (
            ("term" if item.status is Status.MET else RESULT_MARK[item.status])
            if item.score_term
            else (RESULT_MARK[item.status])
        )
        lines.append(
            f"| {markdown_cell(item.label)} | {markdown_cell(value)} | {when} | {markdown_cell(item.threshold)} "
            f"| {mark}{points} | {markdown_cell(item.source or '—')} |"
        )
    lines += [f"_{markdown_cell(note)}_" for note in result.notes]
    lines.append("")
    return lines


def _points(value: Decimal) -> str:
    text = f"{value.quantize(Decimal('0.01')).normalize():f}"
    return text.replace("-", "−")


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "—"


def _anakinra_section(plan: AnakinraPlan) -> list[str]:
    lines = ["#### Anakinra per NCT02780583 (added to corticosteroids)"]
    dose = plan.dose
    if isinstance(dose, ProtocolDose):
        lines += [f"- {markdown_cell(step)}" for step in dose.reasoning]
        if not dose.measurable:
            lines.append("- The per-dose amount is below the syringe's 20 mg graduation: pharmacy preparation.")
    else:
        lines.append(f"- Not calculated: {markdown_cell(dose.reason)}. Please record {dose.needed}.")
    lines.append("")
    return lines


def _anakinra_suggestion(
    plan: AnakinraPlan, patient_id: str, encounter_id: str | None, hook_instance: str
) -> tuple[Suggestion | None, str | None]:
    if plan.already_on_anakinra:
        return None, None
    if plan.malignancy:
        return None, "No anakinra order suggested: active malignancy is an exclusion of NCT02780583."
    if not plan.medication_list_available:
        return None, "No anakinra order suggested: the active medication list could not be read (duplicate check)."
    dose = plan.dose
    if isinstance(dose, DoseNotCalculated):
        return None, f"No anakinra order suggested: {dose.reason}; please record {dose.needed}."
    try:
        resource = new_protocol_order(patient_id=patient_id, dose=dose, encounter_id=encounter_id)
    except ResourceBuildError as error:
        return None, f"No anakinra order suggested: {error}."
    n = format_amount
    label = (
        f"Order anakinra {n(dose.per_dose_mg)} mg SC every {dose.interval_hours} h ({n(dose.per_day_mg)} mg/day, "
        f"{n(dose.weight.value)} kg) per NCT02780583"
    )
    return Suggestion(
        label=label,
        uuid=stable_uuid(hook_instance, "mas-anakinra"),
        isRecommended=False,  # a drug order is the clinician's decision: never pre-selected
        actions=[Action(type="create", description=label, resource=resource)],
    ), None


def _workup_suggestions(
    assessment: MasAssessment, patient_id: str, encounter_id: str | None, hook_instance: str
) -> list[Suggestion]:
    suggestions = []
    for analyte, loinc in assessment.missing_workup:
        name = CATALOGUE[analyte].name if analyte is not A.DDIMER_FEU else "D-dimer (FEU)"
        try:
            resource = workup_service_request(
                patient_id=patient_id, loinc=loinc, display=name, encounter_id=encounter_id
            )
        except ResourceBuildError:
            continue  # the order cannot be built for this patient id; the card still lists the test
        label = f"Order {name} (LOINC {loinc})"
        suggestions.append(
            Suggestion(
                label=label,
                uuid=stable_uuid(hook_instance, "mas-workup", loinc),
                isRecommended=True,
                actions=[Action(type="create", description=f"{label}: MAS work-up", resource=resource)],
            )
        )
    return suggestions
