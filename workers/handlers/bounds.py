"""Field types that carry the bounds of the columns a payload value is written to.

A value outside them can never be stored (a 3 KB id exceeds a btree index row; `updated_at` of 10^20
overflows `BigInt`; `"1e999999999"` is not money), so the payload fails validation at once with
`invalid_payload` naming the field, instead of reaching the database and being retried until `dead`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import PlainValidator, StringConstraints

from ingest.formats.dates import epoch_millis
from ingest.formats.money import parse_money

ID_MAX = 200  # provider ids (Clerk `user_…`, Asaas `pay_…`, `evt_…`) are far shorter; unique btree indexes cap rows
EMAIL_MAX = 320  # RFC 5321: 64 local part + @ + 255 domain
NAME_MAX = 500
TEXT_MAX = 1000


def _epoch(value: object) -> int:
    millis = epoch_millis(value)
    if millis is None:
        raise ValueError("must be an epoch time in seconds or milliseconds between 1970 and 9999")
    return millis


ProviderId = Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX)]
Email = Annotated[str, StringConstraints(max_length=EMAIL_MAX)]
Name = Annotated[str, StringConstraints(max_length=NAME_MAX)]
Text = Annotated[str, StringConstraints(max_length=TEXT_MAX)]
EpochMillis = Annotated[int, PlainValidator(_epoch)]
Money = Annotated[Decimal, PlainValidator(parse_money)]
