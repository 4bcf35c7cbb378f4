"""Mounting the app (and, in sandbox mode, its test EHR authorization server) on the service."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
from fastapi import FastAPI

from cds_service.registry import Registry
from cds_service.settings import Settings
from cds_service.smart_app.config import AppClient
from cds_service.smart_app.routes import build_app_router

SCREEN_SERVICE = "mas-screen"  # the app reads exactly what this hook's prefetch templates read


def mount_smart_app(
    app: FastAPI,
    *,
    client: AppClient,
    settings: Settings,
    registry: Registry,
    http: Callable[[], httpx.AsyncClient],
    clock: Callable[[], datetime],
) -> None:
    service = registry.get(SCREEN_SERVICE)
    if service is None:
        return  # no MAS screen, no work-up app
    router = build_app_router(client=client, settings=settings, specs=service.prefetch, http=http, clock=clock)
    app.include_router(router, include_in_schema=False)
