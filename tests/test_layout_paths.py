"""Names of files and modules in prose stay true: a comment, docstring or doc (README, CHANGELOG, docs/)
that names a repository path (`workers/jobs/runner.py`) or a dotted module (`workers.jobs.runner`) names
one that exists, README's layout tree names only directories that exist, and `workers/` keeps every module
in its rooms."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE_ROOTS = ("ingest", "workers", "models", "migrations", "tests", "bench")
PATH = re.compile(
    r"(?<![\w/.:@-])((?:[\w.-]+/)+[\w-]+\.(?:py|md|yml|yaml|toml|sql|prisma|json|ts|js|sh|cfg|ini|html|txt))\b"
)
DOTTED = re.compile(rf"(?<![\w./-])((?:{'|'.join(CODE_ROOTS)})(?:\.[A-Za-z_]\w*)+)")
# Paths that are not the repository's: the web app's own Prisma folder, and the state `dev` writes at run time.
OUTSIDE = ("prisma/", "./.pedro/", ".pedro/")
WORKER_ROOMS = {"processing", "jobs", "providers", "handlers"}


@cache
def tracked() -> frozenset[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return frozenset(name for name in listed if (ROOT / name).exists())


def path_exists(reference: str, where: Path) -> bool:
    """Beside the file that names it (a doc's `../README.md`), or as the tail of a tracked path (prose may name
    `handlers/asaas_sync.py` inside `workers/`)."""
    if reference.startswith(OUTSIDE) or (where.parent / reference).exists():
        return True
    return any(name == reference or name.endswith("/" + reference) for name in tracked())


def module_exists(reference: str) -> bool:
    """`a.b.c` is a module or package, or a module followed by one or two names that it defines or imports."""
    parts = reference.split(".")
    for length in range(len(parts), 0, -1):
        base = "/".join(parts[:length])
        source = next((name for name in (base + ".py", base + "/__init__.py") if name in tracked()), None)
        if source is None:
            continue
        rest = parts[length:]
        defined = bool(rest) and re.search(rf"\b{re.escape(rest[0])}\b", (ROOT / source).read_text()) is not None
        return not rest or (len(rest) <= 2 and defined)
    return False


def prose(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of a doc's lines, or of a Python module's comments and docstrings."""
    text = path.read_text()
    if path.suffix != ".py":
        return list(enumerate(text.splitlines(), 1))
    lines = [
        (token.start[0], token.string)
        for token in tokenize.generate_tokens(io.StringIO(text).readline)
        if token.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=False)
            if docstring is not None:
                start = node.body[0].lineno
                lines += [(start + offset, line) for offset, line in enumerate(docstring.splitlines())]
    return lines


def prose_files() -> list[Path]:
    docs = [
        name for name in tracked() if name in ("README.md", "CHANGELOG.md") or re.fullmatch(r"docs/[^/]+\.md", name)
    ]
    code = [name for name in tracked() if name.endswith(".py") and name.split("/")[0] in CODE_ROOTS]
    return [ROOT / name for name in sorted({*docs, *code, "celeryconfig.py"})]


def stale_names(files: list[Path]) -> list[str]:
    stale = []
    for path in files:
        for number, line in prose(path):
            named = [ref for ref in PATH.findall(line) if not path_exists(ref, path)]
            named += [ref for ref in DOTTED.findall(line) if not module_exists(ref.rstrip("."))]
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
            stale += [f"{shown}:{number}: {ref}" for ref in named]
    return stale


def test_prose_names_only_paths_and_modules_that_exist() -> None:
    assert stale_names(prose_files()) == []


def test_the_check_finds_a_stale_name(tmp_path: Path) -> None:
    """Live: a comment naming a moved module, a docstring naming a moved file, a doc naming a dotted module."""
    module = tmp_path / "example.py"
    module.write_text('"""Moved: see `models/ledger.py`."""\n\nx = 1  # workers.processing.apply.process_event\n'
                      "# workers.crash_handlers is gone\n")  # fmt: skip
    doc = tmp_path / "page.md"
    doc.write_text("Run `pedro-ingest worker -I tests.crash_handlers`; config in `deploy/prometheus/alerts.yml`.\n")
    found = [line.split(": ", 1)[1] for line in stale_names([module, doc])]
    assert sorted(found) == ["models/ledger.py", "tests.crash_handlers", "workers.crash_handlers"]


def readme_layout_tree() -> list[str]:
    """The lines of README's layout block (the fenced block under "## Development")."""
    development = (ROOT / "README.md").read_text().split("\n## Development", 1)[1]
    return development.split("```\n", 1)[1].split("```", 1)[0].splitlines()


def test_readme_layout_tree_names_only_existing_directories() -> None:
    """The first column (23 characters) names a directory, indented under the one above when nested; rooms
    named in the description (`handlers/`) are inside the row's directory."""
    missing, top, row = [], "", ""
    for line in readme_layout_tree():
        name, description = line[:23], re.split(r"[│┘┐┤]", line[23:])[0]
        if name.strip().endswith("/"):
            row = top + name.strip() if name.startswith(" ") else name.strip()
            top = top if name.startswith(" ") else row
            missing += [] if (ROOT / row).is_dir() else [row]
        rooms = re.findall(r"(?<![\w/])([a-z_]+/)", description)
        missing += [row + room for room in rooms if not (ROOT / row / room).is_dir()]
    assert top, "the layout tree was not found"
    assert not missing, missing


def test_workers_keep_every_module_in_a_room() -> None:
    loose = {path.name for path in (ROOT / "workers").glob("*.py")} - {"__init__.py", "celery_app.py"}
    rooms = {path.name for path in (ROOT / "workers").iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert not loose, f"modules of workers/ outside its rooms: {sorted(loose)}"
    assert rooms == WORKER_ROOMS, rooms
