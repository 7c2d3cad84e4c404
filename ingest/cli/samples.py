"""Operator commands of `pedro-ingest` that talk to a running receiver (`send-sample`)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import click

from ingest.dev import samples
from ingest.dev.children import dev_secrets

PROVIDERS = ("clerk", "asaas")


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _post(base_url: str, request: samples.SignedRequest, timeout: float) -> tuple[int, dict]:
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
        raise  # unreachable


def _credential(name: str, given: str | None, state_dir: Path) -> str | None:
    """The option/environment value, else the dev value `pedro-ingest dev` keeps in the state directory."""
    value = given or os.environ.get(name)
    if not value and (state_dir / "dev.env").exists():
        value = dev_secrets(state_dir).get(name)
    first = (value or "").split(",")[0].strip()  # during a rotation, the first (newest) one
    return first or None


@click.command("send-sample")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, envvar="PEDRO_RECEIVER_URL",
              help="Base URL of a running receiver.")  # fmt: skip
@click.option("--provider", "providers", type=click.Choice([*PROVIDERS, "all"]), default="all", show_default=True,
              help="Which provider's samples to send.")  # fmt: skip
@click.option("--clerk-secret", default=None, help="Signing secret (default: CLERK_WEBHOOK_SECRET, else dev.env).")
@click.option("--asaas-token", default=None, help="Access token (default: ASAAS_WEBHOOK_TOKEN, else dev.env).")
@click.option("--state-dir", default=".pedro", show_default=True, envvar="PEDRO_STATE_DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="Where `pedro-ingest dev` keeps dev secrets.")  # fmt: skip
@click.option(
    "--timeout", default=10.0, show_default=True, type=click.FloatRange(0.1, 120), help="Seconds per request."
)
def send_sample(
    url: str, providers: str, clerk_secret: str | None, asaas_token: str | None, state_dir: Path, timeout: float
) -> None:
    """Sign and post realistic Clerk and Asaas sample events to a running receiver.

    A Clerk `user.created` (a new user with the signup credits) and an Asaas `PAYMENT_RECEIVED` that
    references that user; prints each answer. Exit status 1 when any is refused.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _fail(f"--url must be an http(s):// URL, got {url!r}")
    wanted = PROVIDERS if providers == "all" else (providers,)
    clerk_id = f"user_{os.urandom(8).hex()}"
    requests: list[samples.SignedRequest] = []
    if "clerk" in wanted:
        secret = _credential("CLERK_WEBHOOK_SECRET", clerk_secret, state_dir)
        if not secret:
            _fail("no Clerk signing secret: pass --clerk-secret or set CLERK_WEBHOOK_SECRET")
        try:
            requests.append(samples.clerk_user_created(secret, clerk_id=clerk_id))
        except (ValueError, TypeError):
            _fail("the Clerk signing secret is malformed (expected whsec_<base64>)")
    if "asaas" in wanted:
        token = _credential("ASAAS_WEBHOOK_TOKEN", asaas_token, state_dir)
        if not token:
            _fail("no Asaas token: pass --asaas-token or set ASAAS_WEBHOOK_TOKEN")
        requests.append(samples.asaas_payment_received(token, clerk_id=clerk_id))
    refused = 0
    for request in requests:
        status, answer = _post(url, request, timeout)
        if status == 404 and request.provider == "asaas":
            click.echo(f"{request.provider}: {request.description}: skipped, this receiver has no {request.path}")
            continue
        verdict = answer.get("status") or answer.get("error") or "?"
        click.echo(f"{request.provider}: {request.description}: {status} {verdict}")
        refused += status != 200
    if refused:
        _fail(f"{refused} sample(s) refused; see the answers above")
