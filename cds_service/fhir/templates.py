"""Prefetch template tokens (CDS Hooks 2.0 §Prefetch tokens).

STU2 allows `{{context.<field>}}` for primitive context fields marked as tokens, and the user tokens
`{{userPractitionerId}}`, `{{userPractitionerRoleId}}`, `{{userPatientId}}`, `{{userRelatedPersonId}}`
derived from `context.userId`. Nothing else is accepted: the loader refuses other tokens at start-up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")
CONTEXT_TOKENS = frozenset({"patientId", "userId", "encounterId"})
USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


def template_tokens(template: str) -> list[str]:
    return TOKEN.findall(template)


def is_allowed_token(token: str) -> bool:
    if token.startswith("context."):
        return token.removeprefix("context.") in CONTEXT_TOKENS
    return token in USER_TOKENS


def render_template(template: str, context: Mapping[str, str]) -> str | None:
    """Substitute tokens; None when a token has no value in this call (the query can't be made)."""
    missing = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal missing
        value = _token_value(match.group(1), context)
        if value is None:
            missing = True
            return ""
        # Ids are FHIR ids ([A-Za-z0-9-.]{1,64}); quoting keeps a hostile value from adding parameters.
        return quote(value, safe="")

    rendered = TOKEN.sub(substitute, template)
    return None if missing else rendered


def _token_value(token: str, context: Mapping[str, str]) -> str | None:
    if token.startswith("context."):
        return context.get(token.removeprefix("context."))
    resource_type = USER_TOKENS.get(token)
    user = context.get("userId")
    if resource_type is None or user is None:
        return None
    kind, _, ident = user.rpartition("/")
    if kind.rsplit("/", 1)[-1] != resource_type or not ident:
        return None
    return ident


def encoded_query(template: str) -> str:
    """The template with its query values percent-encoded (`http://loinc.org|x` → `http%3A%2F%2Floinc.org%7Cx`),
    prefetch tokens kept. Same meaning to any FHIR server; and a proxy that collapses `//` in the URL (the
    SMART reference launcher does) can no longer turn the code system into `http:/loinc.org` and find nothing.
    """
    path, mark, query = template.partition("?")
    if not mark:
        return template
    pairs = (pair.partition("=") for pair in query.split("&"))
    return path + "?" + "&".join(f"{name}={quote(value, safe='{}.,-_~*')}" for name, _, value in pairs)
