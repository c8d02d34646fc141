"""``conveyor dashboard``, run as a real command and driven in a real headless Chromium.

The browser is Debian's ``chromium`` driven through its ``chromedriver`` (selenium), one
browser for the whole session.  Without them the browser tests skip with a reason,
except under ``CI=true``, where they fail: ``.ci/run`` installs both.

``CONVEYOR_UPDATE_SCREENSHOT=1`` makes the happy path on Redis also write the README's
screenshot, ``docs/dashboard.png``, after a few seconds of traffic for the charts.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor._stores import open_existing_store
from tests.backends.durable_fixtures import durable_url, queue_name
from tests.backends.redis_backend import RedisServer, private_server

__all__ = ["durable_url", "private_server", "queue_name"]

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "dashboard.png"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)
WAIT = 15.0

if os.environ.get("CI", "").lower() != "true":  # CI installs the extra: there it must run
    pytest.importorskip("starlette", reason="the dashboard extra is not installed")

# -- the command --------------------------------------------------------------------------


class Dashboard:
    """One ``conveyor dashboard`` process, listening on a free port."""

    def __init__(self, url: str, *options: str) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]))
        env.pop("CONVEYOR_DASHBOARD_TOKEN", None)
        command = [sys.executable, "-m", "conveyor", "dashboard", url, "--port", "0"]
        self.process = subprocess.Popen(
            [*command, "--interval", "0.2", *options],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.banner = self.process.stdout.readline()
        found = re.search(r"at http://[^ ]+:(\d+)/", self.banner)
        if found is None:
            self.process.kill()
            _, err = self.process.communicate(timeout=30)
            raise AssertionError(f"the dashboard did not start: {self.banner!r} {err!r}")
        self.port = int(found.group(1))
        self.base = f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        """Send one HTTP request; return the status, the headers and the body."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            sent = dict(headers or {})
            if body is not None:
                sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode()
        finally:
            connection.close()

    def csrf(self, headers: dict[str, str] | None = None) -> str:
        """Return the CSRF token the page carries."""
        status, _, page = self.request("GET", "/", headers=headers)
        assert status == 200, page
        found = re.search(r'name="conveyor-csrf" content="([^"]+)"', page)
        assert found is not None
        return found.group(1)

    def stop(self) -> tuple[int, str, str]:
        """Stop it as Ctrl-C would; return its exit status and what it printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            out, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        return self.process.returncode, self.banner + out, err


@pytest.fixture
def start() -> Iterator[Callable[..., Dashboard]]:
    """``start(url, *options)``: a running dashboard, stopped (and checked) after the test."""
    started: list[Dashboard] = []

    def start_(url: str, *options: str) -> Dashboard:
        dashboard = Dashboard(url, *options)
        started.append(dashboard)
        return dashboard

    yield start_
    for dashboard in started:
        status, _, err = dashboard.stop()
        assert status == 0, err
        assert "Traceback" not in err


def run_dashboard(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``conveyor dashboard ARGS`` to its end (for the refusals)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]))
    return subprocess.run(
        [sys.executable, "-m", "conveyor", "dashboard", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
        check=False,
    )


# -- the browser --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session (skips without it; fails under ``CI=true``)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium")
    if missing:
        reason = f"no headless browser ({', '.join(missing)} missing): apt install chromium"
        reason += " chromium-driver; pip install selenium"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI must run the browser tests")
        pytest.skip(reason)
    profile = tempfile.mkdtemp(prefix="conveyor-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (*CHROMIUM_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(browser: Any, condition: Callable[[], Any], what: str) -> Any:
    """Wait until *condition* returns something true, and return it."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def check(_: Any) -> Any:
        try:
            return condition()
        except StaleElementReferenceException:
            return False  # the page redrew the element meanwhile: look again

    return WebDriverWait(browser, WAIT).until(check, f"waited {WAIT} s for {what}")


def texts(browser: Any, selector: str) -> list[str]:
    """Return the text of every element that *selector* matches."""
    return [node.text for node in browser.find_elements("css selector", selector)]


