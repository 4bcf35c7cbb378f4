"""What every card of this product shares: stable ids, source and topic, override reasons, links."""

from __future__ import annotations

import uuid
from typing import Literal

from cds_service.rules.dosing.protocol import Protocol
from cds_service.spec.response import SUMMARY_MAX_CHARS, Coding, Link, Source

TOPIC_SYSTEM = "urn:mas-cds:topic"
OVERRIDE_SYSTEM = "urn:mas-cds:override-reason"
SOURCE_LABEL = "MAS decision support (NCT02780583 protocol)"
_NAMESPACE = uuid.UUID("6c1b0c6e-3f1a-4f55-9a43-5e0c6c7f2a11")

# Each card type offers the reasons a clinician would really give for overriding it (Epic ties them to the topic).
OverrideKind = Literal["mas", "dose", "safety"]
_REASONS: dict[OverrideKind, tuple[tuple[str, str], ...]] = {
    "mas": (
        ("not-mas", "Clinical judgement: not MAS"),
        ("already-managed", "Already assessed or being treated"),
        ("data-wrong", "Lab or record data is wrong"),
        ("not-applicable", "Not applicable to this patient"),
    ),
    "dose": (
        ("dose-intended", "Clinical judgement: dose intended"),
        ("data-wrong", "Weight or lab data in the record is wrong"),
        ("pharmacist-reviewed", "Reviewed with pharmacist"),
        ("not-applicable", "Not applicable to this patient"),
    ),
    "safety": (
        ("benefit-outweighs-risk", "Benefit outweighs the risk"),
        ("pharmacist-reviewed", "Reviewed with pharmacist"),
        ("data-wrong", "Lab or medication data is wrong"),
    ),
}


def overrides(kind: OverrideKind) -> list[Coding]:
    return [Coding(system=OVERRIDE_SYSTEM, code=code, display=display) for code, display in _REASONS[kind]]


def trial_link(protocol: Protocol) -> Link:
    return Link(
        label=f"{protocol.version.split('-')[0]}: anakinra for MAS (ClinicalTrials.gov)",
        url=protocol.url,
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
