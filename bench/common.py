"""Shared pieces of the benchmarks: throw-away databases, realistic signed Clerk payloads, load drivers.

Every benchmark measures pedro-ingest against a baseline *in the same run* and prints ratios, because
these machines are noisy: absolute numbers from different runs are not comparable.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from svix.webhooks import Webhook

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("PEDRO_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("PEDRO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "whsec_" + base64.b64encode(b"pedro-ingest-benchmark-secret-32").decode()


def receiver_env(database_url: str, queue: str) -> dict[str, str]:
    """The environment a benchmarked receiver (and its workers) runs with: this run's database and queue."""
    return {**os.environ, "DATABASE_URL": database_url, "CELERY_BROKER_URL": REDIS_URL, "CELERY_QUEUE": queue,
            "CLERK_WEBHOOK_SECRET": SECRET, "LOG_LEVEL": "INFO", "PYTHONPATH": str(Path.cwd())}  # fmt: skip


def drop_queue(queue: str) -> None:
    """Remove a run's queue and kombu's bindings for it, so a benchmark leaves nothing in Redis."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=f"*{queue}*", count=1000):
            client.delete(key)
    finally:
        client.close()


# ---- databases ---------------------------------------------------------------------------------------


class ThrowawayDatabase:
    """A migrated database that exists for one benchmark run."""

    def __init__(self, prefix: str = "pedro_bench") -> None:
        self.name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
        parts = urlsplit(ADMIN_URL)
        self.url = urlunsplit((parts.scheme, parts.netloc, f"/{self.name}", "", ""))

    def __enter__(self) -> ThrowawayDatabase:
        admin = psycopg2.connect(ADMIN_URL)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{self.name}"')
        admin.close()
        from migrations.runner import migrate

        migrate(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        admin = psycopg2.connect(ADMIN_URL)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        admin.close()

    def truncate(self) -> None:
        connection = psycopg2.connect(self.url)
        with connection, connection.cursor() as cursor:
            cursor.execute(
                'TRUNCATE "WebhookEvent", "CreditGrant", "EntityVersion", "UsageHistory", "CreditBalance", '
                '"SubscriptionEvent", "User" CASCADE'
            )
        connection.close()

    def scalar(self, sql: str) -> Any:
        connection = psycopg2.connect(self.url)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchone()[0]
        finally:
            connection.close()


PACKAGES = {"flask": "flask", "gunicorn_version": "gunicorn", "gevent": "gevent", "psycopg2": "psycopg2-binary",
            "sqlalchemy": "sqlalchemy", "celery": "celery", "redis_py": "redis"}  # fmt: skip


def software() -> str:
    """`name=version` pairs for a SUMMARY line: what the figures were measured with."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import redis

    pairs = {"python": platform.python_version()}
    for label, distribution in PACKAGES.items():
        try:
            pairs[label] = version(distribution)
        except PackageNotFoundError:
            pairs[label] = "absent"
    connection = psycopg2.connect(ADMIN_URL)
    try:
        pairs["postgresql"] = str(connection.server_version)  # e.g. 150020 for 15.20
    finally:
        connection.close()
    pairs["redis_server"] = str(redis.Redis.from_url(REDIS_URL).info("server").get("redis_version"))
    pairs["cores"] = str(os.cpu_count())
    return " ".join(f"{label}={value}" for label, value in pairs.items())


# ---- payloads ----------------------------------------------------------------------------------------


