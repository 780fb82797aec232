"""A contact's clicks in a real browser: headless Chromium on the pages `reminders web` serves.

The emails come from the installed command through a real SMTP server; the links are
taken from what that server received. Without Debian's `chromium` and
`chromium-driver` these tests are skipped, unless `CI=true`, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from acceptance.test_send_cli import smtp_env
from acceptance.web_command import WebCommand
from acceptance.workspace import Workspace
from mail_server import MailServer, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SOPHIE = "sophie.lefevre@example.fr"  # imported unconfirmed
MARIE = "marie.dupont@example.fr"  # imported confirmed
#: The page's button colour when style.css loaded (the CSP allows it, and nothing inline).
ACCENT = "rgba(11, 92, 173, 1)"

Ids = dict[tuple[str, str], int]


def _program(name: str, debian: Path) -> str | None:
    return str(debian) if debian.is_file() else shutil.which(name)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium driven by the chromedriver of the same Debian release."""
    chromium = _program("chromium", CHROMIUM)
    driver = _program("chromedriver", CHROMEDRIVER)
    if chromium is None or driver is None:
        reason = (
            f"Chromium or its driver not found ({CHROMIUM}, {CHROMEDRIVER}): install the "
            "Debian packages 'chromium' and 'chromium-driver'"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true requires a browser: {reason}", pytrace=False)
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--lang=fr-FR",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver's path is given, so Selenium never looks for (or downloads) one.
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    session.set_page_load_timeout(30)
    try:
        yield session
    finally:
        session.quit()


def heading_becomes(browser: WebDriver, text: str) -> None:
    """Wait until the page's <h1> reads `text` (the next page has loaded)."""
    WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda b: b.find_element(By.TAG_NAME, "h1").text == text,
        message=f"the page never said {text!r}",
    )


def click_the_button(browser: WebDriver, label: str) -> None:
    [button] = browser.find_elements(By.CSS_SELECTOR, "form button[type=submit]")
    assert button.text == label
    assert button.value_of_css_property("background-color") == ACCENT
    button.click()


def assert_no_console_errors(browser: WebDriver) -> None:
    """Nothing was blocked by the Content-Security-Policy, nothing failed to load."""
    problems = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert problems == []


def last_event(workspace: Workspace, address: str) -> dict[str, Any]:
    status: dict[str, Any] = workspace.json("consent", "status", address)
    event: dict[str, Any] = status["history"][-1]
    return event


def test_a_contact_confirms_their_address_from_the_confirmation_email(
    loaded: Workspace, mail_server: MailServer, browser: WebDriver
) -> None:
    port = free_port()
    env = smtp_env(mail_server, REMINDERS_WEB__BASE_URL=f"http://127.0.0.1:{port}")
    loaded.ok("consent", "send-confirmation", SOPHIE, env=env)
    assert loaded.json("consent", "status", SOPHIE)["consent"] == "confirmation_pending"
    [message] = mail_server.to(SOPHIE)
    link = re.search(rf"http://127\.0\.0\.1:{port}/confirm/\S+", message.part("plain"))
    assert link, message.part("plain")
    web = WebCommand(loaded, port, env).start()
    try:
        browser.get(link[0])
        assert browser.find_element(By.TAG_NAME, "h1").text == "Confirmez votre adresse e-mail"
        assert SOPHIE in browser.find_element(By.TAG_NAME, "main").text
        assert "Agence du Lac" in browser.find_element(By.TAG_NAME, "main").text

        click_the_button(browser, "Confirmer mon adresse")

        heading_becomes(browser, "Votre adresse est confirmée")
        assert browser.current_url == link[0]  # the answer is the page itself: no redirect
        assert_no_console_errors(browser)
    finally:
        assert web.stop() == 0, web.log
    status = loaded.json("consent", "status", SOPHIE)
    assert status["consent"] == "ok"
    event = last_event(loaded, SOPHIE)
    assert (event["action"], event["source"], event["method"], event["actor"]) == (
        "confirm",
        "contact",
        "email link",
        "contact",
    )
    assert link[0].split("/confirm/")[1] not in web.log


