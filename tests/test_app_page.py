"""The web page in a real browser: Debian's headless Chromium, driven by Selenium through
Debian's chromium-driver, against the app and the model server on loopback."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.model_server_process import app_server, model_server

INJECTION = '<img src=x onerror="window.pwned=1">'


@pytest.fixture(scope="module")
def page(tmp_path_factory, tagger_model):
    root = tmp_path_factory.mktemp("page")
    shutil.copytree(tagger_model, root / "models" / "tagger" / "3")
    database = root / "feedback.db"
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={root / 'profile'}",
        "--window-size=390,844",
    ):  # a phone's width
        options.add_argument(flag)  # fmt: skip
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    with (
        model_server("--model_name=tagger", f"--model_base_path={root / 'models' / 'tagger'}",
                     log_dir=root) as models,
        app_server(f"--model-url=http://127.0.0.1:{models.port}", f"--feedback={database}",
                   log_dir=root) as app,
    ):  # fmt: skip
        browser = webdriver.Chrome(options=options, service=service)
        try:
            browser.get(f"http://127.0.0.1:{app.port}/")
            yield browser, database
        finally:
            browser.quit()


def chips(browser) -> list[str]:
    return [li.find_element(By.TAG_NAME, "span").text
            for li in browser.find_elements(By.CSS_SELECTOR, "#tags li")]  # fmt: skip


def status(browser, contains: str) -> str:
    WebDriverWait(browser, 20).until(ec.text_to_be_present_in_element((By.ID, "status"), contains))
    return browser.find_element(By.ID, "status").text


def ask(browser, title: str) -> None:
    box = browser.find_element(By.ID, "title")
    box.clear()
    box.send_keys(title, Keys.ENTER)  # the keyboard alone
    WebDriverWait(browser, 20).until(ec.text_to_be_present_in_element((By.ID, "asked"), title[:20]))


def test_tags_shown_corrected_and_the_feedback_stored(page):
    browser, database = page
    ask(browser, "How to merge two dicts in python")
    assert browser.find_element(By.ID, "version").text == "3"
    if not chips(browser):  # nothing above the threshold: start from a tag of our own
        add(browser, "python")
    shown = chips(browser)
    # Remove the first tag with the keyboard: focus its button, press Enter.
    browser.find_element(By.CSS_SELECTOR, "#tags li button").send_keys(Keys.ENTER)
    assert shown[0] not in chips(browser)
    extra = next(t for t in ("regex", "json", "xml") if t not in shown)
    add(browser, extra)
    expected = shown[1:] + [extra]
    assert chips(browser) == expected
    browser.save_screenshot(str(database.parent / "page.png"))  # for a person to look at
    browser.find_element(By.ID, "send").click()
    text = status(browser, "stored")
    feedback_id = int(text.split("#")[1].split()[0])
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT title, actual, model_version, status FROM feedback WHERE id = ?",
                         (feedback_id,)).fetchone()  # fmt: skip
    assert row[0] == "How to merge two dicts in python"
    assert sorted(json.loads(row[1])) == sorted(expected)
    assert row[2:] == ("3", "accepted")


def add(browser, tag: str) -> None:
    box = browser.find_element(By.ID, "new-tag")
    box.send_keys(tag, Keys.ENTER)


def test_what_a_person_types_is_shown_as_text_never_run(page):
    browser, database = page
    ask(browser, INJECTION)
    assert browser.find_element(By.ID, "asked").text == INJECTION
    add(browser, "<script>window.pwned=2</script>")
    assert "<script>window.pwned=2</script>" in chips(browser)
    assert browser.execute_script("return window.pwned === undefined")
    assert not browser.find_elements(By.CSS_SELECTOR, "#asked img, #tags script, #tags img")
    browser.find_element(By.ID, "send").click()
    assert "is not a tag" in status(browser, "Could not store")  # refused by the API too


def test_the_page_fits_a_phone_screen(page):
    browser, _ = page
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth"
    )
    assert overflow <= 0
