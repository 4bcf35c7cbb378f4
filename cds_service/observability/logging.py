"""Structured JSON logs (structlog), one line per event, keyed by hookInstance.

What is logged: service, hook, hookInstance, issuer, status, latency, card indicators, and error *types*.
What is never logged: Authorization headers, fhirAuthorization tokens, request or response bodies.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure_logging(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
