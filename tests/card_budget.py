"""The card budget: a card must read in seconds in a 400 px EHR side panel (issue #13).

- the decision first: the summary (under 140 characters) and the detail's first line;
- at most MAX_RENDERED_LINES lines once wrapped at WRAP characters (about 400 px of 13 px text), tables' rows
  counting one line each;
- no table wider than MAX_TABLE_COLUMNS columns;
- no unbreakable word longer than MAX_WORD characters (it would scroll sideways);
- no raw resource ids (they belong in the app and the audit).
"""

from __future__ import annotations

import math
import re
from typing import Any

WRAP = 60
MAX_RENDERED_LINES = 15
MAX_TABLE_COLUMNS = 3
MAX_WORD = 30
RAW_ID = re.compile(r"\b(Observation|MedicationRequest|Condition|Patient|Medication)/[A-Za-z0-9\-.]+")
MARKUP = re.compile(r"[*_`]")


def rendered_lines(detail: str) -> int:
    total = 0
    for line in detail.splitlines():
        text = line.strip()
        if not text or re.fullmatch(r"\|[-| :]+\|", text):
            continue  # blank lines and table separators take no line of their own
        if text.startswith("|"):
            total += 1
            continue
        total += max(1, math.ceil(len(MARKUP.sub("", text)) / WRAP))
    return total


def table_columns(detail: str) -> int:
    widths = [len(line.strip().strip("|").split("|")) for line in detail.splitlines() if line.strip().startswith("|")]
    return max(widths, default=0)


def budget_problems(card: dict[str, Any]) -> list[str]:
    problems = []
    detail = card.get("detail", "")
    if len(card["summary"]) >= 140:
        problems.append(f"summary of {len(card['summary'])} characters")
    lines = rendered_lines(detail)
    if lines > MAX_RENDERED_LINES:
        problems.append(f"{lines} rendered lines (budget {MAX_RENDERED_LINES})")
    columns = table_columns(detail)
    if columns > MAX_TABLE_COLUMNS:
        problems.append(f"a table of {columns} columns (budget {MAX_TABLE_COLUMNS})")
    long_words = [
        word for word in re.split(r"\s+", MARKUP.sub("", detail + " " + card["summary"])) if len(word) > MAX_WORD
    ]
    if long_words:
        problems.append(f"unbreakable words: {long_words[:3]}")
    raw = RAW_ID.findall(detail + card["summary"])
    if raw:
        problems.append(f"raw resource ids: {raw[:3]}")
    return problems
