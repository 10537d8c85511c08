"""Rows as JSON: the form the host reads a value in when it fits no faster one.

Rows cross to the host as columns of plain values (`sluice.plain_columns`);
a column whose values do not fit that form crosses as JSON values, and the
native test harness round-trips rows through JSON the way the host's JSON
Lines reader (`batch.from-json-lines`) would see them: decimals, dates and
timestamps as strings, binary as hex.
"""

from __future__ import annotations

import datetime
import decimal
import json
from typing import Any

from .errors import DataError


def _default(value):
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"a value of type {type(value).__name__} has no JSON form")


# Rows are plain data: no cycles to look for.
_encode = json.JSONEncoder(
    separators=(",", ":"),
    default=_default,
    ensure_ascii=False,
    allow_nan=False,
    check_circular=False,
).encode


def encode_value(value: Any) -> str:
    """One value as JSON text (`null` for None)."""
    try:
        return _encode(value)
    except (TypeError, ValueError) as e:
        raise DataError(f"a value cannot be written as JSON: {e}") from None


def encode(rows: list[dict]) -> str:
    """`rows` (dicts keyed by column name) as text `batch.from-json-lines`
    reads: one JSON array, written by one call of the C encoder (a call a
    row costs a third more)."""
    try:
        return _encode(rows)
    except (TypeError, ValueError) as e:
        raise DataError(f"a row cannot be written as JSON: {e}") from None


def decode(text: str) -> list[dict]:
    """The rows of JSON Lines text (one object a line) or of one array."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    # A JSON string never holds a raw newline, so the lines joined by
    # commas are one JSON array: parsed in one call instead of one a row.
    return json.loads("[" + text.replace("\n", ",") + "]")

