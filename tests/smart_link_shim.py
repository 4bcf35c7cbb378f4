"""The `mas-screen` handler with the card's SMART link ensured, for the browser tests of the sandbox page.

The link to the app (`{base}/app/launch`, type "smart") belongs to the MAS card itself; until the card
carries it, this adds exactly that link to every MAS card that has no smart link. A card that already
has one passes unchanged, so the tests exercise the real link as soon as the card has it.
"""

from __future__ import annotations

import os

from cds_service.call import HookCall
from cds_service.fhir.prefetch import ServiceData
from cds_service.registry import HandlerResult
from cds_service.services import mas_screen
from cds_service.spec.response import Link

LAUNCH_URL_VARIABLE = "TEST_APP_LAUNCH_URL"


async def handle(call: HookCall, data: ServiceData) -> HandlerResult:
    result = await mas_screen.handle(call, data)
    link = Link(label="MAS work-up", url=os.environ[LAUNCH_URL_VARIABLE], type="smart")
    cards = [
        card
        if any(existing.type == "smart" for existing in card.links or [])
        else card.model_copy(update={"links": [*(card.links or []), link]})
        for card in result.cards
    ]
    return HandlerResult(cards, result.rule_versions)
