"""The console in a real headless browser (Debian's Chromium driven by Playwright) against a real
`pedro-ingest serve` and worker: sign in, find a failed payment by its payment id, fix its cause, replay
it, see it processed and the user's balance change. Each page's screenshot is written under the test's
temporary folder (and, with PEDRO_CONSOLE_SCREENSHOTS=<dir>, there too: that is how README's images are
made).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from models.base import new_id
from tests.support.asaas import asaas_payment_event, deliver_asaas
from tests.support.ledger import balance, make_plan, make_user, settle
from tests.support.processes import serving
from tests.support.servers import scalar
from workers.jobs.reconcile import reconcile

pytestmark = pytest.mark.slow  # Chromium

PASSWORD = "browser-test-password-1"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def ensure_chromium() -> Path:
    """Debian's chromium, installed here when missing (as root, from the package registry)."""
    if not CHROMIUM.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], env=env, check=True, capture_output=True)
    assert CHROMIUM.exists(), "install Debian's chromium (apt-get install chromium) to run the console browser test"
    return CHROMIUM


@pytest.fixture(scope="module")
def console_server(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {**service_env, "CONSOLE_PASSWORD": PASSWORD}
    with serving(env, tmp_path_factory.mktemp("console") / "receiver.log") as (process, url):
        yield process.ops_url  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def shoot(page, name: str, folder: Path) -> Path:
    """A full-page screenshot; also copied to PEDRO_CONSOLE_SCREENSHOTS when set (README's images)."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"{name}: the screenshot looks empty"
    if os.environ.get("PEDRO_CONSOLE_SCREENSHOTS"):
        target = Path(os.environ["PEDRO_CONSOLE_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / f"console-{name}.png")
    return path


def test_support_finds_a_failed_payment_replays_it_and_sees_the_credits(
    engine: Engine, worker, receiver_url: str, console_server: str, browser, tmp_path: Path
) -> None:
    user_id, clerk_id = make_user(engine, 40)
    reconcile(fix=False, clerk_user_id=clerk_id, engine=engine)
    plan_id, pay = new_id(), f"pay_{secrets.token_hex(6)}"  # the plan the web app names does not exist yet
    payment = asaas_payment_event("PAYMENT_RECEIVED", pay, external_reference=f"{clerk_id}|plan:{plan_id}")
    deliver_asaas(receiver_url, payment)
    settle(engine, 1)
    assert scalar(engine, 'SELECT "lastError" FROM "WebhookEvent"') == "unlinked_plan"

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{console_server}/console/")
    assert "/console/login" in page.url
    shoot(page, "login", tmp_path)
    page.fill("input[name=password]", "wrong password!")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "wrong password"
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")
    assert page.locator("h1").first.inner_text().startswith("Overview")
    shoot(page, "overview", tmp_path)

    page.click("text=Events")
    page.fill("input[name=payment]", pay)
    page.click("button:has-text('Filter')")
    rows = page.locator("tbody tr")
    assert rows.count() == 1 and "failed" in rows.first.inner_text()
    shoot(page, "events", tmp_path)
    rows.first.locator("a").click()
    assert "unlinked_plan" in page.locator("[role=alert]").inner_text()

    # Support finds the cause (no such plan), the web app creates the plan, then support replays.
    make_plan(engine, 500, plan_id=plan_id)  # the cause is fixed: the plan exists now
    page.click("text=Replay…")
    page.click("button:has-text('Replay this event')")
    assert "Replay enqueued" in page.locator("[role=status]").inner_text()
    for _ in range(60):  # the worker applies it in a moment: reload until the badge says so
        if "processed" in page.locator("h1 .status").inner_text():
            break
        page.wait_for_timeout(500)
        page.reload()
    assert "processed" in page.locator("h1 .status").inner_text()
    assert "asaas:payment:" + pay in page.content()
    shoot(page, "event", tmp_path)

    page.click(f"a:has-text('{clerk_id}')")
    assert page.locator(".stat b").first.inner_text() == "540"
    assert "reconciles" in page.locator(".stat b").nth(1).inner_text()
    shoot(page, "user", tmp_path)
    assert balance(engine, user_id) == 540

    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the page still renders
    page.reload()
    shoot(page, "user-phone", tmp_path)
    context.close()


def test_an_injected_inline_script_does_not_run_and_a_copied_cookie_dies_at_sign_out(
    engine: Engine, console_server: str, browser
) -> None:
    """An attacker's `<script>` in a console page (as if a payload escaped escaping) is blocked by the CSP
    nonce while the page's own script runs; a session cookie copied before sign-out is refused after it."""
    context = browser.new_context()
    page = context.new_page()
    blocked: list[str] = []
    page.on("console", lambda message: blocked.append(message.text))

    def inject(route) -> None:  # the real answer, headers (CSP) and all, with a script added to its HTML
        answer = route.fetch()
        html = answer.text().replace(
            "</main>", "<script>window.injected = 1</script><time datetime='2026-01-01T00:00Z'>t</time></main>"
        )
        route.fulfill(response=answer, body=html)

    page.goto(f"{console_server}/console/login")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")
    page.route("**/console/events", inject)
    page.goto(f"{console_server}/console/events")
    assert page.evaluate("typeof window.injected") == "undefined"
    assert page.locator("time[datetime='2026-01-01T00:00Z']").get_attribute("title")  # the page's own script ran
    assert any("Content Security Policy" in text for text in blocked), blocked

    copied = [cookie for cookie in context.cookies() if cookie["name"] == "pedro_console"]
    assert copied
    thief = browser.new_context()
    thief.add_cookies(copied)
    stolen = thief.new_page()
    stolen.goto(f"{console_server}/console/")
    assert stolen.url.endswith("/console/")  # the copy works while the operator is signed in

    page.unroute("**/console/events")
    page.click("text=Sign out")
    page.wait_for_url("**/console/login")
    stolen.goto(f"{console_server}/console/")
    assert "/console/login" in stolen.url  # refused after sign-out
    thief.close()
    context.close()
