"""The operator console's routes and rules, on the operations app against real PostgreSQL and Redis.

Off without a password; every page and action refused without a session or Basic credentials; actions
need the CSRF token; wrong passwords are rate-limited; a replay from the console applies the event once
(real worker).
"""

from __future__ import annotations

import logging
import re
import secrets

import pytest
from sqlalchemy import Engine

from ingest.config.settings import load_settings
from ingest.http.operations_app import create_operations_app
from models.base import new_id
from tests.support.asaas import asaas_payment_event, deliver_asaas
from tests.support.ledger import balance, grant_rows, make_plan, make_user, settle
from tests.support.processes import wait_for
from tests.support.servers import scalar
from workers.jobs.reconcile import reconcile

PASSWORD = "correct horse battery staple"
PAGES = ["/console/", "/console/events", "/console/users", "/console/events/nope", "/console/users/nope"]


def console_app(**overrides):
    settings = load_settings(console_password=PASSWORD, console_login_attempts=3, **overrides)
    return create_operations_app(settings)


def signed_in(app):
    client = app.test_client()
    page = client.get("/console/login")
    assert page.status_code == 200
    answer = client.post("/console/login", data={"password": PASSWORD, "next": "/console/events"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/console/events")
    return client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def test_console_is_off_without_a_password(engine: Engine) -> None:
    app = create_operations_app(load_settings())
    client = app.test_client()
    for path in ["/console/", "/console/login", "/console/events"]:
        assert client.get(path).status_code == 404
    assert client.get("/healthz").status_code == 200  # the rest of the operations app is there


def test_a_short_console_password_is_refused_at_start() -> None:
    from ingest.config.settings import ConfigError

    with pytest.raises(ConfigError, match="CONSOLE_PASSWORD"):
        load_settings(console_password="short")


def test_every_page_and_action_needs_a_signed_in_operator(engine: Engine) -> None:
    client = console_app().test_client()
    for path in PAGES:
        answer = client.get(path)
        assert answer.status_code == 302 and "/console/login" in answer.headers["Location"], path
    for path in ["/console/events/x/replay", "/console/logout"]:
        assert client.post(path).status_code == 401
    assert client.get("/console/", headers={"Authorization": "Basic YWRtaW46d3Jvbmc="}).status_code == 401


def test_session_cookie_flags_and_basic_for_scripts(engine: Engine) -> None:
    app = console_app()
    client = app.test_client()
    answer = client.post("/console/login", data={"password": PASSWORD})
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Expires=" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS (or X-Forwarded-Proto: https) it is Secure
    tls = app.test_client().post("/console/login", data={"password": PASSWORD}, headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in tls.headers["Set-Cookie"]

    basic = app.test_client().get("/console/", auth=("admin", PASSWORD))
    assert basic.status_code == 200 and "Overview" in basic.text
    assert app.test_client().get("/console/", auth=("root", PASSWORD)).status_code == 401


def test_wrong_passwords_are_rate_limited_per_address(engine: Engine) -> None:
    app = console_app()
    address = f"10.9.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    client = app.test_client()
    for _ in range(3):
        answer = client.post("/console/login", data={"password": "nope"}, environ_base={"REMOTE_ADDR": address})
        assert answer.status_code == 401
    blocked = client.post("/console/login", data={"password": PASSWORD}, environ_base={"REMOTE_ADDR": address})
    assert blocked.status_code == 429 and "too many" in blocked.text
    other = app.test_client().post("/console/login", data={"password": PASSWORD})
    assert other.status_code == 302  # another address is not punished


def test_open_redirects_are_refused(engine: Engine) -> None:
    client = console_app().test_client()
    for target in ["https://evil.example/", "//evil.example/console/", "/elsewhere", "/console/\\evil"]:
        answer = client.post("/console/login", data={"password": PASSWORD, "next": target})
        assert answer.headers["Location"].endswith("/console/"), target


def test_replay_needs_the_csrf_token_and_applies_the_event_once(engine: Engine, worker, receiver_url, caplog) -> None:
    user_id, clerk_id = make_user(engine, 40)
    reconcile(fix=False, clerk_user_id=clerk_id, engine=engine)  # as beat does: the opening balance is booked
    plan_id, pay = new_id(), f"pay_{secrets.token_hex(6)}"  # the plan the web app names does not exist yet
    payment = asaas_payment_event("PAYMENT_RECEIVED", pay, external_reference=f"{clerk_id}|plan:{plan_id}")
    deliver_asaas(receiver_url, payment)
    settle(engine, 1)
    failed_id = scalar(engine, """SELECT id FROM "WebhookEvent" WHERE status = 'failed'""")
    assert failed_id
    make_plan(engine, 500, plan_id=plan_id)  # the cause is fixed: the plan exists now

    client = signed_in(console_app())
    found = client.get(f"/console/events?payment={pay}")
    assert found.status_code == 200 and f"/console/events/{failed_id}" in found.text
    detail = client.get(f"/console/events/{failed_id}")
    assert "unlinked_plan" in detail.text and "Replay" in detail.text
    confirm = client.get(f"/console/events/{failed_id}/replay")
    token = csrf_of(confirm.text)

    assert client.post(f"/console/events/{failed_id}/replay").status_code == 403
    assert client.post(f"/console/events/{failed_id}/replay", data={"csrf": "forged"}).status_code == 403
    assert scalar(engine, 'SELECT status FROM "WebhookEvent" WHERE id = :i', i=failed_id) == "failed"

    with caplog.at_level(logging.INFO, logger="pedro_ingest.console"):
        for _ in range(2):  # twice: the second finds it pending or processed, never a second grant
            answer = client.post(f"/console/events/{failed_id}/replay", data={"csrf": token})
            assert answer.status_code == 302
    assert any(r.getMessage() == "console replay" and r.event_row == failed_id for r in caplog.records)
    wait_for(lambda: scalar(engine, 'SELECT status FROM "WebhookEvent" WHERE id = :i', i=failed_id) == "processed")
    assert balance(engine, user_id) == 540
    assert len(grant_rows(engine, f"asaas:payment:{pay}")) == 1
    page = client.get(f"/console/users/{clerk_id}")
    assert page.status_code == 200 and "+500" in page.text and "reconciles" in page.text


def test_basic_auth_actions_need_the_action_header(engine: Engine) -> None:
    client = console_app().test_client()
    answer = client.post("/console/events/missing/replay", auth=("admin", PASSWORD))
    assert answer.status_code == 403  # a browser's cached Basic credentials cannot act cross-site
    answer = client.post("/console/events/missing/replay", auth=("admin", PASSWORD), headers={"X-Console-Action": "1"})
    assert answer.status_code == 404


def test_events_page_filters_and_cursor(engine: Engine) -> None:
    from tests.support.inbox import store_event

    ids = [store_event(engine, {"type": "user.updated", "n": n}) for n in range(120)]
    store_event(engine, {"event": "PAYMENT_CREATED"}, provider="asaas")
    client = signed_in(console_app())
    seen: list[str] = []
    url = "/console/events?provider=clerk&type=user.updated"
    for _ in range(5):
        html = client.get(url).text
        seen += re.findall(r'href="/console/events/([^"/?]+)"', html)
        more = re.search(r'href="(/console/events\?[^"]*cursor=[^"]+)"', html)
        if not more:
            break
        url = more.group(1).replace("&amp;", "&")
    assert sorted(seen) == sorted(ids)  # every row once, none from asaas, across three pages
    assert client.get("/console/events?cursor=@@@").status_code == 400
    assert client.get("/console/events?since=yesterday").status_code == 400
