"""The web page in a real headless browser: Debian's chromium, driven by selenium (no browser download).

A fixed user signs in, enqueues a task from the page and watches it go queued → running →
completed while a scripted agent (API calls, as clearml-agent makes them) runs it, reads its log,
aborts one task and re-queues another, and makes an access key whose secret the page shows once.
A browser that cannot start fails the test: it is never skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from clearml_core.server.fixed_users import FixedUser, user_id
from clearml_core.testing.clearml_server import ApiClient
from tests.server.support import LocalServer, local_server

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORD = "correct horse battery staple"
WAIT_SEC = 30


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    for path in (CHROMIUM, CHROMEDRIVER):
        assert Path(path).exists(), (
            f"{path} is missing: apt-get install chromium chromium-driver (scripts/test.sh does)"
        )
    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    users = (FixedUser("jane", PASSWORD, "Jane Doe", user_id("d1bd92a3b039400cbafc60a7a5b1e52b", "jane")),)
    with local_server(tmp_path / "server", fixed_users_enabled=True, fixed_users=users) as running:
        yield running


def wait(driver: WebDriver, what: str, condition) -> None:  # type: ignore[no-untyped-def]
    WebDriverWait(driver, WAIT_SEC, poll_frequency=0.1).until(
        lambda d: condition(d), message=f"waiting for {what}"
    )


def text_of(driver: WebDriver, selector: str) -> str:
    """The text of the element ``selector`` finds now (the page redraws its tables as it refreshes,
    so elements are read in one step rather than held)."""
    script = "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';"
    return str(driver.execute_script(script, selector))


def status_of(driver: WebDriver, task_id: str) -> str:
    return text_of(driver, f'tr[data-task-id="{task_id}"] td.status')


def click(driver: WebDriver, selector: str) -> None:
    """Click what ``selector`` finds, through a redraw if one happens in between."""

    def clicked(d: WebDriver) -> bool:
        script = (
            "const e = document.querySelector(arguments[0]); if (!e) return false; e.click(); return true;"
        )
        return bool(d.execute_script(script, selector))

    wait(driver, f"{selector} to click", clicked)


def click_action(driver: WebDriver, task_id: str, action: str) -> None:
    click(driver, f'tr[data-task-id="{task_id}"] button[data-action="{action}"]')


def send_log(agent: ApiClient, task_id: str, *lines: str) -> None:
    batch = "\n".join(
        json.dumps({"type": "log", "task": task_id, "level": "info", "msg": line}) for line in lines
    )
    headers = {"Authorization": f"Bearer {agent.token}", "Content-Type": "application/json-lines"}
    assert agent.request("POST", "/events.add_batch", batch.encode(), headers)[0] == 200


def test_sign_in_follow_a_task_to_completed_read_its_log_abort_and_requeue(
    server: LocalServer, browser: WebDriver
) -> None:
    agent = server.client()
    queue = agent.call("queues.get_default").data["id"]
    task_id = agent.call("tasks.create", {"name": "trained on the page", "type": "training"}).data["id"]
    other = agent.call("tasks.create", {"name": "to abort", "type": "training"}).data["id"]

    browser.get(server.web_url)
    wait(browser, "the sign-in form", lambda d: d.find_element(By.ID, "login-form").is_displayed())
    browser.find_element(By.ID, "username").send_keys("jane")
    browser.find_element(By.ID, "password").send_keys("wrong password")
    browser.find_element(By.ID, "login-button").click()
    wait(browser, "the refusal", lambda d: "invalid credentials" in d.find_element(By.ID, "login-error").text)
    browser.find_element(By.ID, "password").clear()
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-button").click()
    wait(browser, "the board", lambda d: d.find_element(By.ID, "board").is_displayed())
    assert browser.find_element(By.ID, "who").text == "Jane Doe"
    wait(browser, "the task list", lambda d: status_of(d, task_id) == "created")

    click_action(browser, task_id, "enqueue")
    wait(browser, "queued", lambda d: status_of(d, task_id) == "queued")
    wait(browser, "the queue's count", lambda d: text_of(d, 'tr[data-queue="default"] td.waiting') == "1")

    worker = {"Authorization": f"Bearer {agent.token}", "X-ClearML-Worker": "web-agent"}
    agent.call("workers.register", {"worker": "web-agent", "queues": [queue]}, headers=worker)
    assert (
        agent.call("queues.get_next_task", {"queue": queue}, headers=worker).data["entry"]["task"] == task_id
    )
    agent.call("tasks.started", {"task": task_id, "force": True}, headers=worker)
    wait(browser, "running", lambda d: status_of(d, task_id) == "in_progress")
    wait(
        browser,
        "the worker's task",
        lambda d: text_of(d, 'tr[data-worker="web-agent"] td.running') == "trained on the page",
    )

    click(browser, f'tr[data-task-id="{task_id}"] td.name')
    send_log(agent, task_id, "epoch 1: loss 0.9", "epoch 2: loss 0.4")
    wait(browser, "the live log", lambda d: "epoch 2: loss 0.4" in text_of(d, "#task-log"))
    send_log(agent, task_id, "saved the model")
    agent.call("tasks.completed", {"task": task_id}, headers=worker)
    wait(browser, "completed", lambda d: status_of(d, task_id) == "completed")
    wait(
        browser,
        "the last log line",
        lambda d: text_of(d, "#task-log").splitlines()[-1:] == ["saved the model"],
    )
    assert '"status": "completed"' in text_of(browser, "#task-record")

    agent.call("tasks.enqueue", {"task": other, "queue": queue})
    wait(browser, "the second task queued", lambda d: status_of(d, other) == "queued")
    click_action(browser, other, "abort")
    wait(browser, "aborted", lambda d: status_of(d, other) == "stopped")

    click_action(browser, task_id, "requeue")
    wait(browser, "re-queued", lambda d: status_of(d, task_id) == "queued")
    assert agent.call("tasks.get_by_id", {"task": task_id}).data["task"]["execution"]["queue"] == queue

    assert PASSWORD not in browser.page_source
    assert not browser.execute_script("return document.cookie")  # the session cookie is HttpOnly


def test_an_access_key_made_on_the_page_shows_its_secret_once(
    server: LocalServer, browser: WebDriver
) -> None:
    browser.get(server.web_url)
    wait(browser, "the sign-in form", lambda d: d.find_element(By.ID, "login-form").is_displayed())
    browser.find_element(By.ID, "username").send_keys("jane")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-button").click()
    wait(browser, "the board", lambda d: d.find_element(By.ID, "account").is_displayed())

    browser.find_element(By.ID, "new-key").click()
    wait(browser, "the new key", lambda d: "secret_key" in d.find_element(By.ID, "key-text").text)
    text = browser.find_element(By.ID, "key-text").text
    access_key = text.split('access_key: "')[1].split('"')[0]
    secret = text.split('secret_key: "')[1].split('"')[0]
    by_key = ApiClient(server.api_url, access_key, secret)
    assert by_key.login()

    browser.find_element(By.ID, "key-done").click()
    browser.refresh()
    wait(browser, "the board again", lambda d: d.find_element(By.ID, "board").is_displayed())
    assert secret not in browser.page_source
    browser.find_element(By.ID, "sign-out").click()
    wait(browser, "signed out", lambda d: d.find_element(By.ID, "login-form").is_displayed())
    browser.refresh()
    wait(browser, "still signed out", lambda d: d.find_element(By.ID, "login-form").is_displayed())
