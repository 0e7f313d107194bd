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

from serving.rollout.state import Releases
from store.releases import Event, Release
from store.samples import parse_feedback
from tests.model_server_process import app_server, model_server
from tests.stores import Opened, make_token, sqlite_url

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
        options.add_argument(flag)
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    with (
        model_server(
            "--model_name=tagger", f"--model_base_path={root / 'models' / 'tagger'}", log_dir=root
        ) as models,
        app_server(
            f"--model-url=http://127.0.0.1:{models.port}", f"--feedback={database}", log_dir=root
        ) as app,
    ):
        browser = webdriver.Chrome(options=options, service=service)
        try:
            browser.get(f"http://127.0.0.1:{app.port}/")
            yield browser, database
        finally:
            browser.quit()


def chips(browser) -> list[str]:
    return [
        li.find_element(By.TAG_NAME, "span").text
        for li in browser.find_elements(By.CSS_SELECTOR, "#tags li")
    ]


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
        row = db.execute(
            "SELECT title, actual, model_version, status FROM feedback WHERE id = ?", (feedback_id,)
        ).fetchone()
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


@pytest.fixture(scope="module")
def reviewer_token(page) -> str:
    _, database = page
    return make_token(sqlite_url(database), "page-reviewer", "reviewer")


def keys(browser, *sent) -> None:
    """Keys to whatever has the focus, as a person with a keyboard sends them."""
    browser.switch_to.active_element.send_keys(*sent)


def test_a_reviewer_decides_the_queue_with_the_keyboard_alone(page, reviewer_token):
    browser, database = page
    store = Opened.at(sqlite_url(database))
    try:
        for title, tag in [
            ("zig comptime generics", "ziglang"),
            ("zig allocators", "ziglang"),
            ("<b>bold</b> claims", "zzspam"),
        ]:
            store.add(parse_feedback({"title": title, "actual": [tag]}))
    finally:
        store.close()
    browser.get(browser.current_url)
    assert not browser.find_element(By.ID, "review").is_displayed()  # not for anyone
    summary = browser.find_element(By.CSS_SELECTOR, "#sign-in summary")
    browser.execute_script("arguments[0].focus()", summary)
    keys(browser, Keys.ENTER)  # opens the sign-in
    keys(browser, Keys.TAB)
    keys(browser, reviewer_token, Keys.ENTER)
    WebDriverWait(browser, 20).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "#queue li h3"))
    )
    items = browser.find_elements(By.CSS_SELECTOR, "#queue > li")
    assert [i.find_element(By.TAG_NAME, "h3").text for i in items] == ["ziglang", "zzspam"]
    assert "2 samples from 1 sources" in items[0].text and "zig allocators" in items[0].text
    assert items[1].find_element(By.CSS_SELECTOR, "ul li").text == "<b>bold</b> claims"
    # From the page heading: Tab to the first tag's alias box, type, Tab, Enter.
    browser.execute_script("document.getElementById('review-heading').focus()")
    keys(browser, Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "alias-ziglang"
    keys(browser, "python", Keys.TAB, Keys.ENTER)
    WebDriverWait(browser, 20).until(
        ec.text_to_be_present_in_element((By.ID, "review-status"), "ziglang: accepted as python")
    )
    # The focus moved on to the next tag; three Tabs reach its Reject button.
    assert browser.switch_to.active_element.get_attribute("id") == "alias-zzspam"
    keys(browser, Keys.TAB, Keys.TAB, Keys.TAB, Keys.ENTER)
    WebDriverWait(browser, 20).until(
        ec.text_to_be_present_in_element((By.ID, "review-status"), "zzspam: rejected")
    )
    with sqlite3.connect(database) as db:
        decided = dict(
            db.execute(
                "SELECT tag, status || ':' || COALESCE(alias_of, '') || ':' "
                "|| decided_by FROM tag_review WHERE tag IN "
                "('ziglang', 'zzspam')"
            ).fetchall()
        )
        released = db.execute("SELECT actual, status FROM feedback WHERE title LIKE 'zig %'")
        assert sorted(released.fetchall()) == [('["python"]', "accepted")] * 2
    assert decided == {
        "ziglang": "accepted:python:page-reviewer",
        "zzspam": "rejected::page-reviewer",
    }
    assert browser.execute_script("return window.pwned === undefined")


def test_an_operator_sees_the_release_and_rolls_the_canary_back_with_a_reason(page):
    browser, database = page
    token = make_token(sqlite_url(database), "page-operator", "operator")
    store = Opened.at(sqlite_url(database))
    try:
        releases = Releases(store.db, "tagger")
        before = releases.current()
        canary = Release(
            stable="1", canary="2", mode="canary", share=0.1, stage=1, stage_since=1.7e9
        )
        assert releases.change(before, canary, Event("2", "canary", "newly pushed"))
    finally:
        store.close()
    browser.execute_script("sessionStorage.clear()")
    browser.get(browser.current_url)
    assert not browser.find_element(By.ID, "release").is_displayed()  # not for anyone
    browser.execute_script(f"sessionStorage.setItem('token', {json.dumps(token)})")
    browser.get(browser.current_url)
    WebDriverWait(browser, 20).until(ec.visibility_of_element_located((By.ID, "release")))
    assert browser.find_element(By.ID, "release-canary").text == "2"
    assert browser.find_element(By.ID, "release-mode").text == "canary for 10 % of clients"
    assert (
        "version 2 canary by controller: newly pushed"
        in browser.find_element(By.ID, "release-events").text
    )
    browser.find_element(By.ID, "rollback").click()
    assert "Say why" in browser.find_element(By.ID, "release-status").text
    browser.find_element(By.ID, "release-reason").send_keys("users report wrong tags")
    browser.find_element(By.ID, "rollback").click()
    WebDriverWait(browser, 20).until(
        ec.text_to_be_present_in_element((By.ID, "release-status"), "Rolled back.")
    )
    assert browser.find_element(By.ID, "release-canary").text == "none"
    with sqlite3.connect(database) as db:
        (row,) = db.execute(
            "SELECT version, action, reason, actor FROM rollout_event WHERE action = 'rolled_back'"
        ).fetchall()
        status = db.execute("SELECT status FROM rollout_version WHERE version = '2'").fetchone()
    assert row == ("2", "rolled_back", "users report wrong tags", "page-operator")
    assert status == ("rejected",)
