"""Commands that run the processes: `serve` (receiver), `worker`, `dev` (everything, locally).

`beat` lives with the periodic jobs (`ingest.cli.periodic`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ingest.cli.database import create_and_migrate
from ingest.cli.support import fail, settings_or_exit

if TYPE_CHECKING:
    from ingest.config.settings import Settings


def share_metrics_between_processes(role: str) -> None:
    """Prometheus multiprocess mode for the process family about to start (a fresh or emptied directory)."""
    from ingest.observability.metrics import MULTIPROC_ENV, prepare_multiproc_dir

    os.environ[MULTIPROC_ENV] = prepare_multiproc_dir(os.environ.get(MULTIPROC_ENV), role)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--workers", "-w", default=2, show_default=True, type=click.IntRange(1, 64), help="Gunicorn workers.")
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn (never in production).")
def serve(host: str, port: int, workers: int, dev: bool) -> None:
    """Run the webhook receiver (gunicorn, gevent workers)."""
    settings = settings_or_exit(publishes=True)
    if dev:
        from ingest.config.ports import clash_message, port_taken
        from ingest.http.app import create_app
        from ingest.observability.logs import configure_logging

        if reason := port_taken(host, port):
            fail(clash_message(host, port, reason, "--port"))
        configure_logging(settings.log_level, settings.log_format)
        create_app().run(host=host, port=port)
        return
    from ingest.config.settings import ConfigError
    from ingest.http.server.serving import bind_address, first_clash, gunicorn_argv

    try:
        argv = gunicorn_argv(host, port, workers)
    except ConfigError as error:
        fail(str(error))
    binds = [bind_address(host, port), bind_address(settings.ops_host, settings.ops_port)]
    clash = first_clash(binds, settings, "--port")
    if clash:
        fail(clash)
    _warn_about_setup(settings)
    share_metrics_between_processes("receiver")
    os.execv(sys.executable, argv)


def _warn_about_setup(settings: Settings) -> None:
    """One WARNING per broken part of the setup before the receiver starts: it starts anyway (a database
    or broker may come back), but never silently."""
    import logging

    from ingest.http.readiness import problems_at_start
    from ingest.observability.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    log = logging.getLogger("pedro_ingest.serve")
    for problem in problems_at_start(settings):
        log.warning("%s", problem)


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker on the events and periodic queues; extra arguments go to `celery worker`."""
    settings = settings_or_exit(publishes=True)
    queues = f"{settings.celery_queue},{settings.periodic_queue}"  # events + periodic jobs (celeryconfig.py)
    argv = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", queues]
    if not any(arg.startswith(("-l", "--loglevel")) for arg in celery_args):
        argv += ["--loglevel", settings.log_level]
    share_metrics_between_processes("worker")
    os.execv(sys.executable, argv + list(celery_args))


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Receiver interface.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    envvar="PEDRO_DEV_PORT",
    type=click.IntRange(1, 65535),
    help="Receiver port (a free one if 8000 is taken and none is given).",
)
@click.option(
    "--ops-port",
    default=8001,
    show_default=True,
    envvar="OPS_PORT",
    type=click.IntRange(1, 65535),
    help="Operations port: /metrics, /readyz, the console (a free one if 8001 is taken and none is given).",
)
@click.option(
    "--metrics-port",
    default=9808,
    show_default=True,
    envvar="WORKER_METRICS_PORT",
    type=click.IntRange(0, 65535),
    help="Worker's /metrics port, 0: none (a free one if 9808 is taken and none is given).",
)
@click.option(
    "--state-dir",
    default=".pedro",
    show_default=True,
    envvar="PEDRO_STATE_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the embedded servers keep their data and dev secrets (kept between runs).",
)
@click.option("--reset", is_flag=True, help="Wipe the state directory first (embedded data and dev secrets).")
@click.pass_context
def dev(
    ctx: click.Context, host: str, port: int, ops_port: int, metrics_port: int, state_dir: Path, reset: bool
) -> None:
    """Migrate, then run receiver, worker and beat together until Ctrl-C.

    With neither DATABASE_URL nor CELERY_BROKER_URL set, an embedded PostgreSQL and Redis are started
    with their data under --state-dir (and a demo plan for `send-sample`); otherwise the configured servers
    are used. Ports another program holds are replaced by free ones, unless given; the ports in use are
    printed. Other commands run in this folder find this stack through --state-dir.
    """
    from ingest.dev import state

    ports = _dev_ports(ctx, host, port, ops_port, metrics_port)
    try:
        lock = state.claim(state_dir)
    except state.AlreadyRunning as error:
        fail(str(error))
    try:
        code = _run_dev(host, ports, state_dir, reset)
    finally:
        state.release(state_dir, lock)
    sys.exit(code)


