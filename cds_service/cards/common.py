"""What every card of this product shares: stable ids, source and topic, override reasons, links."""

from __future__ import annotations

import uuid

from cds_service.spec.response import SUMMARY_MAX_CHARS, Coding, Link, Source

TOPIC_SYSTEM = "urn:mas-cds:topic"
OVERRIDE_SYSTEM = "urn:mas-cds:override-reason"
SOURCE_LABEL = "MAS decision support (NCT02780583 protocol)"
_NAMESPACE = uuid.UUID("6c1b0c6e-3f1a-4f55-9a43-5e0c6c7f2a11")

OVERRIDE_REASONS = (
    Coding(system=OVERRIDE_SYSTEM, code="clinical-judgement", display="Clinical judgement: dose intended"),
    Coding(system=OVERRIDE_SYSTEM, code="data-outdated", display="Weight or lab data in the record is wrong"),
    Coding(system=OVERRIDE_SYSTEM, code="pharmacist-reviewed", display="Reviewed with pharmacist"),
    Coding(system=OVERRIDE_SYSTEM, code="not-applicable", display="Not applicable to this patient"),
)

TRIAL_LINK = Link(
    label="NCT02780583: anakinra for MAS (ClinicalTrials.gov)",
    url="https://clinicaltrials.gov/study/NCT02780583",
    type="absolute",
)


def stable_uuid(hook_instance: str, *parts: str) -> str:
    """The same call gives the same ids (tests pin them; a retried call keeps its feedback keys);
    different calls differ because hookInstance is a random uuid."""
    return str(uuid.uuid5(_NAMESPACE, "|".join((hook_instance, *parts))))


def source(topic_code: str, topic_display: str) -> Source:
    return Source(
        label=SOURCE_LABEL,
        url="https://clinicaltrials.gov/study/NCT02780583",
        topic=Coding(system=TOPIC_SYSTEM, code=topic_code, display=topic_display),
    )


def fit_summary(text: str) -> str:
    """Cards must have a summary under 140 characters; cut at a word, never mid-number."""
    if len(text) <= SUMMARY_MAX_CHARS:
        return text
    cut = text[: SUMMARY_MAX_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;:—-")
    return cut + "…"


def markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
