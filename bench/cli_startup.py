"""CLI start-up: `pedro-ingest --help`, every `<command> --help` and `events list`, against import floors.

    python bench/cli_startup.py [--repeat 5]

Each figure is the median wall time of `--repeat` runs of a fresh process. Two floors are measured in the
same run: a bare `python -c pass` (the interpreter) and a process that only imports what `events list`
cannot avoid (SQLAlchemy with its ORM, psycopg2, pydantic-settings, click). Targets: `--help` forms under
0.5 s on a quiet machine, `events list` within 0.3 s of the import floor. `events list` reads a migrated
throw-away database (PEDRO_BENCH_ADMIN_URL's server).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ThrowawayDatabase  # noqa: E402

FLOOR_IMPORTS = "import click, psycopg2, pydantic_settings, sqlalchemy, sqlalchemy.orm"


def timed(argv: list[str], env: dict[str, str], repeat: int) -> float:
    """Median seconds of `repeat` runs; a failing run stops the benchmark with its output."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {result.returncode}: {result.stderr[-2000:]}")
    return statistics.median(times)


def command_names() -> list[str]:
    from ingest.cli import main

    return sorted(main.list_commands(None))  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "PEDRO_STATE"))}
    env["PEDRO_STATE_DIR"] = "/nonexistent-pedro-state"  # never a running dev's database
    cli = [sys.executable, "-m", "ingest.cli"]
    python = timed([sys.executable, "-c", "pass"], env, args.repeat)
    floor = timed([sys.executable, "-c", FLOOR_IMPORTS], env, args.repeat)
    print(f"python -c pass:                  {python:.3f}s")
    print(f"import floor ({FLOOR_IMPORTS[7:]}): {floor:.3f}s")
    helps = {"--help": timed([*cli, "--help"], env, args.repeat)}
    for name in command_names():
        helps[f"{name} --help"] = timed([*cli, name, "--help"], env, args.repeat)
    for what, seconds in helps.items():
        print(f"pedro-ingest {what:<28} {seconds:.3f}s  ({seconds - python:+.3f}s over python)")
    with ThrowawayDatabase("pedro_cli_bench") as database:
        listed = timed([*cli, "events", "list"], {**env, "DATABASE_URL": database.url}, args.repeat)
    print(f"pedro-ingest events list          {listed:.3f}s  ({listed - floor:+.3f}s over the import floor)")
    slowest = max(helps, key=helps.__getitem__)
    print(
        f"SUMMARY python={python:.3f} floor={floor:.3f} help={helps['--help']:.3f} "
        f"slowest_help={helps[slowest]:.3f} slowest_help_command={slowest.split()[0]} "
        f"events_list={listed:.3f} events_list_over_floor={listed - floor:+.3f}"
    )


if __name__ == "__main__":
    main()
