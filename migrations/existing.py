"""What the database already holds, so that revisions adopt objects the web app's Prisma migrations made.

The web app adds pedro-ingest's model blocks to its Prisma schema; its own migrations (or `prisma migrate
reset`, `prisma db push`) then create those tables before `pedro-ingest migrate` runs. Each revision
says how to recognise itself (`applied(connection)`), and creates its tables only where they are missing,
after checking that a table it finds has the columns it would have made.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Connection, text


class SchemaConflict(RuntimeError):
    """An object a revision would create exists with another shape: adopting it would hide a difference."""


def table_columns(connection: Connection, table: str) -> set[str]:
    """Column names of the table in the current schema (empty when there is no such table)."""
    rows = connection.execute(
        text(
            """SELECT a.attname FROM pg_attribute a
                 JOIN pg_class c ON c.oid = a.attrelid
                WHERE c.relname = :table AND c.relnamespace = current_schema()::regnamespace
                  AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped"""
        ),
        {"table": table},
    )
    return {name for (name,) in rows}


def has_tables(connection: Connection, *tables: str) -> bool:
    return all(table_columns(connection, table) for table in tables)


def enum_labels(connection: Connection, enum: str) -> set[str]:
    rows = connection.execute(
        text(
            """SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
                WHERE t.typname = :enum AND t.typnamespace = current_schema()::regnamespace"""
        ),
        {"enum": enum},
    )
    return {label for (label,) in rows}


def has_functions(connection: Connection, *names: str) -> bool:
    found = connection.execute(
        text(
            """SELECT count(DISTINCT proname) FROM pg_proc
                WHERE proname = ANY(:names) AND pronamespace = current_schema()::regnamespace"""
        ),
        {"names": list(names)},
    ).scalar()
    return found == len(names)


def create_table_unless_present(table: str, *elements: sa.schema.SchemaItem) -> None:
    """`op.create_table`, or nothing when the table exists with at least the columns it would get."""
    existing = table_columns(op.get_bind(), table)
    if not existing:
        op.create_table(table, *elements)
        return
    missing = sorted(e.name for e in elements if isinstance(e, sa.Column) and e.name not in existing)
    if missing:
        raise SchemaConflict(
            f'table "{table}" already exists without the column(s) {", ".join(missing)}: it was not made from '
            "pedro-ingest's model block; rename or drop it, then run migrate again"
        )


def create_indexes_unless_present(table: str, indexes: dict[str, tuple[list[str], bool]]) -> None:
    """Indexes by name: (columns, unique). One that a Prisma migration already made is kept."""
    for name, (columns, unique) in indexes.items():
        op.create_index(name, table, columns, unique=unique, if_not_exists=True)
