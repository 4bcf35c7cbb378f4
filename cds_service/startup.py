"""Start-up errors: a configuration the service refuses is one clear line on stderr and exit status 2,
never a traceback (a person reads it in a terminal or a service manager's journal)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError
from pydantic_settings import SettingsError

# What a settings source could not parse at all (a list or object setting that is not JSON).
_UNPARSABLE_FIELD = re.compile(r'field "(?P<field>[a-z_]+)"')
SETTINGS_ERRORS = (ValidationError, SettingsError)

EXIT_STATUS = 2


class StartupError(Exception):
    """The service cannot start; the message says why and, where it can, what to set."""


def describe(error: BaseException) -> str:
    """One line: settings errors name their environment variable (CDS_<FIELD>)."""
    if isinstance(error, ValidationError):
        prefix = "CDS_" if error.title == "Settings" else ""
        parts = []
        for item in error.errors():
            field = ".".join(str(part) for part in item.get("loc", ()))
            name = f"{prefix}{field.upper()}" if prefix else field
            message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
            parts.append(f"{name}: {message}" if name else message)
        return "; ".join(parts)
    if isinstance(error, SettingsError):
        found = _UNPARSABLE_FIELD.search(str(error))
        name = f"CDS_{found.group('field').upper()}" if found else "a CDS_ setting"
        return f'{name}: not parsable; a list or object setting is JSON (e.g. ["https://ehr.example.org"])'
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


@contextmanager
def exit_on_startup_error(prog: str = "cds-service") -> Iterator[None]:
    try:
        yield
    except (StartupError, *SETTINGS_ERRORS) as error:
        sys.stderr.write(f"{prog}: cannot start: {describe(error)}\n")
        sys.stderr.flush()
        raise SystemExit(EXIT_STATUS) from None
