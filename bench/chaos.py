"""Chaos run: signed webhooks against a real receiver and worker fleet while processes and servers die.

    python bench/chaos.py --events 5000

Generates N unique signed events for a few hundred users, adds duplicate deliveries (30%) and forged
requests (1%), shuffles them and sends them concurrently to a receiver (gunicorn). Meanwhile it SIGKILLs
worker processes several times (whole workers and single pool children), restarts Redis once (losing every
queued task) and PostgreSQL once. Beat runs as in production and is the only thing that sweeps: nobody
re-enqueues by hand. Then it waits for the backlog to drain and compares the database with an oracle
computed from the unique valid events. One summary line:

    events=N accepted=… forged_rejected=… lost=0 double_applied=0 mismatches=0 …

By default Redis and PostgreSQL are private throw-away servers on free loopback ports (the run restarts
them); `--database-url` / `--broker-url` point it at existing ones, which are then never restarted.
Exit status 0 only when nothing was lost, nothing applied twice and the database matches the oracle.

Event sources are classes with `generate()` and `check()`: Clerk users (`ClerkUsers` below) and Asaas
payments (`bench/chaos_payments.py`: card and Pix payments of seeded payers on a seeded plan, full and
partial refunds, some delivered before their grant, 2-installment card purchases whose total a local Asaas
API serves, chargebacks and won disputes, Clerk free trials). `--payment-share` of the N events are payments.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402
import requests  # noqa: E402

from bench.chaos_payments import TOKEN as ASAAS_TOKEN  # noqa: E402
from bench.chaos_payments import AsaasPayments  # noqa: E402
from tests.support.clerk import svix_headers  # noqa: E402
from tests.support.fake_asaas import API_KEY as ASAAS_API_KEY  # noqa: E402
from tests.support.fake_asaas import FakeAsaas  # noqa: E402
from tests.support.private_services import PrivatePostgres, PrivateRedis  # noqa: E402
from tests.support.processes import free_port  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"pedro-ingest-chaos-signing-key-1").decode()
FORGER_SECRET = "whsec_" + base64.b64encode(b"not-the-real-key-of-this-tenant!").decode()
FINAL = ("processed", "ignored")
# pedro-ingest's settings that may be set in the caller's environment; the run sets its own. (Celery also
# lets CELERY_BROKER_URL override `broker=` in this very process, which would send the sweeps elsewhere.)
OUR_VARIABLES = ("CLERK_", "ASAAS_", "CELERY_", "DATABASE_", "TASK_", "RETRY_", "VISIBILITY_", "SWEEP_", "DB_")


# ---- deliveries ----------------------------------------------------------------------------------------


@dataclass
class Delivery:
    """One HTTP request to make: a valid event (maybe a duplicate) or a forgery."""

    msg_id: str
    body: str
    forged: str | None = None  # how: "wrong_secret", "tampered", "stale"; Asaas: "wrong_token", "missing_token"
    provider: str = "clerk"


@dataclass
class ClerkUsers:
    """`user.created` / `user.updated` / `user.deleted` for a set of users, with the state each must end in."""

    users: int
    signup_credits: int = 100
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # msg_id -> event

    def generate(self, count: int, rng: random.Random) -> list[Delivery]:
        base = int(time.time() * 1000) - 3_600_000
        per_user = [1] * self.users
        for _ in range(max(count - self.users, 0)):
            per_user[rng.randrange(self.users)] += 1
        deliveries = []
        for index, n_events in enumerate(per_user[:count]):
            clerk_id = f"user_chaos{index:05d}{secrets.token_hex(4)}"
            deleted_last = rng.random() < 0.1 and n_events > 1
            for k in range(n_events):
                version = base + index + k * 1000
                if k == n_events - 1 and deleted_last:
                    event = {"type": "user.deleted", "object": "event", "timestamp": version,
                             "data": {"id": clerk_id, "deleted": True, "object": "user"}}  # fmt: skip
                else:
                    email_id = f"idn_{index}_{k}"
                    event = {
                        "type": "user.created" if k == 0 else "user.updated",
                        "object": "event",
                        "timestamp": version,
                        "data": {
                            "id": clerk_id,
                            "object": "user",
                            "email_addresses": [{"id": email_id, "email_address": f"u{index}.v{k}@chaos.example"}],
                            "primary_email_address_id": email_id,
                            "first_name": f"First{k}",
                            "last_name": f"User{index}",
                            "banned": k % 7 == 6,
                            "created_at": base,
                            "updated_at": version,
                        },
                    }
                msg_id = f"msg_{secrets.token_hex(12)}"
                self.events[msg_id] = event
                deliveries.append(Delivery(msg_id, json.dumps(event)))
        return deliveries

    def expected(self, accepted: set[str]) -> dict[str, dict[str, Any]]:
        """Per Clerk id: the newest accepted event decides the state."""
        newest: dict[str, dict[str, Any]] = {}
        for msg_id in accepted & self.events.keys():
            event = self.events[msg_id]
            clerk_id = event["data"]["id"]
            if clerk_id not in newest or event["timestamp"] > newest[clerk_id]["timestamp"]:
                newest[clerk_id] = event
        return newest

    def check(self, cursor, accepted: set[str], others: frozenset[str] = frozenset()) -> tuple[int, int, list[str]]:
        """(double_applied, mismatches, examples) for the users, balances, ledger and grants.

        `others`: Clerk ids of users another source seeded (the payers), checked by that source."""
        cursor.execute(
            """SELECT u."clerkId", u.email, u.name, u."isActive", b."creditsRemaining",
                      (SELECT count(*) FROM "UsageHistory" h WHERE h."userId" = u.id),
                      (SELECT coalesce(-sum(h."creditsUsed"), 0) FROM "UsageHistory" h WHERE h."userId" = u.id),
                      (SELECT count(*) FROM "CreditGrant" g WHERE g."userId" = u.id)
                 FROM "User" u LEFT JOIN "CreditBalance" b ON b."userId" = u.id"""
        )
        found = {row[0]: row[1:] for row in cursor.fetchall() if row[0] not in others}
        double, mismatches, examples = 0, 0, []

        def bad(kind: str, clerk_id: str, detail: str) -> None:
            if len(examples) < 10:
                examples.append(f"{kind} {clerk_id}: {detail}")

        for clerk_id, event in self.expected(accepted).items():
            row = found.pop(clerk_id, None)
            if row is not None:
                _, _, _, balance, ledger_rows, ledger_sum, grants = row
                if ledger_rows > 1 or grants > 1 or (balance or 0) > self.signup_credits:
                    double += 1
                    bad("double", clerk_id, f"ledger_rows={ledger_rows} grants={grants} balance={balance}")
                    continue
                if balance != self.signup_credits or ledger_sum != balance or ledger_rows != 1 or grants != 1:
                    mismatches += 1
                    bad("credits", clerk_id, f"balance={balance} ledger_sum={ledger_sum} grants={grants}")
                    continue
            if event["type"] == "user.deleted":
                # Deleted: absent if the deletion was applied before any create, else erased and inactive.
                if row is not None and row[:3] != (None, None, False):
                    mismatches += 1
                    bad("state", clerk_id, "deleted user still holds data or is active")
                continue
            data = event["data"]
            want = (data["email_addresses"][0]["email_address"], f"{data['first_name']} {data['last_name']}",
                    not data["banned"])  # fmt: skip
            if row is None or row[:3] != want:
                mismatches += 1
                bad("state", clerk_id, "missing" if row is None else "not the newest state")
        for clerk_id in found:  # users that no valid event describes (a forgery got through?)
            mismatches += 1
            bad("unexpected", clerk_id, "user not created by any valid event")
        return double, mismatches, examples


# ---- processes -------------------------------------------------------------------------------------------


class Service:
    """A child process in its own session, output to a log file, killable as a group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.argv, self.env, self.logs = name, argv, env, logs
        self.generation = 0
        self.popen: subprocess.Popen | None = None

    def start(self) -> Service:
        self.generation += 1
        log = open(self.logs / f"{self.name}.{self.generation}.log", "wb")  # noqa: SIM115 - owned by the child
        self.popen = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)  # fmt: skip
        return self

    def output(self) -> str:
        return (self.logs / f"{self.name}.{self.generation}.log").read_text(errors="replace")

    def kill(self) -> None:
        if self.popen and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def children(self) -> list[int]:
        if not self.popen:
            return []
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == self.popen.pid:
                    pids.append(int(stat.parent.name))
        return pids