# -- the queue ------------------------------------------------------------------------------


async def fill(url: str, name: str) -> None:
    """Leave queue *name* with 3 ready items, 1 leased, 2 dead letters and a bound of 20."""
    async with conveyor.open_queue(url, name=name, maxsize=20):
        pass
    async with open_existing_store(url, name) as store:
        items = ["dead-1", "dead-2", "leased", {"job": "a", "n": 1}, "b", "c"]
        assert await store.put([json.dumps(item).encode() for item in items])
        for delivery in await store.claim(2, 600, None):
            assert await store.fail(delivery.receipt, "ValueError: broken input")
        assert len(await store.claim(1, 600, None)) == 1


async def traffic(url: str, name: str, seconds: float) -> None:
    """Put and take items for *seconds*, in waves, so that the charts have a shape."""
    async with conveyor.open_queue(url, name=name) as queue:
        assert isinstance(queue, conveyor.DurableQueue)
        started = time.monotonic()
        wave = 0
        while time.monotonic() - started < seconds:
            wave += 1
            size = 2 + wave % 6  # the bound is 20: depth stays under it
            await queue.put_many([{"wave": wave, "n": n} for n in range(size)])
            await asyncio.sleep(0.5)
            for _ in range(size):
                await queue.get(timeout=5)
                queue.task_done()
                await asyncio.sleep(0.05)


async def state(url: str, name: str) -> tuple[Any, list[str], list[str]]:
    """Return the queue's counts, the ids of its next items and of its dead letters."""
    async with open_existing_store(url, name) as store:
        counts = await store.counts()
        peeked = [item.item_id for item in await store.peek(20)]
        dead = [letter.item_id for letter in await store.dead_letters(100)]
    return counts, peeked, dead


# -- the tests ------------------------------------------------------------------------------


async def test_the_page_shows_the_store_and_requeues_a_dead_letter(
    durable_url: str,
    queue_name: str,
    start: Callable[..., Dashboard],
    browser: Any,
    tmp_path: Path,
) -> None:
    await fill(durable_url, queue_name)
    dashboard = start(durable_url)
    assert "Traceback" not in dashboard.banner
    browser.get(dashboard.base + "/")
    row = f'#queues tr[data-queue="{queue_name}"]'
    wait_for(browser, lambda: browser.find_elements("css selector", row), "the queue's row")
    counts, peeked, dead = await state(durable_url, queue_name)

    def cells() -> dict[str, str]:
        found = browser.find_elements("css selector", f"{row} td[data-field]")
        return {cell.get_attribute("data-field"): cell.text for cell in found}

    expected = {"ready": "3", "delayed": "0", "leased": "1", "dead": "2", "maxsize": "20"}
    assert (counts.ready, counts.delayed, counts.leased, counts.dead) == (3, 0, 1, 2)
    wanted = {**expected, "state": "open"}
    wait_for(browser, lambda: {k: cells().get(k) for k in wanted} == wanted, "the counts")

    browser.find_element("css selector", f"{row} a").click()
    wait_for(browser, lambda: texts(browser, "#dead tbody tr td:first-child") == dead, "dead")
    wait_for(browser, lambda: texts(browser, "#peek tbody tr td:nth-child(2)") == peeked, "peek")
    shown = {
        node.get_attribute("data-field"): node.text
        for node in browser.find_elements("css selector", "#counts dd")
    }
    assert {k: shown[k] for k in expected} == expected
    assert '{"job": "a", "n": 1}' in texts(browser, "#peek tbody td.item")
    assert browser.find_elements("css selector", "#depth-chart polyline")

    first = dead[0]
    browser.find_element("css selector", f'#dead tr[data-id="{first}"] button.requeue').click()
    wait_for(browser, lambda: texts(browser, "#dead tbody tr td:first-child") == dead[1:], "move")
    wait_for(browser, lambda: first in texts(browser, "#peek tbody tr td:nth-child(2)"), "ready")
    wait_for(browser, lambda: browser.find_element("css selector", '#counts [data-field="dead"]')
             .text == "1", "the dead count")  # fmt: skip
    counts, peeked, dead_after = await state(durable_url, queue_name)
    assert (counts.ready, counts.leased, counts.dead) == (4, 1, 1)
    assert dead_after == dead[1:]
    assert first in peeked
    assert browser.find_element("css selector", "#error").get_attribute("hidden") is not None

    browser.save_screenshot(str(tmp_path / "dashboard.png"))
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    if os.environ.get("CONVEYOR_UPDATE_SCREENSHOT") == "1" and durable_url.startswith("redis"):
        await traffic(durable_url, queue_name, 12.0)
        wait_for(browser, lambda: browser.find_elements("css selector", "#rate-chart polyline"),
                 "the rates")  # fmt: skip
        SCREENSHOT.parent.mkdir(exist_ok=True)
        browser.save_screenshot(str(SCREENSHOT))

    browser.find_element("css selector", "#purge-dead").click()
    browser.switch_to.alert.accept()  # "Delete every dead letter of ...?"
    wait_for(browser, lambda: texts(browser, "#dead tbody tr") == [], "the purge")
    counts, _, dead_after = await state(durable_url, queue_name)
    assert (counts.dead, dead_after) == (0, [])


