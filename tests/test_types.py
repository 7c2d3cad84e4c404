"""The type checker's verdict on the packages (`[tool.mypy]` in pyproject.toml): strict on the models, the
receiver, the formats and the handlers, the default checks on the rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_passes_on_the_configured_packages() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=280, check=False
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Success: no issues found" in result.stdout


def test_the_strict_packages_are_the_ones_the_project_promises() -> None:
    """Loosening the strict list is a decision, not an accident of editing pyproject.toml."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert set(config["files"]) == {"ingest", "workers", "models", "migrations"}
    strict = next(o for o in config["overrides"] if o.get("disallow_untyped_defs"))
    assert {"models.*", "ingest.receiver.*", "ingest.formats.*", "workers.handlers.*"} <= set(strict["module"])
    assert all(strict[flag] for flag in ("disallow_any_generics", "disallow_untyped_calls", "warn_return_any"))