def clerk_user_payload(clerk_id: str, event_type: str = "user.created", updated_at: int | None = None) -> dict:
    """A Clerk user event of realistic size (about 3 KB): OAuth account, metadata, verification blocks."""
    stamp = updated_at or int(time.time() * 1000)
    email_id = f"idn_{secrets.token_hex(12)}"
    return {
        "data": {
            "backup_code_enabled": False,
            "banned": False,
            "birthday": "",
            "created_at": stamp,
            "create_organization_enabled": True,
            "delete_self_enabled": True,
            "email_addresses": [
                {
                    "created_at": stamp,
                    "email_address": f"{clerk_id.lower()}@example.org",
                    "id": email_id,
                    "linked_to": [{"id": f"idn_{secrets.token_hex(12)}", "type": "oauth_google"}],
                    "object": "email_address",
                    "reserved": False,
                    "updated_at": stamp,
                    "verification": {"attempts": None, "expire_at": None, "status": "verified",
                                     "strategy": "from_oauth_google"},
                }
            ],
            "enterprise_accounts": [],
            "external_accounts": [
                {
                    "approved_scopes": "email https://www.googleapis.com/auth/userinfo.email "
                    "https://www.googleapis.com/auth/userinfo.profile openid profile",
                    "created_at": stamp,
                    "email_address": f"{clerk_id.lower()}@example.org",
                    "family_name": "Lovelace",
                    "given_name": "Ada",
                    "google_id": str(secrets.randbelow(10**20)),
                    "id": f"idn_{secrets.token_hex(12)}",
                    "label": None,
                    "object": "google_account",
                    "picture": "https://lh3.googleusercontent.com/a/" + secrets.token_urlsafe(60),
                    "public_metadata": {},
                    "updated_at": stamp,
                    "username": None,
                    "verification": {"attempts": None, "expire_at": stamp + 600000, "status": "verified",
                                     "strategy": "oauth_google"},
                }
            ],
            "external_id": None,
            "first_name": "Ada",
            "has_image": True,
            "id": clerk_id,
            "image_url": "https://img.clerk.com/" + secrets.token_urlsafe(180),
            "last_active_at": stamp,
            "last_name": "Lovelace",
            "last_sign_in_at": stamp,
            "legal_accepted_at": None,
            "locked": False,
            "lockout_expires_in_seconds": None,
            "mfa_disabled_at": None,
            "mfa_enabled_at": None,
            "object": "user",
            "passkeys": [],
            "password_enabled": False,
            "phone_numbers": [],
            "primary_email_address_id": email_id,
            "primary_phone_number_id": None,
            "primary_web3_wallet_id": None,
            "private_metadata": {"stripeCustomer": None, "onboarding": {"step": 3, "done": True}},
            "profile_image_url": "https://images.clerk.dev/oauth_google/" + secrets.token_urlsafe(120),
            "public_metadata": {"plan": "free", "locale": "pt-BR", "referrer": "landing-page"},
            "saml_accounts": [],
            "totp_enabled": False,
            "two_factor_enabled": False,
            "unsafe_metadata": {"theme": "dark"},
            "updated_at": stamp,
            "username": None,
            "verification_attempts_remaining": 100,
            "web3_wallets": [],
        },
        "event_attributes": {"http_request": {"client_ip": "203.0.113.7",
                                              "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"}},
        "instance_id": "ins_2abcDEFghiJKLmnoPQRstuVWXyz",
        "object": "event",
        "timestamp": stamp,
        "type": event_type,
    }  # fmt: skip


def sign(body: str, msg_id: str, when: dt.datetime | None = None, secret: str = SECRET) -> dict[str, str]:
    when = when or dt.datetime.now(dt.UTC)
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(int(when.timestamp())),
        "svix-signature": Webhook(secret).sign(msg_id, when, body),
        "Content-Type": "application/json",
    }


# ---- processes ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:  # refused while booting, or slow to answer on a loaded machine
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


GTHREAD_THREADS = 8  # the configuration `serve` ran before gevent workers, kept for comparisons


def server_options(kind: str, workers: int) -> list[str]:
    """gunicorn flags: `production` is exactly what `pedro-ingest serve` runs; `gthread` the previous setup."""
    from ingest.http.server.serving import gunicorn_options

    if kind == "production":
        return gunicorn_options(workers)
    if kind == "gthread":
        return ["--workers", str(workers), "--threads", str(GTHREAD_THREADS), "--worker-class", "gthread"]
    raise ValueError(f"unknown server kind {kind!r}")


def describe_server(kind: str, workers: int) -> str:
    from ingest.http.server.serving import describe

    return describe(workers) if kind == "production" else f"w{workers}x{kind}({GTHREAD_THREADS})"


