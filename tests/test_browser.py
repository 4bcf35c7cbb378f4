"""The sandbox page in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium),
against a real server on 127.0.0.1: pick the sepsis-MAS patient, fire patient-view, see the critical card,
accept the anakinra suggestion and find the feedback stored; then sign an overdose and override it."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from cds_service.storage.database import feedback
from tests.servers import ServerProcess, running_server

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("CI"):
        raise RuntimeError(
            "CI must run the browser test: chromium and chromedriver are missing (.ci/run installs them)"
        )
    pytest.skip(
        "chromium/chromedriver not installed (apt-get install chromium chromium-driver)", allow_module_level=True
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1800",
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    database = f"sqlite:///{tmp_path / 'browser.sqlite3'}"
    with running_server({"CDS_SANDBOX": "true", "CDS_DATABASE_URL": database}) as process:
        yield process, database


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.binary_location = CHROMIUM or ""
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, css: str, timeout: float = 15) -> None:
    WebDriverWait(driver, timeout).until(lambda d: d.find_elements(By.CSS_SELECTOR, css))


def stored(database: str) -> list[dict[str, str | None]]:
    engine = create_engine(database)
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(select(feedback))]
    engine.dispose()
    return rows


def test_patient_view_accept_anakinra_and_feedback_is_stored(
    server: tuple[ServerProcess, str], browser: WebDriver, tmp_path: Path
) -> None:
    process, database = server
    browser.get(f"{process.url}/sandbox")
    wait(browser, "#patient-select option[value='adult-sepsis-mas-82kg']")
    Select(browser.find_element(By.ID, "patient-select")).select_by_value("adult-sepsis-mas-82kg")
    wait(browser, ".chart-block[data-analyte='ferritin'] svg")
    browser.find_element(By.ID, "fire-patient-view").click()
    wait(browser, ".cds-card[data-indicator='critical']")
    card = browser.find_element(By.CSS_SELECTOR, ".cds-card[data-indicator='critical']")
    assert "Possible MAS: ferritin 8,450 ng/mL" in card.text
    assert card.find_elements(By.CSS_SELECTOR, ".detail table")  # markdown tables rendered
    browser.save_screenshot(str(tmp_path / "sandbox.png"))

    accept = next(
        b
        for b in card.find_elements(By.CSS_SELECTOR, ".accept-suggestion")
        if b.text.startswith("Accept: Order anakinra 100 mg SC every 6 h")
    )
    suggestion_id = accept.get_attribute("data-suggestion")
    accept.click()
    wait(browser, "#feedback-status[data-stored='1']")
    shown = json.loads(card.find_element(By.CSS_SELECTOR, ".accepted-resource").text)
    assert shown[0]["resource"]["resourceType"] == "MedicationRequest"
    rows = stored(database)
    assert len(rows) == 1
    assert rows[0]["card_uuid"] == card.get_attribute("data-uuid")
    assert rows[0]["outcome"] == "accepted"
    assert rows[0]["accepted_suggestions"] == json.dumps([suggestion_id])

    browser.find_element(By.CSS_SELECTOR, "#raw summary").click()
    assert '"hook": "patient-view"' in browser.find_element(By.ID, "raw-request").text


def test_order_sign_overdose_and_override(server: tuple[ServerProcess, str], browser: WebDriver) -> None:
    process, database = server
    browser.get(f"{process.url}/sandbox")
    wait(browser, "#patient-select option[value='child-sjia-mas-22kg']")
    Select(browser.find_element(By.ID, "patient-select")).select_by_value("child-sjia-mas-22kg")
    dose = browser.find_element(By.ID, "order-dose")
    dose.clear()
    dose.send_keys("150")
    Select(browser.find_element(By.ID, "order-interval")).select_by_value("12")
    browser.find_element(By.ID, "send-prefetch").click()  # exercise the FHIR fallback to the sandbox server
    browser.find_element(By.ID, "fire-order-sign").click()
    wait(browser, ".cds-card[data-indicator='critical']")
    card = browser.find_element(By.CSS_SELECTOR, ".cds-card[data-indicator='critical']")
    assert "above protocol max 100 mg/dose" in card.text
    Select(card.find_element(By.CSS_SELECTOR, ".override-reason")).select_by_visible_text("Reviewed with pharmacist")
    card.find_element(By.CSS_SELECTOR, ".override-card").click()
    wait(browser, "#feedback-status[data-stored='1']")
    (row,) = stored(database)
    assert (row["outcome"], row["override_reason_code"]) == ("overridden", "pharmacist-reviewed")
