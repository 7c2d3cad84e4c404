"""Operator commands of `pedro-ingest` that talk to a running receiver (`send-sample`)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import click

from ingest.dev.children import dev_secrets

if TYPE_CHECKING:
    from ingest.dev import samples

PROVIDERS = ("clerk", "asaas")


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def _post(base_url: str, request: samples.SignedRequest, timeout: float) -> tuple[int, dict[str, Any]]:
    import urllib.error
    import urllib.request

    http = urllib.request.Request(base_url.rstrip("/") + request.path, data=request.body, method="POST")
    for name, value in request.headers.items():
        http.add_header(name, value)
    try:
        with urllib.request.urlopen(http, timeout=timeout) as response:  # noqa: S310 - scheme checked
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"{}")
        except ValueError:
            return error.code, {}
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        _fail(f"receiver not reachable at {base_url}: {reason}")


def _credential(name: str, given: str | None, state_dir: Path) -> tuple[str | None, bool]:
    """The option/environment value, else the dev value `pedro-ingest dev` keeps in the state directory
    (and whether it came from there)."""
    value = given or os.environ.get(name)
    from_file = False
    if not value and (state_dir / "dev.env").exists():
        value, from_file = dev_secrets(state_dir).get(name), True
    first = (value or "").split(",")[0].strip()  # during a rotation, the first (newest) one
    return first or None, from_file


def _outcome_reader(wait_seconds: float, state_dir: Path) -> Callable[[str], bool] | None:
    """Waits for one inbox row to be final and prints its outcome; None when there is no database to ask."""
    from ingest.cli.support import use_running_dev

    use_running_dev(state_dir)
    if wait_seconds <= 0:
        return None
    if not os.environ.get("DATABASE_URL"):
        click.echo("not waiting for the outcome: no DATABASE_URL and no running `pedro-ingest dev` here", err=True)
        return None
    from ingest.cli.users import format_outcome
    from ingest.config.database import engine_from
    from ingest.config.settings import ConfigError, get_settings
    from models.db import transaction
    from models.reports.user_report import event_outcome
    from models.status import FINAL_STATUSES, REPLAYABLE_STATUSES, EventStatus

    settled = FINAL_STATUSES | REPLAYABLE_STATUSES  # nothing more happens to it without an operator

    try:
        engine = engine_from(get_settings())
    except ConfigError as error:
        click.echo(f"not waiting for the outcome: {error}", err=True)
        return None

    def wait(row_id: str) -> bool:
        deadline = time.monotonic() + wait_seconds
        while True:
            with transaction(engine) as session:
                outcome = event_outcome(session, row_id)
            final = outcome is not None and outcome.event.status in settled
            if final or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if outcome is None or not final:
            status = outcome.event.status if outcome else "unknown"
            click.echo(f"  still {status} after {wait_seconds:g}s: is the worker running? (events show {row_id})")
            return False
        click.echo(f"  {format_outcome(outcome)}")
        if outcome.event.status == EventStatus.PROCESSED and outcome.clerk_id and outcome.credits == 0:
            click.echo(f"  no credits: {NO_CREDITS_REASON.format(clerk_id=outcome.clerk_id)}")
        return outcome.event.status in FINAL_STATUSES

    return wait


NO_CREDITS_REASON = (
    "this event granted nothing new (a purchase, installment or subscription period grants once, and a plan "
    "with no credits grants none); `pedro-ingest user {clerk_id}` lists the grants and their keys"
)

REFUSED_HINTS = {
    "invalid_signature": "the receiver does not know this Clerk secret: {where}",
    "invalid_token": "the receiver does not know this Asaas token: {where}",
    "provider_not_configured": "the receiver has no secret for this provider: set it where the receiver runs",
}


def _stale_secret_hint(state_dir: Path) -> str:
    return (
        f"the secret was taken from {state_dir}/dev.env, which is not what the running receiver uses "
        "(it was started with its own CLERK_WEBHOOK_SECRET/ASAAS_WEBHOOK_TOKEN, or dev.env changed since): "
        "restart `pedro-ingest dev`, or pass --clerk-secret/--asaas-token with the receiver's values"
    )


@click.command("send-sample")
@click.option(
    "--url",
    default=None,
    envvar="PEDRO_RECEIVER_URL",
    help="Base URL of a running receiver (default: the running dev's, else http://127.0.0.1:8000).",
)
@click.option("--provider", "providers", type=click.Choice([*PROVIDERS, "all"]), default="all", show_default=True,
              help="Which samples (asaas alone: a new Clerk user first, unless --user).")  # fmt: skip
@click.option("--user", "clerk_id", metavar="CLERK_ID", help="With --provider asaas: pay for this existing user.")
@click.option("--clerk-secret", default=None, help="Signing secret (default: CLERK_WEBHOOK_SECRET, else dev.env).")
@click.option("--asaas-token", default=None, help="Access token (default: ASAAS_WEBHOOK_TOKEN, else dev.env).")
@click.option("--state-dir", default=".pedro", show_default=True, envvar="PEDRO_STATE_DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="Where `pedro-ingest dev` keeps dev secrets.")  # fmt: skip
@click.option(
    "--timeout", default=10.0, show_default=True, type=click.FloatRange(0.1, 120), help="Seconds per request."
)
@click.option("--wait", "wait_seconds", default=60.0, show_default=True, type=click.FloatRange(0, 600),
              help="Seconds to wait for each event's outcome (0: do not wait).")  # fmt: skip
def send_sample(
    url: str | None,
    providers: str,
    clerk_id: str | None,
    clerk_secret: str | None,
    asaas_token: str | None,
    state_dir: Path,
    timeout: float,
    wait_seconds: float,
) -> None:
    """Sign and post sample Clerk and Asaas events to a running receiver, then print what each one did.

    A Clerk `user.created` (a new user with the signup credits), then an Asaas `PAYMENT_RECEIVED`: a new
    purchase of the demo plan `dev` seeds, by that user. Each is sent once the one before it is applied, and
    its outcome is printed: status, user, credits, balance; then the worker's event counters when `dev`
    runs here. Exit status 1 when any is refused or does not apply.
    """
    from ingest.dev import samples, state

    run = state.running(state_dir)
    url = url or (run.receiver_url if run else "http://127.0.0.1:8000")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _fail(f"--url must be an http(s):// URL, got {url!r}")
    if clerk_id and providers != "asaas":
        _fail("--user goes with --provider asaas (the other samples make their own user)")
    wanted = PROVIDERS if providers == "all" else (providers,)
    if providers == "asaas" and not clerk_id:
        wanted = PROVIDERS
        click.echo("asaas: a payment needs a user: sending a new Clerk user first (--user CLERK_ID pays for yours)")
    clerk_id = clerk_id or f"user_{os.urandom(8).hex()}"
    requests: list[tuple[samples.SignedRequest, bool]] = []
    if "clerk" in wanted:
        secret, from_file = _credential("CLERK_WEBHOOK_SECRET", clerk_secret, state_dir)
        if not secret:
            _fail("no Clerk signing secret: pass --clerk-secret or set CLERK_WEBHOOK_SECRET")
        try:
            requests.append((samples.clerk_user_created(secret, clerk_id=clerk_id), from_file))
        except (ValueError, TypeError):
            _fail("the Clerk signing secret is malformed (expected whsec_<base64>)")
    if "asaas" in wanted:
        token, from_file = _credential("ASAAS_WEBHOOK_TOKEN", asaas_token, state_dir)
        if not token:
            _fail("no Asaas token: pass --asaas-token or set ASAAS_WEBHOOK_TOKEN")
        requests.append((samples.asaas_payment_received(token, clerk_id=clerk_id), from_file))
    outcomes = _outcome_reader(wait_seconds, state_dir)
    failures = sum(not _send(url, request, from_file, timeout, outcomes, state_dir) for request, from_file in requests)
    if run and run.metrics_url and outcomes is not None:
        _print_event_counters(run.metrics_url, timeout)
    if failures:
        _fail(f"{failures} sample(s) refused or not applied; see above")


def _send(
    url: str,
    request: samples.SignedRequest,
    from_file: bool,
    timeout: float,
    outcomes: Callable[[str], bool] | None,
    state_dir: Path,
) -> bool:
    """Post one sample and print its answer (and outcome); False when it was refused or did not apply."""
    status, answer = _post(url, request, timeout)
    if status == 404 and request.provider == "asaas":
        click.echo(f"{request.provider}: {request.description}: skipped, this receiver has no {request.path}")
        return True
    verdict = answer.get("status") or answer.get("error") or "?"
    click.echo(f"{request.provider}: {request.description}: {status} {verdict}")
    if status != 200:
        hint = REFUSED_HINTS.get(verdict)
        if hint:
            where = _stale_secret_hint(state_dir) if from_file else "pass the receiver's value"
            click.echo(f"  {hint.format(where=where)}", err=True)
        return False
    if outcomes is not None and answer.get("id"):
        return outcomes(answer["id"])
    return True


def _print_event_counters(metrics_url: str, timeout: float) -> None:
    """The worker's processed-events counters, as `curl <metrics_url> | grep events_processed_total` shows."""
    import urllib.request

    click.echo(f"worker counters ({metrics_url}):")
    try:
        with urllib.request.urlopen(metrics_url, timeout=timeout) as response:  # noqa: S310 - our own http URL
            text = response.read().decode()
    except OSError as error:
        click.echo(f"  not readable: {getattr(error, 'reason', error)}")
        return
    for line in text.splitlines():
        if "events_processed_total{" in line and not line.startswith("#"):
            click.echo(f"  {line}")