def start_gunicorn(
    app: str, port: int, env: dict[str, str], workers: int, kind: str = "production"
) -> subprocess.Popen:
    """One gunicorn configuration for every app a benchmark compares (the comparison must be fair).

    The server's output (one JSON log line per request at the production LOG_LEVEL=INFO) goes to a
    temporary file, shown only if the server fails to start."""
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *server_options(kind, workers),
            "--log-level", "warning", "--chdir", str(ROOT), app]  # fmt: skip
    with tempfile.TemporaryFile() as output:  # the server keeps its own descriptor of the (unlinked) file
        process = subprocess.Popen(argv, env=env, start_new_session=True, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz")
        except BaseException:
            stop(process)
            output.seek(0)
            sys.stderr.write(output.read()[-4000:].decode(errors="replace"))
            raise
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


# ---- load drivers --------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return f"{self.rps:,.0f} req/s  p50 {self.p50_ms:.2f} ms  p99 {self.p99_ms:.2f} ms  errors {self.errors}"


WRK_SCRIPT = r"""
local ids, sigs, n, i = {}, {}, 0, 0
local body, stamp, path
function setup(thread)
  thread:set("tid", tostring(thread.id or math.random(1, 1e9)))
end
function init(args)
  path = args[1]
  local f = assert(io.open(args[2], "r"))
  body = f:read("*a"); f:close()
  local stride, offset = tonumber(args[4]), tonumber(args[5])
  local k = 0
  for line in io.lines(args[3]) do
    if k % stride == offset then
      local id, ts, sig = line:match("([^\t]+)\t([^\t]+)\t([^\t]+)")
      n = n + 1; ids[n] = id; sigs[n] = {ts, sig}
    end
    k = k + 1
  end
  delay_ms = tonumber(args[6]) or 0
end
function delay()
  return delay_ms
end
function request()
  i = i % n + 1
  local headers = {["Content-Type"] = "application/json", ["svix-id"] = ids[i],
                   ["svix-timestamp"] = sigs[i][1], ["svix-signature"] = sigs[i][2]}
  return wrk.format("POST", path, headers, body)
end
function done(summary, latency, requests)
  io.write(string.format("JSON {\"requests\": %d, \"seconds\": %f, \"errors\": %d, \"status\": %d, " ..
    "\"p50_us\": %f, \"p99_us\": %f}\n", summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
"""


class SignedRequests:
    """Unique deliveries of one realistic body: each has its own svix-id (a new inbox row) and signature."""

    def __init__(self, count: int, event_type: str = "user.created") -> None:
        self.body = json.dumps(clerk_user_payload(f"user_{secrets.token_hex(12)}", event_type))
        wh = Webhook(SECRET)
        now = dt.datetime.now(dt.UTC)
        stamp = str(int(now.timestamp()))
        prefix = f"msg_{secrets.token_hex(6)}_"
        self.rows = [(f"{prefix}{i}", stamp, wh.sign(f"{prefix}{i}", now, self.body)) for i in range(count)]

    def body_of(self, index: int) -> str:
        """The body signed by `rows[index]` (one body for all here)."""
        return self.body

    def write(self, directory: Path) -> tuple[Path, Path]:
        body_path, sig_path = directory / "body.json", directory / "signatures.tsv"
        body_path.write_text(self.body)
        sig_path.write_text("".join(f"{a}\t{b}\t{c}\n" for a, b, c in self.rows))
        return body_path, sig_path


def run_wrk(
    url: str,
    path: str,
    requests: SignedRequests,
    *,
    seconds: float,
    connections: int,
    threads: int,
    rate_per_connection_delay_ms: float = 0.0,
) -> LoadResult:
    """Drive with wrk (its own threads; each thread takes a disjoint slice of the signed deliveries)."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        body_path, sig_path = requests.write(directory)
        results = []
        # One wrk process per slice keeps deliveries unique across wrk threads (Lua states are per thread).
        procs = []
        for offset in range(threads):
            script = directory / f"load{offset}.lua"
            script.write_text(WRK_SCRIPT)
            procs.append(subprocess.Popen(
                ["wrk", "-t1", f"-c{max(1, connections // threads)}", f"-d{seconds}s", "--timeout", "10s",
                 "-s", str(script), url, "--", path, str(body_path), str(sig_path), str(threads), str(offset),
                 str(rate_per_connection_delay_ms)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))  # fmt: skip
        for proc in procs:
            out, _ = proc.communicate(timeout=seconds + 60)
            found = re.search(r"^JSON (.*)$", out, re.MULTILINE)
            if not found:
                raise RuntimeError(f"wrk failed: {out[-2000:]}")
            results.append(json.loads(found.group(1)))
    total = sum(r["requests"] for r in results)
    seconds_used = max(r["seconds"] for r in results)
    return LoadResult(
        requests=total,
        seconds=seconds_used,
        errors=sum(r["errors"] + r["status"] for r in results),
        p50_ms=max(r["p50_us"] for r in results) / 1000,
        p99_ms=max(r["p99_us"] for r in results) / 1000,
    )


def run_python(
    url: str, path: str, requests: SignedRequests, *, seconds: float, connections: int, delay_ms: float = 0.0
) -> LoadResult:
    """A dependency-free driver (threads with keep-alive connections) for smoke runs and machines without wrk."""
    import http.client

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    host, port = urlsplit(url).hostname, urlsplit(url).port
    stop_at = time.monotonic() + seconds
    counter = iter(range(10**9))

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        local = []
        while time.monotonic() < stop_at:
            msg_id, stamp, sig = requests.rows[next(counter) % len(requests.rows)]
            headers = {"Content-Type": "application/json", "svix-id": msg_id, "svix-timestamp": stamp,
                       "svix-signature": sig}  # fmt: skip
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=requests.body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                conn = http.client.HTTPConnection(host, port, timeout=10)
            local.append(time.perf_counter() - started)
            if not ok:
                with lock:
                    errors[0] += 1
            if delay_ms:
                time.sleep(delay_ms / 1000)
        with lock:
            latencies.extend(local)

    started = time.monotonic()
    workers = [threading.Thread(target=client) for _ in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0.0

    return LoadResult(len(latencies), elapsed, errors[0], pct(0.50), pct(0.99))


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_open_loop(
    url: str, path: str, requests: SignedRequests, phases: list[tuple[str, float, float]], *, connections: int = 64
) -> dict[str, LoadResult]:
    """Open-loop load: requests are *scheduled* at a fixed rate per phase (name, seconds, rate) and latency
    is measured from the scheduled time, so a server that falls behind shows its backlog (no coordinated
    omission). Returns one result per phase."""
    import http.client
    import queue as queue_module

    host, port = urlsplit(url).hostname, urlsplit(url).port
    work: queue_module.Queue = queue_module.Queue()
    results: dict[str, list[float]] = {name: [] for name, _, _ in phases}
    errors: dict[str, int] = {name: 0 for name, _, _ in phases}
    lock = threading.Lock()

    def sender() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        while True:
            item = work.get()
            if item is None:
                return
            phase, due, index = item
            msg_id, stamp, sig = requests.rows[index % len(requests.rows)]
            headers = {"Content-Type": "application/json", "svix-id": msg_id, "svix-timestamp": stamp,
                       "svix-signature": sig}  # fmt: skip
            ok = False
            for _attempt in range(2):  # a keep-alive connection the server closed while idle is reopened once
                try:
                    conn.request("POST", path, body=requests.body_of(index % len(requests.rows)), headers=headers)
                    response = conn.getresponse()
                    response.read()
                    ok = response.status == 200
                    break
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=30)
                except OSError:
                    conn = http.client.HTTPConnection(host, port, timeout=30)
                    break
            latency = time.perf_counter() - due
            with lock:
                results[phase].append(latency)
                if not ok:
                    errors[phase] += 1

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    index = 0
    started = time.perf_counter()
    offset = 0.0
    for name, seconds, rate in phases:
        count = int(seconds * rate)
        for k in range(count):
            due = started + offset + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            work.put((name, due, index))
            index += 1
        offset += seconds
    for _ in threads:
        work.put(None)
    for thread in threads:
        thread.join(120)

    out = {}
    for name, seconds, _rate in phases:
        values = sorted(results[name])

        def pct(p: float, values: list[float] = values) -> float:
            return values[min(len(values) - 1, int(len(values) * p))] * 1000 if values else 0.0

        out[name] = LoadResult(len(values), seconds, errors[name], pct(0.50), pct(0.99))
    return out
