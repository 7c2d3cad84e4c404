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


README_MAX_BYTES = 22_000
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens (code blocks skipped)."""
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    headings = re.findall(r"^#{1,6} (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_readme_stays_short() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size < README_MAX_BYTES, f"README.md is {size} bytes: move deep material to docs/"


def test_relative_links_in_readme_and_docs_point_at_existing_files_and_headings() -> None:
    broken = []
    for document in documents():
        markdown = document.read_text()
        for target in LINK.findall(re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)):
            if re.match(r"[a-z]+:", target):  # http(s), mailto: not ours to check offline
                continue
            path, _, anchor = target.partition("#")
            linked = (document.parent / path).resolve() if path else document
            if not linked.exists():
                broken.append(f"{document.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
                broken.append(f"{document.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
