"""The code layout's rules, checked rather than reviewed: layers import only downward (import-linter
contracts in pyproject.toml), every package is a package, modules stay small, comments stand alone."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ingest", "workers", "models", "migrations")
MAX_LINES = 300


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    command = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    env = {"PYTHONPATH": str(cwd), "PATH": str(Path(sys.executable).parent)}
    return subprocess.run([command, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_layers_import_only_downward() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_wrong_import_breaks_the_contracts(tmp_path: Path) -> None:
    """The check is live: the receiver core importing Flask, or models importing the settings, fails it."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with open(tmp_path / "ingest" / "receiver" / "errors.py", "a") as module:
        module.write("\nimport flask  # noqa\n")
    with open(tmp_path / "models" / "base.py", "a") as module:
        module.write("\nfrom ingest.config import settings  # noqa\n")
    with open(tmp_path / "workers" / "providers" / "retry.py", "a") as module:
        module.write("\nfrom workers.processing import errors  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "The receiver core knows no web framework BROKEN" in result.stdout
    assert "Models import nothing of ours above them BROKEN" in result.stdout
    assert "Provider API clients know nothing of the worker rooms that use them BROKEN" in result.stdout


def source_files() -> list[Path]:
    return [path for package in PACKAGES for path in (ROOT / package).rglob("*.py") if "__pycache__" not in path.parts]


def test_every_directory_of_code_is_a_package() -> None:
    directories = {path.parent for path in source_files() if path.parent.name != "versions"}
    missing = [str(d.relative_to(ROOT)) for d in directories if not (d / "__init__.py").exists()]
    assert not missing, f"directories without __init__.py: {missing}"


def test_no_module_is_too_long_to_read() -> None:
    long = {str(p.relative_to(ROOT)): n for p in source_files() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by concept): {long}"


def test_code_comments_do_not_point_outside_the_repository() -> None:
    """A clone has no DESIGN.md and no issue tracker: comments must say the reason, not where it was said."""
    pattern = re.compile(r"DESIGN\.md|\bissue \d+|\bissue #\d+", re.IGNORECASE)
    hits = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in [
            *source_files(),
            *(p for p in (ROOT / "tests").rglob("*.py") if p.name != "test_layout.py"),
            *(ROOT / "bench").rglob("*.py"),
            ROOT / "celeryconfig.py",
        ]
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, hits
