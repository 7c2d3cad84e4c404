"""Declarative base shared by every table: Prisma's naming and column conventions in one place."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any

import cuid
from sqlalchemy import BigInteger, Boolean, Integer, MetaData, Text, text
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP
from sqlalchemy.orm import DeclarativeBase, mapped_column

# Prisma's constraint and index names, so that models, migrations and the web app's schema agree.
NAMING_CONVENTION = {
    "pk": "%(table_name)s_pkey",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ix": "%(table_name)s_%(column_0_N_name)s_idx",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "ck": "%(table_name)s_%(constraint_name)s_check",
}


def new_id() -> str:
    """A cuid, the id format Prisma's `@default(cuid())` generates on the client side."""
    return str(cuid.cuid())


def utcnow() -> dt.datetime:
    """Naive UTC with millisecond precision, as Prisma stores `DateTime` in TIMESTAMP(3)."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


Timestamp = TIMESTAMP(precision=3)

str_id = Annotated[str, mapped_column(Text, primary_key=True, default=new_id)]
created_at = Annotated[
    dt.datetime,
    mapped_column(Timestamp, nullable=False, default=utcnow, server_default=text("CURRENT_TIMESTAMP")),
]
# Prisma's @updatedAt: no database default, the client sets it on every insert and update.
updated_at = Annotated[dt.datetime, mapped_column(Timestamp, nullable=False, default=utcnow, onupdate=utcnow)]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        str: Text,
        int: Integer,
        bool: Boolean,
        dt.datetime: Timestamp,
        dict[str, Any]: JSONB,
        enum.Enum: Text,
    }


__all__ = ["Base", "BigInteger", "created_at", "new_id", "str_id", "updated_at", "utcnow", "Timestamp"]
