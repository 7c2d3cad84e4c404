"""Money amounts from provider payloads, parsed with bounded size before any arithmetic.

`Decimal("1e-10000000")` is 14 bytes, but arithmetic on it (quantizing, dividing two such values) takes
time and memory that grow with the exponent: a hostile or broken payload could hold a worker for hours.
So the text is checked first (at most 15 integer digits, 6 decimals, an exponent of at most 3 digits),
the value must be finite and within `MAX_AMOUNT`, and only then is it quantized to cents.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

MAX_AMOUNT = Decimal("1000000000")  # one billion (BRL or USD): above any single real charge
CENTS = Decimal("0.01")
_NUMBER = re.compile(r"[+-]?(\d{1,15})(\.\d{0,6})?([eE][+-]?\d{1,3})?")


class MoneyError(ValueError):
    """The value is not a money amount we accept; the message names the rule, never the value."""


def parse_money(value: object) -> Decimal:
    """A Decimal with two decimals for a JSON number or numeric string; `MoneyError` otherwise.

    Negative amounts are returned (the caller decides whether they make sense); magnitudes above
    `MAX_AMOUNT`, non-finite numbers and over-long or over-precise text are refused.
    """
    if isinstance(value, bool) or value is None:
        raise MoneyError("must be a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MoneyError("must be a finite number")
        text = repr(value)
    elif isinstance(value, int):
        text = str(value) if abs(value) <= MAX_AMOUNT else ""
    elif isinstance(value, str):
        text = value.strip()
    elif isinstance(value, Decimal):
        text = str(value)
    else:
        raise MoneyError("must be a number")
    if not _NUMBER.fullmatch(text):
        raise MoneyError(f"must be a plain number of at most {MAX_AMOUNT:,} with at most 6 decimals")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise MoneyError("must be a number") from None
    if not amount.is_finite() or abs(amount) > MAX_AMOUNT:
        raise MoneyError(f"must be at most {MAX_AMOUNT:,} in magnitude")
    return amount.quantize(CENTS)
