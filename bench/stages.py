"""Where the time of one request or one event goes: wall-clock stopwatches around named stages.

A profiler (cProfile) slows Python by 2-3x and blurs what waits on sockets; a pair of `perf_counter()`
calls per stage costs well under a microsecond. The breakdown benches wrap the functions that bound each
stage (`Stages.wrap`), time every SQL statement by its text (`Stages.watch_engine`), and print µs per
unit; the stage left over ("other") is the total minus the named ones, so the table always adds up.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event


class Stages:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._open: list[str] = []  # stages running now (nested): statements are charged to their SQL stage

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] += seconds
        self.calls[name] += 1

    def wrap(self, owner: Any, attribute: str, name: str) -> None:
        """Replace `owner.attribute` by a timed version (restored by nothing: benches are one-shot)."""
        original = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            self._open.append(name)
            try:
                return original(*args, **kwargs)
            finally:
                self._open.pop()
                self.add(name, time.perf_counter() - started)

        setattr(owner, attribute, timed)

    def watch_engine(self, engine: Engine, label: Callable[[str], str]) -> None:
        """Time every statement (its round trip included) under `sql: <label>`, and every commit."""

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            conn.info["pedro_bench_started"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            self.add(f"sql: {label(statement)}", time.perf_counter() - conn.info.pop("pedro_bench_started"))

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:  # psycopg2 sends BEGIN as a round trip of its own before the first statement
            if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                self.calls["implicit BEGIN"] += 1

        dialect = engine.dialect
        for method, name in (("do_commit", "sql: COMMIT"), ("do_rollback", "sql: ROLLBACK")):
            self.wrap(dialect, method, name)

    def round_trips(self) -> int:
        """Messages to PostgreSQL: statements (several in one message count once), COMMITs, implicit BEGINs.
        (psycopg2 sends no ROLLBACK outside a transaction: the pool's reset-on-return is not counted.)"""
        sent = sum(calls for name, calls in self.calls.items() if name.startswith("sql: ") and "ROLLBACK" not in name)
        return sent + self.calls["implicit BEGIN"]

    def table(self, units: int, total_name: str, unit: str, inner: dict[str, list[str]] | None = None) -> str:
        """Rows of µs per unit, largest first; `inner` subtracts named stages from an enclosing one."""
        per = {name: seconds / units * 1e6 for name, seconds in self.seconds.items()}
        for outer, parts in (inner or {}).items():
            if outer in per:
                per[outer] -= sum(per.get(part, 0.0) for part in parts)
        total = per.pop(total_name)
        lines = [f"| stage | µs per {unit} | share | calls per {unit} |", "|---|---:|---:|---:|"]
        per.pop("implicit BEGIN", None)
        for name, value in sorted(per.items(), key=lambda item: -item[1]):
            lines.append(f"| {name} | {value:,.0f} | {value / total:.0%} | {self.calls[name] / units:.2f} |")
        lines.append(f"| **total** | **{total:,.0f}** | 100% | |")
        return "\n".join(lines)


_SPACE = re.compile(r"\s+")


def statement_label(statement: str) -> str:
    """A short, stable name for a statement: verb and table, e.g. `INSERT "User"`, `SELECT … "Plan"`."""
    flat = _SPACE.sub(" ", statement).strip()
    if flat in ("COMMIT", "ROLLBACK", "BEGIN"):
        return flat
    if flat.startswith("BEGIN; "):
        return "BEGIN + " + statement_label(flat.removeprefix("BEGIN; "))
    if flat.endswith("; COMMIT"):
        return statement_label(flat.removesuffix("; COMMIT")) + " + COMMIT"
    if ";" in flat:  # several statements in one message: named by its last one
        return statement_label(flat.rsplit(";", 1)[1])
    verb = flat.split(" ", 1)[0].upper()
    if verb == "WITH":
        found = re.search(r'\b(INSERT INTO|UPDATE|DELETE FROM)\s+("[A-Za-z]+")', flat)
        return f"WITH … {found.group(1).split()[0]} {found.group(2)}" if found else flat[:50]
    if flat.upper().startswith("SELECT SET_CONFIG"):
        return "SET LOCAL timeouts (+BEGIN)"
    if flat.upper().startswith("SELECT PG_ADVISORY"):
        return "advisory lock"
    table = re.search(r'(?:INTO|UPDATE|FROM)\s+("[A-Za-z]+")', flat)
    suffix = " FOR UPDATE" if verb == "SELECT" and flat.upper().endswith("FOR UPDATE") else ""
    conflict = " ON CONFLICT" if verb == "INSERT" and "ON CONFLICT" in flat.upper() else ""
    return f"{verb} {table.group(1) if table else flat[:40]}{conflict}{suffix}"
