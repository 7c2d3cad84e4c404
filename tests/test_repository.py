"""The repository's promises to a new user: lint-clean code, README commands that CI really runs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r'^TEST_COMMAND="(.+)"$', ci, re.MULTILINE)
    assert command, "TEST_COMMAND not found in .ci/run"
    readme = (ROOT / "README.md").read_text()
    assert command.group(1) in readme
    assert 'bash -c "$TEST_COMMAND"' in ci


def test_baseline_copies_match() -> None:
    """The migration's Prisma DDL and the test fixture are the same file."""
    migration_copy = (ROOT / "migrations" / "prisma_baseline.sql").read_bytes()
    assert migration_copy == (ROOT / "tests" / "fixtures" / "prisma_baseline.sql").read_bytes()
    shared = ROOT.parent / "shared" / "prisma_baseline.sql"
    if shared.exists():  # beside the project in CI; a user's clone stands alone
        assert migration_copy == shared.read_bytes()