def wait_until(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.1)


# ---- the run ---------------------------------------------------------------------------------------------


class Chaos:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.logs = Path(args.logs or tempfile.mkdtemp(prefix="pedro-chaos-"))
        self.logs.mkdir(parents=True, exist_ok=True)
        self.redis: PrivateRedis | None = None
        self.postgres: PrivatePostgres | None = None
        self.services: list[Service] = []
        self.workers: list[Service] = []
        self.sent = 0
        self.gate_at = math.inf  # see `chaos`
        self.total = 0
        self.responses: Counter[str] = Counter()
        self.acknowledged: set[str] = set()
        self.chaos_log: list[str] = []
        self.supervisor_restarts = 0
        self.lock = threading.Lock()
        self.asaas_api = FakeAsaas().start()  # the Asaas API's installment resource (installment purchases)

    # -- infrastructure
    def start_infrastructure(self) -> tuple[str, str]:
        if self.args.broker_url:
            broker = self.args.broker_url
        else:
            self.redis = PrivateRedis().start()
            broker = self.redis.url
        if self.args.database_url:
            database = self.args.database_url
        else:
            self.postgres = PrivatePostgres().start()
            database = self.postgres.create_database("pedro_chaos")
        from migrations.runner import migrate

        migrate(database)
        return database, broker

    def env(self, database: str, broker: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(OUR_VARIABLES)}
        env.update(
            TASK_MAX_RETRIES="8",
            DATABASE_URL=database,
            CELERY_BROKER_URL=broker,
            CELERY_QUEUE=f"pedro-chaos-{secrets.token_hex(4)}",
            CLERK_WEBHOOK_SECRET=SECRET,
            ASAAS_WEBHOOK_TOKEN=ASAAS_TOKEN,
            ASAAS_API_URL=self.asaas_api.url,  # installment purchase totals
            ASAAS_API_KEY=ASAAS_API_KEY,
            RETRY_BACKOFF_MAX="5",
            VISIBILITY_TIMEOUT="60",  # a SIGKILLed worker's reserved tasks come back after a minute
            TASK_SOFT_TIME_LIMIT="30",
            TASK_TIME_LIMIT="45",
            SWEEP_INTERVAL=str(self.args.sweep_interval),
            SWEEP_LOST_AFTER=str(self.args.sweep_interval),
            SWEEP_RECEIVED_AFTER=str(self.args.sweep_interval),
            RECONCILE_INTERVAL="3600",
            RESYNC_INTERVAL="3600",
            RETENTION_INTERVAL="3600",
            WORKER_METRICS_PORT="0",
            LOG_LEVEL=self.args.log_level,
            PYTHONPATH=str(ROOT),
            OPS_PORT=str(free_port()),
        )
        return env

    def start_processes(self, env: dict[str, str]) -> str:
        port = free_port()
        cli = [sys.executable, "-m", "ingest.cli"]
        receiver = Service("receiver", [*cli, "serve", "--port", str(port), "--workers", str(self.args.receivers)],
                           env, self.logs).start()  # fmt: skip
        self.services.append(receiver)
        for index in range(self.args.workers):
            name = f"chaos{index}-{secrets.token_hex(2)}@%h"
            argv = [*cli, "worker", "-c", str(self.args.concurrency_per_worker), "--without-gossip",
                    "--without-mingle", "--without-heartbeat", "-n", name]  # fmt: skip
            worker = Service(f"worker{index}", argv, env, self.logs).start()
            self.workers.append(worker)
            self.services.append(worker)
        if not self.args.no_beat:
            beat = [*cli, "beat", "--schedule", str(self.logs / "beat-schedule")]
            self.services.append(Service("beat", beat, env, self.logs).start())
        url = f"http://127.0.0.1:{port}"

        def receiver_up() -> bool:
            try:
                return requests.get(f"{url}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(receiver_up, 60, "the receiver")
        for worker in self.workers:
            wait_until(lambda w=worker: "[queues]" in w.output(), 60, f"{worker.name}")
        return url

    # -- sending
    def deliveries(self, users: ClerkUsers, payments: AsaasPayments) -> tuple[list[Delivery], int, int]:
        n_payments = round(self.args.events * self.args.payment_share)
        valid = users.generate(self.args.events - n_payments, self.rng)
        valid += [
            Delivery(id_, body, provider=provider) for id_, body, provider in payments.generate(n_payments, self.rng)
        ]
        self.asaas_api.installments.update(payments.installment_totals)
        duplicates = [self.rng.choice(valid) for _ in range(int(len(valid) * self.args.duplicates))]
        forged = []
        for _ in range(max(1, int(len(valid) * self.args.forged))):
            original = self.rng.choice(valid)
            if original.provider == "asaas":
                event_id, body, how = payments.forgery(self.rng)
                forged.append(Delivery(event_id, body, forged=how, provider="asaas"))
                continue
            how = self.rng.choice(["wrong_secret", "tampered", "stale"])
            tampered = original.body.replace("@chaos.example", "@attacker.example").replace("First", "Mallory")
            msg_id = original.msg_id if how == "tampered" else f"msg_{secrets.token_hex(12)}"
            forged.append(Delivery(msg_id, tampered if how != "stale" else original.body, forged=how))
        everything = valid + duplicates + forged
        self.rng.shuffle(everything)
        # Grants of the refunds that must come first go last (with their duplicates): the refund is applied
        # long before, so the grant finds its key claimed by the reversal.
        last = payments.held_back()
        everything = [d for d in everything if d.msg_id not in last] + [d for d in everything if d.msg_id in last]
        return everything, len(duplicates), len(forged)

    def request(self, delivery: Delivery) -> tuple[str, dict[str, str]]:
        """Path and headers of one delivery, signed (or forged) as its provider does."""
        if delivery.provider == "asaas":
            return "/webhooks/asaas", self.payments.headers(delivery.forged)
        if delivery.forged == "wrong_secret":
            return "/webhooks/clerk", svix_headers(delivery.body, secret=FORGER_SECRET, msg_id=delivery.msg_id)
        if delivery.forged == "tampered":  # a real signature, but of another body
            signed_body = json.dumps(json.loads(delivery.body) | {"x": 1})
            return "/webhooks/clerk", svix_headers(signed_body, secret=SECRET, msg_id=delivery.msg_id)
        if delivery.forged == "stale":
            import datetime as dt

            old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
            return "/webhooks/clerk", svix_headers(delivery.body, secret=SECRET, msg_id=delivery.msg_id, timestamp=old)
        return "/webhooks/clerk", svix_headers(delivery.body, secret=SECRET, msg_id=delivery.msg_id)

    def send(self, session: requests.Session, url: str, delivery: Delivery) -> None:
        while self.sent >= self.gate_at:  # a chaos action is due: it runs before sending goes on
            time.sleep(0.01)
        deadline = time.monotonic() + 180
        while True:
            path, headers = self.request(delivery)
            try:
                response = session.post(f"{url}{path}", data=delivery.body.encode(), headers=headers, timeout=15)
                status = response.status_code
            except requests.RequestException:
                status = 0
            if status in (0, 500, 502, 503) and time.monotonic() < deadline:  # as Svix does: retry later
                with self.lock:
                    self.responses[f"retry_{status}"] += 1
                time.sleep(0.2)
                continue
            with self.lock:
                self.sent += 1
                if delivery.forged:
                    self.responses["forged_rejected" if status == 401 else f"forged_{status}"] += 1
                elif status == 200:
                    self.acknowledged.add(delivery.msg_id)
                    self.responses[response.json().get("status", "?")] += 1
                else:
                    self.responses[f"valid_{status}"] += 1
            return

    def send_all(self, url: str, deliveries: list[Delivery]) -> None:
        local = threading.local()

        def one(delivery: Delivery) -> None:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            self.send(local.session, url, delivery)

        with ThreadPoolExecutor(self.args.senders) as pool:
            list(pool.map(one, deliveries))

    # -- supervision
    def supervise(self, stop: threading.Event) -> None:
        """Restart a worker that exited by itself, as systemd or `restart: always` would in production.

        Counted as `worker_restarts`: a worker that reconnects by itself after the Redis restart needs none.
        """
        while not stop.wait(1.0):
            for worker in self.workers:
                with self.lock:
                    if worker.popen is not None and worker.popen.poll() is not None:
                        worker.start()
                        self.supervisor_restarts += 1

    # -- chaos
    def chaos(self, done: threading.Event) -> None:
        plan = [(0.08, "kill_worker"), (0.2, "kill_child"), (0.3, "restart_redis"), (0.45, "kill_worker"),
                (0.6, "restart_postgres"), (0.72, "kill_child"), (0.85, "kill_worker")]  # fmt: skip
        # Senders wait at a gate a little past each action's point until the action has run, so a short run
        # (or a fast worker) cannot finish sending before every kill and restart has landed mid-run.
        slack = max(self.args.senders, self.total // 100)
        for at, action in plan:
            self.gate_at = at * self.total + slack
            while not done.is_set() and self.sent < at * self.total:
                time.sleep(0.02)
            if done.is_set():
                break
            with contextlib.suppress(Exception):
                self.act(action)
        self.gate_at = math.inf

    def act(self, action: str) -> None:
        started = time.monotonic()
        if action == "kill_worker":
            worker = self.rng.choice(self.workers)
            with self.lock:  # the supervisor must not restart it behind our back
                worker.kill()
                time.sleep(0.5)
                worker.start()
        elif action == "kill_child":
            worker = self.rng.choice(self.workers)
            children = worker.children()
            if not children:
                self.chaos_log.append(f"{action}: no pool child found")
                return
            os.kill(self.rng.choice(children), signal.SIGKILL)
        elif action == "restart_redis":
            if self.redis is None:
                self.chaos_log.append("restart_redis skipped (not our server)")
                return
            self.redis.restart(down_for=self.args.outage)
        elif action == "restart_postgres":
            if self.postgres is None:
                self.chaos_log.append("restart_postgres skipped (not our server)")
                return
            self.postgres.restart(down_for=self.args.outage)
        self.chaos_log.append(f"{action} at sent={self.sent} took {time.monotonic() - started:.1f}s")

    # -- drain and verify
    def drain(self, database: str) -> float:
        """Wait until every acknowledged event is final, or nothing is pending any more (what is left is then
        failed/dead and reported as lost), or the drain timeout. Beat's sweeps do all the re-enqueueing.
        Returns the seconds waited."""
        started = time.monotonic()
        wanted = len(self.acknowledged)
        deadline = started + self.args.drain_timeout
        while time.monotonic() < deadline:
            if self.count_final(database) >= wanted or self.count_pending(database) == 0:
                break
            time.sleep(0.5)
        return time.monotonic() - started

    def recovered_lost(self) -> int:
        """Rows beat's sweeps re-enqueued because the broker had lost their message (from the worker logs)."""
        import re

        return sum(
            int(n)
            for path in self.logs.glob("worker*.log")
            for n in re.findall(r'"lost_by_broker": (\d+)', path.read_text(errors="replace"))
        )

    def count_pending(self, database: str) -> int:
        with contextlib.closing(psycopg2.connect(database)) as connection, connection.cursor() as cursor:
            cursor.execute("""SELECT count(*) FROM "WebhookEvent" WHERE status IN ('received', 'enqueued')""")
            return cursor.fetchone()[0]

    def count_final(self, database: str) -> int:
        with contextlib.closing(psycopg2.connect(database)) as connection, connection.cursor() as cursor:
            cursor.execute("""SELECT count(*) FROM "WebhookEvent" WHERE status IN ('processed', 'ignored')""")
            return cursor.fetchone()[0]

    def verify(self, database: str, users: ClerkUsers, payments: AsaasPayments) -> dict[str, Any]:
        with contextlib.closing(psycopg2.connect(database)) as connection, connection.cursor() as cursor:
            cursor.execute("""SELECT provider, "eventId", status FROM "WebhookEvent" """)
            stored = {event_id: status for _, event_id, status in cursor.fetchall()}
            lost = sum(1 for msg_id in self.acknowledged if stored.get(msg_id) not in FINAL)
            known = users.events.keys() | payments.events.keys()
            unexpected_rows = sum(1 for msg_id in stored if msg_id not in known)
            statuses = Counter(stored.values())
            double, mismatches, examples = users.check(cursor, self.acknowledged, frozenset(payments.openings))
            p_double, p_mismatches, p_examples, figures = payments.check(cursor, self.acknowledged)
            examples += p_examples
            cursor.execute('SELECT max(attempts), sum(attempts) FROM "WebhookEvent"')
            max_attempts, sum_attempts = cursor.fetchone()
            cursor.execute(
                """SELECT status, "lastError", "lastErrorDetail", count(*) FROM "WebhookEvent"
                    WHERE status NOT IN ('processed', 'ignored') GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 10"""
            )
            unfinished = cursor.fetchall()
        return {
            "lost": lost,
            "double": double + p_double,
            "mismatches": mismatches + p_mismatches + unexpected_rows,
            "payment_double": p_double,
            "payment_mismatches": p_mismatches,
            "unexpected_rows": unexpected_rows,
            "figures": figures,
            "examples": examples,
            "statuses": dict(statuses),
            "max_attempts": max_attempts,
            "sum_attempts": sum_attempts,
            "unfinished": unfinished,
        }

    def run(self) -> int:
        users = ClerkUsers(users=self.args.users)
        self.payments = payments = AsaasPayments(payers=self.args.payers)
        try:
            database, broker = self.start_infrastructure()
            env = self.env(database, broker)
            url = self.start_processes(env)
            deliveries, n_duplicates, n_forged = self.deliveries(users, payments)
            with contextlib.closing(psycopg2.connect(database)) as connection, connection:
                payments.seed(connection)
            self.total = len(deliveries)
            done, stop = threading.Event(), threading.Event()
            threading.Thread(target=self.supervise, args=(stop,), daemon=True).start()
            chaos = threading.Thread(target=self.chaos, args=(done,), daemon=True)
            started = time.monotonic()
            chaos.start()
            self.send_all(url, deliveries)
            send_seconds = time.monotonic() - started
            done.set()
            chaos.join(120)
            drain_seconds = self.drain(database)
            total_seconds = time.monotonic() - started
            result = self.verify(database, users, payments)
        finally:
            with contextlib.suppress(UnboundLocalError):
                stop.set()
            with self.lock:
                pass  # let a restart in progress finish before stopping everything
            for service in self.services:
                service.stop()
            for server in (self.redis, self.postgres):
                if server is not None:
                    server.close()
            self.asaas_api.close()
        forged_accepted = sum(count for key, count in self.responses.items() if key.startswith("forged_2"))
        print(
            f"events={self.args.events} accepted={len(self.acknowledged)} "
            f"forged_rejected={self.responses['forged_rejected']} lost={result['lost']} "
            f"double_applied={result['double']} mismatches={result['mismatches'] + forged_accepted} "
            f"duplicates_sent={n_duplicates} forged_sent={n_forged} users={self.args.users} "
            f"payers={self.args.payers} payment_double={result['payment_double']} "
            f"payment_mismatches={result['payment_mismatches']} "
            + "".join(f"{name}={value} " for name, value in result["figures"].items())
            + f"chaos_actions={len(self.chaos_log)} worker_restarts={self.supervisor_restarts} "
            f"recovered_lost={self.recovered_lost()} drain_s={drain_seconds:.1f} "
            f"send_s={send_seconds:.1f} "
            f"total_s={total_seconds:.1f} events_per_s={self.args.events / total_seconds:.0f}"
        )
        if self.args.verbose or result["lost"] or result["double"] or result["mismatches"] or forged_accepted:
            print(f"responses: {dict(self.responses)}", file=sys.stderr)
            print(f"inbox statuses: {result['statuses']} max_attempts={result['max_attempts']} "
                  f"sum_attempts={result['sum_attempts']}", file=sys.stderr)  # fmt: skip
            print("chaos: " + "; ".join(self.chaos_log), file=sys.stderr)
            for status, code, detail, count in result["unfinished"]:
                print(f"  unfinished: {count} x {status} {code} {detail}", file=sys.stderr)
            for example in result["examples"]:
                print(f"  {example}", file=sys.stderr)
            print(f"logs: {self.logs}", file=sys.stderr)
        ok = not (result["lost"] or result["double"] or result["mismatches"] or forged_accepted)
        return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="unique valid events")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--payers", type=int, default=60, help="seeded users that pay through Asaas")
    parser.add_argument("--payment-share", type=float, default=0.3, help="share of the events that are payments")
    parser.add_argument("--duplicates", type=float, default=0.3, help="share of extra duplicate deliveries")
    parser.add_argument("--forged", type=float, default=0.01, help="share of forged requests")
    parser.add_argument("--senders", type=int, default=16, help="concurrent HTTP senders")
    parser.add_argument("--receivers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--workers", type=int, default=2, help="separate Celery worker processes")
    parser.add_argument("--concurrency-per-worker", type=int, default=2)
    parser.add_argument("--outage", type=float, default=2.0, help="seconds Redis / PostgreSQL stay down")
    parser.add_argument("--sweep-interval", type=int, default=10, help="SWEEP_INTERVAL (and the lost/received ages)")
    parser.add_argument("--drain-timeout", type=float, default=240.0)
    parser.add_argument("--database-url", help="use this PostgreSQL database (never restarted)")
    parser.add_argument("--broker-url", help="use this Redis (never restarted)")
    parser.add_argument("--no-beat", action="store_true", help="self-check: no beat, nothing sweeps: the run must lose")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--logs", help="directory for process logs (default: a temp dir)")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the receiver and workers")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    for name in [name for name in os.environ if name.startswith(OUR_VARIABLES)]:
        del os.environ[name]
    sys.exit(Chaos(parse_args()).run())