def _dev_ports(ctx: click.Context, host: str, port: int, ops_port: int, metrics_port: int) -> tuple[int, int, int]:
    """Receiver, operations and worker-metrics ports: free defaults, or free ones instead; chosen ones kept."""
    from click.core import ParameterSource

    from ingest.dev.ports import PortTaken, WantedPort, settle

    def chosen(name: str) -> bool:
        return ctx.get_parameter_source(name) is not ParameterSource.DEFAULT

    wanted = [
        WantedPort("receiver", "--port or PEDRO_DEV_PORT", host, port, chosen("port")),
        WantedPort("operations", "--ops-port or OPS_PORT", os.environ.get("OPS_HOST") or "127.0.0.1", ops_port,
                   chosen("ops_port")),
        WantedPort("worker metrics", "--metrics-port or WORKER_METRICS_PORT",
                   os.environ.get("WORKER_METRICS_HOST") or "127.0.0.1", metrics_port, chosen("metrics_port")),
    ]  # fmt: skip
    try:
        (port, ops_port, metrics_port), notes = settle(wanted)
    except PortTaken as error:
        fail(str(error))
    for line in notes:
        click.echo(line)
    os.environ["OPS_PORT"] = str(ops_port)  # for the settings below and the children
    os.environ["WORKER_METRICS_PORT"] = str(metrics_port)
    return port, ops_port, metrics_port


def _run_dev(host: str, ports: tuple[int, int, int], state_dir: Path, reset: bool) -> int:
    from ingest.config.settings import get_settings
    from ingest.dev import children as devrun
    from ingest.dev import state

    port = ports[0]
    embedded = None
    if not os.environ.get("DATABASE_URL") and not os.environ.get("CELERY_BROKER_URL"):
        from ingest.dev import embedded as embedded_servers

        try:
            embedded = embedded_servers.start(state_dir, reset=reset)
        except embedded_servers.EmbeddedUnavailable as error:
            fail(str(error))
        os.environ["DATABASE_URL"] = embedded.database_url
        os.environ["CELERY_BROKER_URL"] = embedded.broker_url
    elif reset:
        click.echo("--reset only applies to the embedded servers; the configured ones are left alone", err=True)
    try:
        for name, value in devrun.dev_secrets(state_dir).items():
            if not os.environ.get(name):
                os.environ[name] = value
                click.echo(f"{name} not set: using the dev value kept in {state_dir}/dev.env")
        get_settings.cache_clear()
        settings = settings_or_exit(publishes=True)
        create_and_migrate(settings)
        if embedded is not None:
            _seed_demo_plan(settings)
        receiver_url = f"http://{host}:{port}"
        ops_url = f"http://{settings.ops_host}:{settings.ops_port}"
        metrics_url = f"http://127.0.0.1:{settings.worker_metrics_port}/metrics" if settings.worker_metrics_port else ""
        state.record(
            state_dir,
            state.DevRun(os.getpid(), settings.database_url, settings.celery_broker_url, receiver_url, bool(embedded),
                         ops_url, metrics_url),
        )  # fmt: skip
        me = [sys.executable, "-m", "ingest.cli"]
        children = {
            "receiver": [*me, "serve", "--host", host, "--port", str(port), "--workers", "2"],
            "worker": [*me, "worker", "-c", "2"],
            "beat": [*me, "beat", "--schedule", str(state_dir / "beat-schedule")],
        }
        click.echo(f"receiver:   {receiver_url}/webhooks/clerk, /webhooks/asaas")
        click.echo(f"operations: {ops_url}/metrics, /readyz")
        if settings.console_password:
            click.echo(f"console:    {ops_url}/console/ (user admin, CONSOLE_PASSWORD)")
        if metrics_url:
            click.echo(f"worker:     {metrics_url} (events processed)")
        click.echo(f"database: {devrun.redact_url(settings.database_url)}")
        click.echo(f"broker:   {devrun.redact_url(settings.celery_broker_url)}")
        click.echo(f"running {', '.join(children)}; Ctrl-C stops them all")
        return devrun.run_children(children)
    finally:
        if embedded is not None:
            embedded.stop()


def _seed_demo_plan(settings: Settings) -> None:
    from ingest.config.database import engine_from
    from ingest.dev.demo import DEMO_PLAN_CREDITS, DEMO_PLAN_ID, seed_demo_plan

    engine = engine_from(settings)
    try:
        if seed_demo_plan(engine):
            click.echo(f"seeded the demo plan {DEMO_PLAN_ID} ({DEMO_PLAN_CREDITS} credits) in the embedded database")
    finally:
        engine.dispose()


PROCESS_COMMANDS = (serve, worker, dev)