async def test_rates_are_shown_where_the_store_counts_them(
    durable_url: str, queue_name: str, start: Callable[..., Dashboard]
) -> None:
    await fill(durable_url, queue_name)
    dashboard = start(durable_url)
    async with conveyor.open_queue(durable_url, name=queue_name) as queue:
        await queue.put_many(list(range(10)))
    deadline = time.monotonic() + WAIT
    while True:
        status, _, body = dashboard.request("GET", f"/api/queue?name={queue_name}")
        assert status == 200, body
        detail = json.loads(body)
        if detail["ready"] == 13 or time.monotonic() > deadline:
            break
    assert detail["ready"] == 13
    # Both stores count puts and finished items (SQLite from schema 4).
    assert detail["counted"] is True
    rates = [point[5] for point in detail["history"] if point[5] is not None]
    assert any(rate > 0 for rate in rates)


async def test_a_missing_queue_is_a_clear_404(
    durable_url: str, queue_name: str, start: Callable[..., Dashboard], browser: Any
) -> None:
    await fill(durable_url, queue_name)
    dashboard = start(durable_url)
    status, _, body = dashboard.request("GET", f"/api/queue?name={queue_name}-missing")
    assert status == 404
    assert json.loads(body)["error"].startswith(f"no queue '{queue_name}-missing' in ")
    status, _, _ = dashboard.request("GET", f"/queue?name={queue_name}-missing")
    assert status == 404
    csrf = dashboard.csrf()
    status, _, body = dashboard.request(
        "POST", f"/api/queue/purge?name={queue_name}-missing", "which=all", {"X-CSRF-Token": csrf}
    )
    assert status == 404, body
    browser.get(f"{dashboard.base}/queue?name={queue_name}-missing")
    wait_for(browser, lambda: "no queue" in browser.find_element("css selector", "#error").text,
             "the error")  # fmt: skip
    async with conveyor.open_queue(durable_url, name=queue_name) as queue:
        assert isinstance(queue, conveyor.DurableQueue)
    from conveyor._stores import list_queues

    assert f"{queue_name}-missing" not in await list_queues(durable_url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("nosuch://x", "unknown queue URL scheme"),
        ("memory://", "in-memory queue"),
        ("sqlite:///{tmp}/none.db", "no SQLite queue file"),
        ("redis://:s3cret@127.0.0.1:1/0?retry_timeout=0.5", "127.0.0.1:1"),
    ],
)
def test_a_bad_url_is_one_line_and_exit_status_1(url: str, expected: str, tmp_path: Path) -> None:
    done = run_dashboard(url.format(tmp=tmp_path))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("conveyor dashboard: error: ")
    assert expected in lines[0]
    assert "s3cret" not in done.stderr + done.stdout
    assert not (tmp_path / "none.db").exists()


