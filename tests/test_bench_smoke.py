"""Tiny runs of the benchmarks so they do not rot. They check that each prints its summary and that the
work was really done; they assert nothing about speed (figures belong in the benchmarks' output)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import ADMIN_URL, REDIS_URL

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # each run makes its own database, servers or workers


def run_bench(script: str, *args: str) -> dict[str, str]:
    """Runs on the servers the tests use (this process's Redis database, not the benchmarks' default 0)."""
    env = os.environ | {"PEDRO_BENCH_REDIS_URL": REDIS_URL, "PEDRO_BENCH_ADMIN_URL": ADMIN_URL}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = re.search(r"^SUMMARY (.*)$", result.stdout, re.MULTILINE)
    assert summary, result.stdout
    return dict(field.split("=", 1) for field in summary.group(1).split())


def test_receiver_benchmark_smoke() -> None:
    figures = run_bench("receiver.py", "--seconds", "1", "--connections", "4", "--driver", "python",
                        "--no-half-rate")  # fmt: skip
    assert figures["errors"] == "0"
    assert float(figures["receiver_rps"]) > 0 and float(figures["bare_rps"]) > 0
    from ingest.http.server.serving import WORKER_CONNECTIONS

    assert figures["gunicorn"].endswith(f"gevent({WORKER_CONNECTIONS})")  # what `serve` runs, not a bench's own
    assert float(figures["cpu_bare/receiver"]) > 0
    assert {"postgresql", "redis_server", "gevent", "psycopg2"} <= figures.keys()  # what it was measured with


def test_drain_benchmark_smoke() -> None:
    figures = run_bench("drain.py", "--events", "200", "--batch", "10")
    assert figures["not_processed"] == "0"
    assert figures["effects_pedro"] == figures["effects_raw"]  # the same effects as the ceiling
    assert not figures["effects_pedro"].startswith("0grants")


def test_inline_baseline_smoke() -> None:
    figures = run_bench("inline_baseline.py", "--rate", "10", "--steady", "1", "--burst", "1")
    assert figures["errors"] == "0"


def test_payment_sync_benchmark_smoke() -> None:
    figures = run_bench("payment_sync.py", "--payments", "60", "--latency", "0")
    assert (figures["applied"], figures["applied_again"], figures["grants"]) == ("60", "0", "120")


def test_deductions_benchmark_smoke() -> None:
    figures = run_bench("deductions.py", "--calls", "40", "--threads", "2")
    assert figures["calls"] == "40"
    assert figures["deduction_rows"] == "160"  # 40 calls, two rounds each for spread and one user
    assert float(figures["pedro/baseline"]) > 0


def test_lot_deduction_and_expiry_benchmark_smoke() -> None:
    lots = run_bench("deductions.py", "--lots", "--calls", "40", "--threads", "2")
    assert lots["lots_per_spread_call"] == "3.00"  # every spread call drew from the plan, signup and purchase lots
    assert float(lots["lots_cost_one_user"]) > 0 and float(lots["lots_cost_spread"]) > 0
    expiry = run_bench("deductions.py", "--expiry", "2000", "--batch", "50")
    assert (expiry["due"], expiry["lots"]) == ("200", "2000")
    assert float(expiry["expiry_job/plain_update"]) > 0


def test_broker_inventory_benchmark_smoke() -> None:
    figures = run_bench("broker_inventory.py", "--sizes", "50,300")
    assert figures["queued"] == "300"
    assert figures["missing_found"] == "lost"  # every queued id was seen; only the absent one is missing


def test_worker_profile_smoke() -> None:
    figures = run_bench("worker_profile.py", "--events", "120")
    assert float(figures["round_trips_per_event"]) > 0  # every delivery was applied through the stopwatches
    assert float(figures["celery_us_per_event"]) > 0  # and by a real worker


def test_receiver_profile_smoke() -> None:
    import shutil

    if not (Path(sys.executable).with_name("py-spy").exists() or shutil.which("py-spy")):
        pytest.skip("py-spy is not installed (pip install -e '.[bench]')")
    figures = run_bench("receiver_profile.py", "--seconds", "2", "--connections", "4", "--driver", "python")
    assert figures["errors"] == "0"
    assert int(figures["samples"]) > 0  # py-spy saw the gunicorn workers


def test_sequential_benchmark_smoke() -> None:
    figures = run_bench("sequential.py", "--seconds", "1", "--rounds", "1")
    assert figures["errors"] == "0"
    assert int(figures["stored"]) > 0


def test_burst_benchmark_smoke() -> None:
    figures = run_bench("burst.py", "--events", "150", "--connections", "3", "--rates", "20", "--window", "2")
    assert figures["3conn_errors"] == "0.00"
    assert float(figures["3conn_drained_s"]) > 0  # every event reached `processed`
