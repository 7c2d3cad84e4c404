"""Describe an unexpected exception without its message: type and where in our code it was raised.

An exception's text (`KeyError('ana@example.org')`, a driver error quoting a value) can carry personal
data from the payload, so logs and `lastErrorDetail` get only what an operator needs to find the bug.
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path

# Code of the interpreter and of installed libraries; everything else (this project, editable) is ours.
_LIBRARY_ROOTS = tuple(
    str(Path(path).resolve())
    for key in ("stdlib", "platstdlib", "purelib", "platlib")
    if (path := sysconfig.get_path(key))
)


@dataclass(frozen=True)
class ErrorOrigin:
    error_type: str
    location: str | None  # "module:function:line" of the innermost frame in our code

    def describe(self) -> str:
        return f"{self.error_type} at {self.location}" if self.location else self.error_type


def _is_library(filename: str) -> bool:
    if filename.startswith("<"):  # frozen modules, exec'd code
        return True
    return str(Path(filename).resolve()).startswith(_LIBRARY_ROOTS)


def error_origin(error: BaseException) -> ErrorOrigin:
    """The exception's qualified-enough type name and the innermost traceback frame outside libraries."""
    location = None
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if not _is_library(code.co_filename):
            module = tb.tb_frame.f_globals.get("__name__", "?")
            location = f"{module}:{code.co_name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return ErrorOrigin(type(error).__name__, location)