def test_an_address_in_use_is_one_line_and_exit_status_1(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    asyncio.run(fill(url, "jobs"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        done = run_dashboard(url, "--port", str(taken.getsockname()[1]))
    assert done.returncode == 1
    assert done.stderr.startswith("conveyor dashboard: error: ")
    assert "in use" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


async def test_changes_need_the_csrf_token_and_a_loopback_host(
    tmp_path: Path, start: Callable[..., Dashboard]
) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    await fill(url, "jobs")
    dashboard = start(url)
    purge = "/api/queue/purge?name=jobs"
    assert dashboard.request("POST", purge, "which=all")[0] == 403
    assert dashboard.request("POST", purge, "which=all", {"X-CSRF-Token": "guess"})[0] == 403
    csrf = dashboard.csrf()
    evil = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    assert dashboard.request("POST", purge, "which=all", evil)[0] == 403
    # A page of another site that rebinds its name to 127.0.0.1 sends its own Host.
    status, _, body = dashboard.request("GET", "/api/overview", headers={"Host": "evil.example"})
    assert (status, json.loads(body)["error"]) == (421, "this dashboard answers on a loopback"
                                                   " address only")  # fmt: skip
    counts, _, _ = await state(url, "jobs")
    assert (counts.ready, counts.dead) == (3, 2)  # nothing refused changed anything

    headers = {"X-CSRF-Token": csrf, "Origin": dashboard.base}
    status, _, body = dashboard.request("POST", purge, "which=nothing", headers)
    assert status == 400, body
    status, _, body = dashboard.request("POST", purge, "which=dead", headers)
    assert (status, json.loads(body)) == (200, {"purged": 2})
    status, _, body = dashboard.request("POST", "/api/queue/requeue?name=jobs", "all=1", headers)
    assert (status, json.loads(body)) == (200, {"requeued": 0})
    status, headers_seen, _ = dashboard.request("GET", "/")
    assert headers_seen["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers_seen["content-security-policy"]


async def test_read_only_hides_the_buttons_and_refuses_changes(
    tmp_path: Path, start: Callable[..., Dashboard], browser: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    await fill(url, "jobs")
    dashboard = start(url, "--read-only")
    assert "read-only" in dashboard.banner
    browser.get(f"{dashboard.base}/queue?name=jobs")
    wait_for(browser, lambda: len(texts(browser, "#dead tbody tr")) == 2, "the dead letters")
    assert browser.find_elements("css selector", "button") == []
    csrf = dashboard.csrf()
    for path, form in (("purge", "which=all"), ("requeue", "all=1")):
        status, _, body = dashboard.request(
            "POST", f"/api/queue/{path}?name=jobs", form, {"X-CSRF-Token": csrf}
        )
        assert status == 403
        assert "read-only" in json.loads(body)["error"]
    counts, _, _ = await state(url, "jobs")
    assert (counts.ready, counts.dead) == (3, 2)


async def test_a_token_guards_every_page_and_never_prints(
    tmp_path: Path, start: Callable[..., Dashboard], browser: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    await fill(url, "jobs")
    token = "t0k3n-" + os.urandom(8).hex()
    # On every interface: the Host check is off there, and the token is what guards it.
    dashboard = start(url, "--host", "0.0.0.0", "--token", token)
    for path in ("/", "/api/overview", "/api/events", "/static/app.js", "/queue?name=jobs"):
        assert dashboard.request("GET", path)[0] == 401, path
        assert dashboard.request("GET", path, headers={"Authorization": "Bearer no"})[0] == 401
    bearer = {"Authorization": f"Bearer {token}"}
    assert dashboard.request("GET", "/api/overview", headers=bearer)[0] == 200
    status, headers, _ = dashboard.request("GET", f"/queue?name=jobs&token={token}")
    assert status == 303
    assert headers["location"] == "/queue?name=jobs"  # the token leaves the address bar
    assert "HttpOnly" in headers["set-cookie"]
    assert "SameSite=strict" in headers["set-cookie"]

    browser.get(f"{dashboard.base}/?token={token}")
    wait_for(browser, lambda: texts(browser, '#queues tr[data-queue="jobs"] td[data-field="dead"]')
             == ["2"], "the queues, with the token")  # fmt: skip
    assert token not in browser.current_url
    browser.delete_all_cookies()
    status, out, err = dashboard.stop()
    assert status == 0, err
    assert token not in out + err


async def test_the_page_never_runs_what_an_item_holds(
    tmp_path: Path, start: Callable[..., Dashboard], browser: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    hostile = "<img src=x onerror=\"document.title='owned'\">"
    async with conveyor.open_queue(url, name="jobs") as queue:
        await queue.put(hostile)
        await queue.put("<script>document.title='owned'</script>")
    async with open_existing_store(url, "jobs") as store:
        assert await store.put([b"\x80\x04binary"])
    dashboard = start(url)
    browser.get(f"{dashboard.base}/queue?name=jobs")
    wait_for(browser, lambda: len(texts(browser, "#peek tbody tr")) == 3, "the items")
    items = texts(browser, "#peek td.item")
    assert items[0] == json.dumps(hostile)
    assert items[2].startswith("(8 bytes, not text)")
    assert browser.title == "jobs · conveyor dashboard"


async def test_a_store_that_goes_away_is_shown_and_then_read_again(
    private_server: RedisServer, start: Callable[..., Dashboard], browser: Any
) -> None:
    url = private_server.url
    await fill(url, "jobs")
    dashboard = start(url + "?retry_timeout=0.5")
    browser.get(dashboard.base + "/")
    dead = '#queues tr[data-queue="jobs"] td[data-field="dead"]'
    wait_for(browser, lambda: texts(browser, dead) == ["2"], "the queue")
    private_server.kill()
    state_cell = '#queues tr[data-queue="jobs"] td[data-field="state"]'
    wait_for(browser, lambda: "unreachable" in " ".join(texts(browser, state_cell)), "the error")
    private_server.start()  # its append-only file brings the queue back
    wait_for(browser, lambda: texts(browser, state_cell) == ["open"], "the queue again")
    assert texts(browser, dead) == ["2"]


def scripts_per_second(server: RedisServer, seconds: float) -> float:
    """Return how many scripts (each store read is one) the server ran per second."""

    def calls() -> int:
        found = re.search(r"calls=(\d+)", server.info("commandstats").get("cmdstat_evalsha", ""))
        return int(found.group(1)) if found else 0

    before = calls()
    time.sleep(seconds)
    return (calls() - before) / seconds


def test_the_store_is_read_as_often_however_many_pages_are_open(
    private_server: RedisServer, start: Callable[..., Dashboard]
) -> None:
    asyncio.run(fill(private_server.url, "jobs"))
    dashboard = start(private_server.url)  # one sample every 0.2 s
    pages: list[http.client.HTTPConnection] = []

    def open_page(path: str) -> None:
        page = http.client.HTTPConnection("127.0.0.1", dashboard.port, timeout=30)
        page.request("GET", path)
        response = page.getresponse()
        assert response.status == 200
        assert response.readline() == b"retry: 2000\n"  # the stream is open
        pages.append(page)

    try:
        open_page("/api/queue/events?name=jobs")
        time.sleep(0.5)
        one_page = scripts_per_second(private_server, 2.0)
        for _ in range(4):
            open_page("/api/events")
            open_page("/api/queue/events?name=jobs")
        time.sleep(0.5)
        nine_pages = scripts_per_second(private_server, 2.0)
    finally:
        for page in pages:
            page.close()
    # Per sample: counts, oldest age, totals, peek and dead letters of the one queue,
    # whoever watches.
    assert 5 / 0.2 * 0.7 < one_page < 5 / 0.2 * 1.3
    assert nine_pages < one_page * 1.3