def test_a_contact_unsubscribes_from_the_link_of_a_reminder(
    planned: Workspace, planned_ids: Ids, mail_server: MailServer, browser: WebDriver
) -> None:
    port = free_port()
    env = smtp_env(mail_server, REMINDERS_WEB__BASE_URL=f"http://127.0.0.1:{port}")
    planned.ok("send", str(planned_ids[("B-1", "balance_due")]), env=env)
    [received] = mail_server.to(MARIE)
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = re.search(r"<(http://[^>]+)>", received.message["List-Unsubscribe"])
    assert link and link[1].startswith(f"http://127.0.0.1:{port}/unsubscribe/"), link
    web = WebCommand(planned, port, env).start()
    try:
        browser.get(link[1])
        assert browser.find_element(By.TAG_NAME, "h1").text == "Se désinscrire"
        assert MARIE in browser.find_element(By.TAG_NAME, "main").text
        assert planned.json("consent", "status", MARIE)["consent"] == "ok"  # GET changed nothing

        click_the_button(browser, "Me désinscrire")

        heading_becomes(browser, "Vous êtes désinscrit")
        assert "Vous avez changé d’avis ?" in browser.find_element(By.TAG_NAME, "main").text
        assert_no_console_errors(browser)
    finally:
        assert web.stop() == 0, web.log
    status = planned.json("consent", "status", MARIE)
    assert (status["consent"], status["source"]) == ("opted_out", "contact")
    event = last_event(planned, MARIE)
    assert (event["action"], event["source"], event["method"]) == ("opt_out", "contact", "web form")


#: Balance reminders are required by Agence du Lac in the settings page's test.
REQUIRED_BALANCE = "post_departure = 7\n\n[agency.required]\nbalance_due = true\n"


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    """Where a test leaves what a person may want to look at (REMINDERS_TEST_ARTEFACTS)."""
    folder = Path(os.environ.get("REMINDERS_TEST_ARTEFACTS") or tmp_path / "artefacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def switch_of(browser: WebDriver, kind: str) -> Any:
    [switch] = browser.find_elements(By.CSS_SELECTOR, f"button[role=switch][data-kind={kind}]")
    return switch


def test_a_contact_switches_off_one_kind_from_the_settings_link_of_a_reminder(
    planned: Workspace,
    planned_ids: Ids,
    mail_server: MailServer,
    browser: WebDriver,
    artefacts: Path,
) -> None:
    config = planned.config.read_text(encoding="utf-8")
    planned.write("reminders.toml", config.replace("post_departure = 7\n", REQUIRED_BALANCE, 1))
    port = free_port()
    env = smtp_env(mail_server, REMINDERS_WEB__BASE_URL=f"http://127.0.0.1:{port}")
    planned.ok("send", str(planned_ids[("B-1", "balance_due")]), env=env)
    [received] = mail_server.to(MARIE)
    link = re.search(rf"http://127\.0\.0\.1:{port}/settings/\S+", received.part("plain"))
    assert link, received.part("plain")
    assert MARIE not in link[0]
    assert f'href="{link[0]}"' in received.part("html")  # the HTML footer shows it too
    web = WebCommand(planned, port, env).start()
    try:
        browser.set_window_size(900, 1100)
        browser.get(link[0])
        assert browser.find_element(By.TAG_NAME, "h1").text == "Vos préférences e-mail"
        main = browser.find_element(By.TAG_NAME, "main").text
        assert MARIE in main and "Agence du Lac" in main
        assert "Confirmée : vous recevez nos e-mails." in main
        # A switch per kind the agency sends, but the required balance reminders.
        kinds = [
            b.get_attribute("data-kind")
            for b in browser.find_elements(By.CSS_SELECTOR, "button[role=switch]")
        ]
        assert kinds == ["arrival", "option_expiry", "post_departure"]
        assert "Rappels du solde à régler" in main and "Toujours envoyés" in main
        assert switch_of(browser, "post_departure").get_attribute("aria-checked") == "true"
        assert (
            switch_of(browser, "post_departure").value_of_css_property("background-color") == ACCENT
        )
        assert planned.json("consent", "status", MARIE)["kinds"] == {}  # GET changed nothing

        switch_of(browser, "post_departure").click()

        WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException]).until(
            lambda b: switch_of(b, "post_departure").get_attribute("aria-checked") == "false",
            message="the switch never turned off",
        )
        assert "Votre choix est enregistré." in browser.find_element(By.TAG_NAME, "main").text
        assert switch_of(browser, "arrival").get_attribute("aria-checked") == "true"
        assert browser.current_url.startswith(f"http://127.0.0.1:{port}/settings/")
        assert_no_console_errors(browser)
        screenshot = artefacts / "settings-page-fr.png"
        assert browser.save_screenshot(str(screenshot))
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        assert web.stop() == 0, web.log
    assert link[0].split("/settings/")[1] not in web.log
    status = planned.json("consent", "status", MARIE)
    assert (status["consent"], status["kinds"]) == ("ok", {"post_departure": False})
    event = last_event(planned, MARIE)
    assert (event["action"], event["source"], event["method"], event["kind"]) == (
        "refuse_kind",
        "contact",
        "web form",
        "post_departure",
    )
    assert "refused kinds: post_departure" in planned.ok("consent", "status", MARIE).stdout
    [refusal] = planned.json("consent", "report", "--kind", "Après départ")
    assert (refusal["address"], refusal["kind"], refusal["source"]) == (
        MARIE,
        "post_departure",
        "contact",
    )
