"""Every page the service serves works offline: its scripts, styles and images come from this server.
(FastAPI's Swagger UI at /docs loaded them from a CDN and was blank offline; it is gone, /openapi.json
stays.)"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

from fastapi.testclient import TestClient

# src=, href= and CSS url(...) of anything a browser loads by itself.
ASSET = re.compile(r"""(?:<script[^>]*\bsrc|<link[^>]*\bhref|<img[^>]*\bsrc|url\()\s*=?\s*["']?([^"')\s>]+)""", re.I)
BASE = "http://testserver"
# Where FastAPI and this service put HTML pages; any that answers HTML is checked.
CANDIDATES = ("/", "/sandbox", "/docs", "/redoc", "/docs/oauth2-redirect", "/sandbox/fhir", "/cds-services")


def _pages(client: TestClient) -> dict[str, str]:
    pages = {}
    for path in CANDIDATES:
        response = client.get(path)
        if response.status_code == 200 and response.headers["content-type"].startswith("text/html"):
            pages[path] = response.text
    return pages


def _assets(client: TestClient, path: str, text: str) -> list[str]:
    found = [urljoin(BASE + path, match) for match in ASSET.findall(text)]
    for url in list(found):
        if urlsplit(url).netloc == "testserver" and url.endswith(".css"):
            css = client.get(urlsplit(url).path).text
            found += [urljoin(url, match) for match in ASSET.findall(css)]
    return found


def test_every_html_page_loads_its_assets_from_this_server(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    pages = _pages(client)
    assert "/sandbox" in pages  # the check sees the pages that exist
    for path, text in pages.items():
        for url in _assets(client, path, text):
            assert urlsplit(url).netloc == "testserver", f"{path} loads {url} from elsewhere"
            assert client.get(urlsplit(url).path).status_code == 200, url


def test_no_swagger_ui_but_the_openapi_document_stays(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    assert client.get("/docs").status_code == 404
    document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/cds-services/mas-screen" in document["paths"]
