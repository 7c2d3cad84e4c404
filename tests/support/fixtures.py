"""Provider payloads kept under tests/fixtures, loaded as fresh copies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent.parent / "fixtures"


def load_fixture(name: str) -> dict[str, Any]:
    """A fresh (deep) copy of `tests/fixtures/<name>`, for a test to change at will."""
    return json.loads((FIXTURES / name).read_text())
