"""CLI start-up: `pedro-ingest --help`, every `<command> --help` and `events list`, against import floors.

    python bench/cli_startup.py [--repeat 7]

Each figure is the fastest of `--repeat` runs of a fresh process (the installed `pedro-ingest` script),
all commands' runs interleaved. Two baselines are measured in the same run: a bare `python -c pass` (the
interpreter) and a process that only imports what `events list` cannot avoid (SQLAlchemy: its ORM and
its psycopg2 dialect; psycopg2, pydantic-settings, click). Targets: `--help` forms under 0.5 s on a quiet
machine, `events list` within 0.3 s of the import floor. `events list` reads a migrated throw-away database
(on PEDRO_BENCH_ADMIN_URL's server).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ThrowawayDatabase  # noqa: E402

FLOOR_IMPORTS = "import click, psycopg2, pydantic_settings, sqlalchemy.orm, sqlalchemy.dialects.postgresql.psycopg2"


def run_once(argv: list[str], env: dict[str, str]) -> float:
    """Seconds one fresh process took; a failing run stops the benchmark with its output."""
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}: {result.stderr[-2000:]}")
    return elapsed


def fastest(commands: dict[str, tuple[list[str], dict[str, str]]], repeat: int) -> dict[str, float]:
    """Each command's fastest of `repeat` runs, the runs interleaved (round after round), so that a busy spell
    of the machine slows every figure alike instead of one; the fastest run is the one least disturbed."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, (argv, env) in commands.items():
            times[name].append(run_once(argv, env))
    return {name: min(values) for name, values in times.items()}


def command_names() -> list[str]:
    from ingest.cli import main

    return sorted(main.list_commands(None))  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["PEDRO_STATE_DIR"] = "/nonexistent-pedro-state"  # never a running dev's database
    script = Path(sys.executable).parent / "pedro-ingest"
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "ingest.cli"]
    with ThrowawayDatabase("pedro_cli_bench") as database:
        commands = {
            "python": ([sys.executable, "-c", "pass"], env),
            "floor": ([sys.executable, "-c", FLOOR_IMPORTS], env),
            "events list": ([*cli, "events", "list"], {**env, "DATABASE_URL": database.url}),
            "--help": ([*cli, "--help"], env),
            **{f"{name} --help": ([*cli, name, "--help"], env) for name in command_names()},
        }
        took = fastest(commands, args.repeat)
    python, floor, listed = took.pop("python"), took.pop("floor"), took.pop("events list")
    print(f"fastest of {args.repeat} interleaved runs each")
    print(f"python -c pass                            {python:.3f}s")
    print(f"import floor (click, psycopg2, pydantic-settings, SQLAlchemy ORM + psycopg2 dialect) {floor:.3f}s")
    for what, seconds in took.items():
        print(f"pedro-ingest {what:<28} {seconds:.3f}s  ({seconds - python:+.3f}s over python)")
    print(f"pedro-ingest events list                  {listed:.3f}s  ({listed - floor:+.3f}s over the import floor)")
    slowest = max(took, key=took.__getitem__)
    print(
        f"SUMMARY python={python:.3f} floor={floor:.3f} help={took['--help']:.3f} "
        f"slowest_help={took[slowest]:.3f} slowest_help_command={slowest.split()[0]} "
        f"events_list={listed:.3f} events_list_over_floor={listed - floor:+.3f} events_list_ratio={listed / floor:.2f}"
    )


if __name__ == "__main__":
    main()
