"""`pedro-ingest`: one command for every process and operation.

User mistakes (missing setting, unreachable database) end with one line on stderr and a non-zero exit,
never a traceback.
"""

from __future__ import annotations

import os
import sys

import click
from sqlalchemy.exc import OperationalError

from ingest.settings import ConfigError, Settings, get_settings


def fail(message: str, code: int = 2) -> None:
    click.echo(f"pedro-ingest: {message}", err=True)
    sys.exit(code)


def settings_or_exit() -> Settings:
    try:
        return get_settings()
    except ConfigError as error:
        fail(str(error))
        raise  # unreachable; keeps type checkers calm


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Webhook ingestion for Clerk and Asaas: verified receiver, durable inbox, exactly-once workers."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--workers", "-w", default=2, show_default=True, type=click.IntRange(1, 64), help="Gunicorn workers.")
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn (never in production).")
def serve(host: str, port: int, workers: int, dev: bool) -> None:
    """Run the webhook receiver (gunicorn, sync workers)."""
    settings_or_exit()
    if dev:
        from ingest.app import create_app

        create_app().run(host=host, port=port)
        return
    argv = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "--worker-class", "sync",
        "--timeout", "30",
        "--graceful-timeout", "20",
        "--access-logfile", "-",
        "ingest.wsgi:app",
    ]  # fmt: skip
    os.execv(sys.executable, argv)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker on the events queue; extra arguments go to `celery worker`."""
    settings = settings_or_exit()
    argv = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", settings.celery_queue]
    if not any(arg.startswith(("-l", "--loglevel")) for arg in celery_args):
        argv += ["--loglevel", settings.log_level]
    os.execv(sys.executable, argv + list(celery_args))


@main.command()
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
def migrate(revision: str) -> None:
    """Create or upgrade the schema; adopts a database that Prisma created (stamps the baseline)."""
    from migrations.runner import migrate as run_migrations

    settings = settings_or_exit()
    try:
        before, after, adopted = run_migrations(settings.database_url, revision)
    except OperationalError as error:
        fail(f"database unreachable: {str(error.orig).strip().splitlines()[0]}")
        return
    if adopted:
        click.echo("adopted an existing Prisma database: stamped the baseline revision 0001")
    click.echo(f"migrated: {before or 'empty'} -> {after}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Receiver interface.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Receiver port.")
def dev(host: str, port: int) -> None:
    """Migrate, then run receiver and worker together until Ctrl-C (local runs)."""
    from ingest.devrun import run_children
    from migrations.runner import ensure_database

    settings = settings_or_exit()
    try:
        if ensure_database(settings.database_url):
            click.echo("created the database named in DATABASE_URL")
    except OperationalError as error:
        fail(f"database unreachable: {str(error.orig).strip().splitlines()[0]}")
    click.get_current_context().invoke(migrate)
    me = [sys.executable, "-m", "ingest.cli"]
    click.echo(f"receiver: http://{host}:{port}/webhooks/clerk  broker: {settings.celery_broker_url}")
    sys.exit(
        run_children(
            {
                "receiver": [*me, "serve", "--host", host, "--port", str(port), "--workers", "2"],
                "worker": [*me, "worker", "-c", "2"],
            }
        )
    )


from ingest import cli_events  # noqa: E402 - needs `main` above

main.add_command(cli_events.events)
main.add_command(cli_events.replay)
main.add_command(cli_events.sweep)

if __name__ == "__main__":
    main()
