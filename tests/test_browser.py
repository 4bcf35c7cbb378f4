"""The sandbox page in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium),
against a real server on 127.0.0.1: pick the sepsis-MAS patient, fire patient-view, see the critical card,
accept the anakinra suggestion and find the feedback stored; then sign an overdose and override it."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from cds_service.storage.database import feedback
from tests.servers import ServerProcess, free_port, running_server

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
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

# CDS_SCREENSHOT_DIR=docs refreshes the README's pictures from these tests.
SCREENSHOTS = os.environ.get("CDS_SCREENSHOT_DIR")

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
    browser.save_screenshot(str(screenshot_path(tmp_path, "sandbox.png")))

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


def test_the_mas_card_in_a_400_px_panel(server: tuple[ServerProcess, str], browser: WebDriver, tmp_path: Path) -> None:
    """The card as an EHR side panel shows it: decision, evidence and action without sideways scrolling (the
    README's card picture comes from here)."""
    process, _ = server
    browser.set_window_size(400, 1000)
    browser.get(f"{process.url}/sandbox")
    wait(browser, "#patient-select option[value='adult-sepsis-mas-82kg']")
    Select(browser.find_element(By.ID, "patient-select")).select_by_value("adult-sepsis-mas-82kg")
    browser.find_element(By.ID, "fire-patient-view").click()
    wait(browser, ".cds-card[data-indicator='critical']")
    card = browser.find_element(By.CSS_SELECTOR, ".cds-card[data-indicator='critical']")
    browser.execute_script("arguments[0].scrollIntoView()", card)
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert card.size["width"] <= 400
    text = card.text
    assert text.index("MAS likely") < text.index("Anakinra (NCT02780583)") < text.index("Accept: Order anakinra")
    card.screenshot(str(screenshot_path(tmp_path, "card-400.png")))


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


def screenshot_path(tmp_path: Path, name: str) -> Path:
    return Path(SCREENSHOTS) / name if SCREENSHOTS else tmp_path / name


def set_viewport(browser: WebDriver, width: int, height: int) -> None:
    """A real CSS viewport of `width` px (a desktop window cannot be made narrower than ~500 px)."""
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def sideways_overflow(browser: WebDriver) -> int:
    overflow: int = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return overflow


def choose(browser: WebDriver, patient: str) -> None:
    wait(browser, f"#patient-select option[value='{patient}']")
    Select(browser.find_element(By.ID, "patient-select")).select_by_value(patient)
    wait(browser, ".chart-block[data-analyte='ferritin']")


def test_sandbox_page_has_no_sideways_scroll_at_400_px(server: tuple[ServerProcess, str], browser: WebDriver) -> None:
    process, _ = server
    set_viewport(browser, 400, 900)
    browser.get(f"{process.url}/sandbox")
    choose(browser, "adult-sepsis-mas-82kg")
    assert sideways_overflow(browser) == 0
    browser.find_element(By.ID, "fire-patient-view").click()
    wait(browser, ".cds-card[data-indicator='critical']")
    browser.find_element(By.CSS_SELECTOR, "#raw summary").click()
    assert browser.execute_script("return window.innerWidth") == 400
    assert sideways_overflow(browser) == 0


def test_accept_fills_the_draft_order_and_a_card_takes_one_outcome(
    server: tuple[ServerProcess, str], browser: WebDriver
) -> None:
    process, database = server
    browser.get(f"{process.url}/sandbox")
    choose(browser, "child-sjia-mas-22kg")
    dose = browser.find_element(By.ID, "order-dose")
    dose.clear()
    dose.send_keys("150")
    Select(browser.find_element(By.ID, "order-interval")).select_by_value("12")
    browser.find_element(By.ID, "fire-order-select").click()
    wait(browser, ".cds-card .accept-suggestion")
    card = next(
        c
        for c in browser.find_elements(By.CSS_SELECTOR, ".cds-card")
        if c.find_elements(By.CSS_SELECTOR, ".accept-suggestion")
    )
    button = card.find_element(By.CSS_SELECTOR, ".accept-suggestion")
    response = json.loads(browser.execute_script("return document.getElementById('raw-response').textContent"))
    suggestion = next(
        s
        for c in response["cards"]
        for s in c.get("suggestions", [])
        if s["uuid"] == button.get_attribute("data-suggestion")
    )
    resource: dict[str, Any] = suggestion["actions"][0]["resource"]
    dosage = resource["dosageInstruction"][0]
    expected_dose = dosage["doseAndRate"][0]["doseQuantity"]
    expected_every = dosage["timing"]["repeat"]["period"] / dosage["timing"]["repeat"].get("frequency", 1)
    button.click()
    wait(browser, "#feedback-status[data-stored='1']")

    assert float(browser.find_element(By.ID, "order-dose").get_attribute("value") or "nan") == expected_dose["value"]
    assert Select(browser.find_element(By.ID, "order-unit")).first_selected_option.text == expected_dose["code"]
    interval = Select(browser.find_element(By.ID, "order-interval")).first_selected_option.get_attribute("value")
    assert float(interval or "nan") == expected_every
    assert "Draft order updated" in browser.find_element(By.ID, "order-note").text
    controls = card.find_elements(By.CSS_SELECTOR, ".suggestions button, .override button, .override select")
    assert controls and all(not c.is_enabled() for c in controls)
    assert card.get_attribute("data-outcome") == "accepted"
    browser.execute_script("arguments[0].click()", card.find_element(By.CSS_SELECTOR, ".accept-suggestion"))
    (row,) = stored(database)  # a disabled button sends nothing
    assert row["outcome"] == "accepted"

    # The filled-in order is the protocol order: signing it raises no dose card any more.
    browser.find_element(By.ID, "fire-order-sign").click()
    wait(browser, "#call-status")
    WebDriverWait(browser, 15).until(lambda d: "HTTP 200" in d.find_element(By.ID, "call-status").text)
    summaries = [c.text for c in browser.find_elements(By.CSS_SELECTOR, ".cds-card .summary")]
    assert not any("above protocol" in text for text in summaries)


def test_invalid_dose_shows_the_reason_and_clears_the_previous_cards(
    server: tuple[ServerProcess, str], browser: WebDriver
) -> None:
    process, _ = server
    browser.get(f"{process.url}/sandbox")
    choose(browser, "adult-normal-labs")
    browser.find_element(By.ID, "fire-patient-view").click()
    wait(browser, "#no-cards")
    for bad, reason in (("0", "greater than 0"), ("", "Enter a dose"), ("250000", "at most 100,000")):
        dose = browser.find_element(By.ID, "order-dose")
        dose.clear()
        if bad:
            dose.send_keys(bad)
        browser.find_element(By.ID, "fire-order-select").click()
        WebDriverWait(browser, 5).until(lambda d: d.find_element(By.ID, "order-error").text)
        assert reason in browser.find_element(By.ID, "order-error").text
        assert not browser.find_elements(By.ID, "no-cards")
        assert browser.find_element(By.ID, "order-dose").get_attribute("aria-invalid") == "true"
    dose = browser.find_element(By.ID, "order-dose")
    dose.clear()
    dose.send_keys("100")
    browser.find_element(By.ID, "fire-order-select").click()
    WebDriverWait(browser, 15).until(lambda d: "HTTP 200" in d.find_element(By.ID, "call-status").text)
    assert not browser.find_element(By.ID, "order-error").is_displayed()


@pytest.fixture
def linked_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """The sandbox as shipped: every MAS card carries the app's SMART link (`{base}/app/launch`)."""
    port = free_port()
    env = {"CDS_SANDBOX": "true", "CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}"}
    with running_server(env, port=port) as process:
        yield process


@pytest.mark.parametrize(("width", "height"), [(1280, 1100), (400, 1500)])
def test_card_link_launches_the_app_and_draws_the_charts(
    linked_server: ServerProcess, browser: WebDriver, tmp_path: Path, width: int, height: int
) -> None:
    set_viewport(browser, width, height)
    browser.get(f"{linked_server.url}/sandbox")
    choose(browser, "adult-sepsis-mas-82kg")
    browser.find_element(By.ID, "fire-patient-view").click()
    wait(browser, ".cds-card[data-indicator='critical'] a.smart-link")
    card_summary = browser.find_element(By.CSS_SELECTOR, ".cds-card[data-indicator='critical'] .summary").text
    sandbox_tab = browser.current_window_handle
    browser.find_element(By.CSS_SELECTOR, ".cds-card[data-indicator='critical'] a.smart-link").click()
    WebDriverWait(browser, 15).until(lambda d: len(d.window_handles) == 2)
    browser.switch_to.window(next(h for h in browser.window_handles if h != sandbox_tab))
    set_viewport(browser, width, height)
    WebDriverWait(browser, 20).until(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
    # The charts are redrawn when the width changes: wait until they are drawn at this viewport's width.
    WebDriverWait(browser, 10).until(
        lambda d: d.execute_script(
            "return document.body.dataset.chartsWidth === String(document.querySelector('#charts').clientWidth)"
        )
    )

    assert browser.current_url.startswith(f"{linked_server.url}/app/?s=")  # launched, authorized, landed
    assert browser.find_element(By.ID, "patient-id").text == "adult-sepsis-mas-82kg"
    assert browser.find_element(By.CSS_SELECTOR, "#decision .summary").text == card_summary
    analytes = [f.get_attribute("data-analyte") for f in browser.find_elements(By.CSS_SELECTOR, "figure.chart")]
    assert analytes == ["ferritin", "platelets", "fibrinogen", "ast", "alt", "triglycerides", "temperature"]
    ferritin = browser.find_element(By.CSS_SELECTOR, "figure.chart[data-analyte='ferritin']")
    assert len(ferritin.find_elements(By.CSS_SELECTOR, "circle.point")) >= 2
    lines = {line.get_attribute("data-set"): line for line in ferritin.find_elements(By.CSS_SELECTOR, "line.threshold")}
    # Every ferritin threshold of the sets that can apply to this adult with sepsis: trial (> 2,000), HLH-2004 (≥ 500),
    # HScore bands, sepsis features; not the 2016 sJIA criteria (> 684), whose population excludes him.
    assert {"trial-no-sjia", "hlh2004", "hscore", "sepsis-mas-features"} <= set(lines)
    assert "eular2016" not in lines
    # The trial's 2,000 line lies between the HLH-2004 500 line and the 8,450 point (SVG y grows downwards).
    top_point = min(
        float(c.get_attribute("cy") or "nan") for c in ferritin.find_elements(By.CSS_SELECTOR, "circle.point")
    )
    assert (
        top_point
        < float(lines["trial-no-sjia"].get_attribute("y1") or "nan")
        < float(lines["hlh2004"].get_attribute("y1") or "nan")
    )
    # Read in the page in one step: a resize may redraw the charts (and replace the elements) at any moment.
    label = browser.execute_script(
        "return document.querySelector(\"figure.chart[data-analyte='ferritin'] svg\").getAttribute('aria-label')"
    )
    assert "Ferritin" in label and "8,450" in label and "trial criteria: > 2,000 ng/mL" in label
    sets = browser.find_elements(By.CSS_SELECTOR, "details.set")
    assert len(sets) >= 8 and all(s.find_elements(By.CSS_SELECTOR, "tbody tr") for s in sets)
    statuses = {r.get_attribute("class") for r in browser.find_elements(By.CSS_SELECTOR, "table.criteria tbody tr")}
    assert statuses == {"status-met", "status-not-met", "status-unknown"}
    assert browser.execute_script("return window.innerWidth") == width
    assert sideways_overflow(browser) == 0
    browser.save_screenshot(str(screenshot_path(tmp_path, f"app-{width}.png")))

    # Keyboard: the first Tab reaches the skip link, which moves focus to the charts; sets fold with Enter.
    browser.execute_script("window.scrollTo(0, 0); document.activeElement.blur()")
    ActionChains(browser).send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element.get_attribute("class") == "skip"
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    WebDriverWait(browser, 5).until(lambda d: d.switch_to.active_element.get_attribute("id") == "charts-heading")
    first_set = browser.find_element(By.CSS_SELECTOR, "details.set")
    browser.execute_script("arguments[0].querySelector('summary').focus()", first_set)
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    WebDriverWait(browser, 5).until(lambda d: first_set.get_attribute("open") is None)


def test_app_without_a_session_says_how_to_start(server: tuple[ServerProcess, str], browser: WebDriver) -> None:
    process, _ = server
    browser.get(f"{process.url}/app/?s=unknown")
    wait(browser, ".problem")
    assert "launch the app from the EHR" in browser.find_element(By.CSS_SELECTOR, ".problem").text
