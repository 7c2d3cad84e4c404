"""docs/security.md stays true: every row names a test that exists and checks the answer the row states."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "security.md"


def table_rows() -> list[tuple[str, str, str, str]]:
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[3].startswith("`test_"):
            rows.append((cells[0], cells[1], cells[2], cells[3].strip("`")))
    return rows


ROWS = table_rows()


def test_the_table_has_a_row_for_every_hostile_input_of_this_round() -> None:
    assert len(ROWS) >= 20


@pytest.mark.parametrize(("where", "hostile", "answer", "test"), ROWS, ids=[row[1][:50] for row in ROWS])
def test_each_row_names_a_test_that_checks_its_answer(where: str, hostile: str, answer: str, test: str) -> None:
    file_name, function = test.split("::")
    source = (ROOT / "tests" / file_name).read_text()
    found = [
        node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef) and node.name == function
    ]
    assert found, f"{test} does not exist"
    first = min([found[0].lineno] + [decorator.lineno for decorator in found[0].decorator_list])
    body = "\n".join(source.splitlines()[first - 1 : found[0].end_lineno])  # its parameters too
    for code in re.findall(r"`([^`]+)`", answer):
        if code.isupper() or code.isdigit() and len(code) != 3:
            continue  # a setting's name, not an answer
        assert code in body, f"{test} does not check {code!r}"
