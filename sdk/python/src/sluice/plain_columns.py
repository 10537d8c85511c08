"""Rows as columns of plain values: how rows cross to the host fast.

The host takes a batch column by column (`batch.from-columns`) and casts
each column to its field's type (dates, timestamps and decimals cross as
text). Each column crosses packed into one string: integers and floats as
base64 of their little-endian bytes, booleans as base64 of a byte each,
strings joined by a separator none of them holds. Python packs with C
loops (`array`, `binascii`, `str.join`) and componentize-py copies one
string, where a list costs it about 200 ns a value to lower; so a value
costs nanoseconds instead of the microseconds a JSON encoder spends. (A
`list<u8>` would need no base64, but componentize-py 0.25 never frees one
it lowers into a host call's argument.) The host hands batches back the
same way (`batch.to-columns` with `packed`).

A column whose values do not fit their fast form (a float in an integer
column, a dict in a string column) crosses as one JSON value a row, which
the host decodes exactly as it decodes JSON Lines: the same values are
accepted and refused either way. So do binary columns: componentize-py
0.25 never frees a `bytes` it lowers into a `list<u8>` argument of a host
call, so bytes cross as hex text instead of leaking with every batch.

Packed columns are tuples `(form, values, nulls)`: `form` is one of
`int64-base64 float64-base64 boolean-base64 text-joined text json`;
`values` is the base64 text, a `(separator, text)` pair for
`text-joined`, or a list; a null row holds a placeholder; `nulls` are the
indexes of the null rows.
"""

from __future__ import annotations

import datetime
import decimal
import json
import sys
from array import array
from binascii import a2b_base64, b2a_base64
from itertools import chain, compress, repeat
from operator import is_, itemgetter
from typing import Any

from .errors import DataError
from .rows import encode_value

_INTS = {
    "int8", "int16", "smallint", "int32", "int", "integer", "int64", "long",
    "bigint", "uint8", "uint16", "uint32", "uint64",
}
_FLOATS = {"float16", "float32", "float", "real", "float64", "double"}
_BOOLS = {"bool", "boolean"}
_STRINGS = {"string", "text", "utf8", "varchar", "largeutf8", "utf8view"}
_BINARIES = {"binary", "bytes", "largebinary", "binaryview"}
_NESTED = ("list(", "largelist(", "fixedsizelist(", "listview(", "struct(", "map(", "union(")


def kind_of(type_name: str) -> str:
    """How a column of `type_name` (as `columns:` names types) is packed."""
    name = type_name.strip().lower()
    if name in _INTS:
        return "int"
    if name in _FLOATS:
        return "float"
    if name in _BOOLS:
        return "bool"
    if name in _STRINGS:
        return "string"
    if name in _BINARIES:
        return "binary"
    if name.startswith(_NESTED):
        return "json"
    # Dates, times, timestamps, decimals and the rest: text the host parses.
    return "text"


#: What ends each value of a `text-joined` column: a control character
#: text rarely holds (a column holding it crosses as a list instead).
SEPARATOR = "\x1f"
_LITTLE = sys.byteorder == "little"


def _base64(values: "array | bytes") -> str:
    """Little-endian bytes of `values`, as base64 text."""
    if not _LITTLE and isinstance(values, array):
        values.byteswap()
    return b2a_base64(values, newline=False).decode("ascii")


def _from_base64(code: str, text: str) -> list:
    """The values of a `-base64` column of array type `code`."""
    values = array(code, a2b_base64(text))
    if not _LITTLE:
        values.byteswap()
    return values.tolist()


class _Unfit(Exception):
    """A value does not fit its column's fast form."""


def _nulls(col: list) -> list[int]:
    """The indexes of the Nones in `col`."""
    if None not in col:
        return []
    return list(compress(range(len(col)), map(is_, col, repeat(None))))


def _ints(col: list) -> tuple:
    nulls = _nulls(col)
    values = [0 if v is None else v for v in col] if nulls else col
    try:
        packed = array("q", values)  # checks every value is an int that fits
    except TypeError:
        raise _Unfit from None
    except OverflowError:  # a uint64 past 2^63: as text
        return _texts(col, _to_text)
    return ("int64-base64", _base64(packed), nulls)


def _floats(col: list) -> tuple:
    nulls = _nulls(col)
    try:
        packed = array("d", [0.0 if v is None else v for v in col] if nulls else col)
    except TypeError:
        raise _Unfit from None
    return ("float64-base64", _base64(packed), nulls)


def _bools(col: list) -> tuple:
    nulls = _nulls(col)
    values = [False if v is None else v for v in col] if nulls else col
    try:
        packed = bytes(values)
    except (TypeError, ValueError):
        raise _Unfit from None
    if packed.translate(None, b"\x00\x01"):
        raise _Unfit  # an integer other than 0 and 1: not a bool
    return ("boolean-base64", _base64(packed), nulls)


def _texts(col: list, convert: Any = None) -> tuple:
    """A column of strings; with `convert`, other values made text by it."""
    try:
        # Checks every value is a str, in one C loop.
        return _joined(col, SEPARATOR.join(col), [])
    except TypeError:  # a None, or a value that is not a str
        pass
    nulls = _nulls(col)
    if convert is None:
        values = ["" if v is None else v for v in col]
        try:
            text = SEPARATOR.join(values)
        except TypeError:
            raise _Unfit from None
    else:
        values = [v if v.__class__ is str else convert(v) for v in col]
        text = SEPARATOR.join(values)
    return _joined(values, text, nulls)


def _joined(values: list, text: str, nulls: list[int]) -> tuple:
    """`values` as `text-joined` (`text` is them joined by the separator),
    or as a list when a value holds the separator."""
    if not values:
        return ("text-joined", (SEPARATOR, ""), nulls)
    if text.count(SEPARATOR) != len(values) - 1:
        return ("text", values, nulls)
    return ("text-joined", (SEPARATOR, text + SEPARATOR), nulls)


def _to_text(value: Any) -> str:
    """A date, time, timestamp, decimal or number as the text the host parses."""
    if value is None:
        return ""
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    raise _Unfit


def _binaries(col: list) -> tuple:
    try:
        return _jsons([None if v is None else '"' + bytes(v).hex() + '"' for v in col], raw=True)
    except TypeError:
        raise _Unfit from None


def _jsons(col: list, raw: bool = False) -> tuple:
    """Each value as JSON text (with `raw`, already JSON text or None)."""
    if raw:
        return ("json", ["null" if v is None else v for v in col], [])
    return ("json", list(map(encode_value, col)), [])


_PACKERS = {
    "int": _ints,
    "float": _floats,
    "bool": _bools,
    "string": _texts,
    "text": lambda col: _texts(col, _to_text),
    "binary": _binaries,
    "json": _jsons,
}


def pack_column(kind: str, col: list) -> tuple:
    """One column in its fast form, or as JSON values when a value does
    not fit it (the host then reads it as it reads JSON Lines)."""
    try:
        return _PACKERS[kind](col)
    except _Unfit:
        return _jsons(col)


def pack_rows(names: list[str], kinds: list[str], rows: list[dict]) -> list[tuple]:
    """Rows (dicts keyed by column name) as one packed column a name.
    A missing key is null; keys that are not columns are ignored."""
    if not names:
        return []
    try:
        if len(names) == 1:
            cols = [list(map(itemgetter(names[0]), rows))]
        else:
            # Every row's values in one flat list, then a column is every
            # len(names)-th value: C loops only, 4× faster than zip(*rows).
            flat = list(chain.from_iterable(map(itemgetter(*names), rows)))
            width = len(names)
            cols = [flat[i::width] for i in range(width)]
        return [pack_column(k, c) for k, c in zip(kinds, cols)]
    except (KeyError, TypeError):  # a key missing, or a row not a dict
        bad = next((r for r in rows if not isinstance(r, dict)), None)
        if bad is not None:
            raise DataError(f"a row is a {type(bad).__name__}, not a dict: {bad!r:.200}") from None
    return [pack_column(k, [r.get(n) for r in rows]) for n, k in zip(names, kinds)]


def pack_columns(names: list[str], kinds: list[str], columns: dict[str, list], rows: int) -> list[tuple]:
    """`sluice.columns(...)` as packed columns; a column not given is null."""
    out = []
    for name, kind in zip(names, kinds):
        col = columns.get(name)
        if col is None:
            col = [None] * rows
        elif not isinstance(col, list):
            col = list(col)
        out.append(pack_column(kind, col))
    return out


def unpack_column(form: str, values: Any) -> list:
    """The Python values of one packed column (nulls not yet applied)."""
    if form == "text-joined":
        separator, text = values
        return text.split(separator)[:-1] if text else []
    if form == "int64-base64":
        return _from_base64("q", values)
    if form == "float64-base64":
        return _from_base64("d", values)
    if form == "boolean-base64":
        return list(map(bool, a2b_base64(values)))
    if form == "json":
        return list(map(json.loads, values))
    return values


def with_nulls(values: list, nulls: list[int]) -> list:
    """`values` with None at the `nulls` rows."""
    for i in nulls:
        values[i] = None
    return values


def unpack_columns(columns: list[tuple]) -> list[list]:
    """Packed columns as lists of values, None for nulls."""
    return [with_nulls(unpack_column(form, values), nulls) for form, values, nulls in columns]


_BIT_DIGITS = bytes.maketrans(b"\x00\x01", b"01")


def bitmap(flags: list, rows: int) -> bytes:
    """One bit a row, least significant first: true flags set."""
    if len(flags) != rows:
        raise DataError(f"keep() returned {len(flags)} flags for {rows} rows")
    if not rows:
        return b""
    # The flags as "0"/"1" digits, last row first, read as one binary
    # number: its little-endian bytes are the bitmap. All C loops.
    digits = bytes(map(bool, flags))[::-1].translate(_BIT_DIGITS)
    return int(digits, 2).to_bytes((rows + 7) // 8, "little")


def check_computed(out: Any, names: list[str], rows: int) -> dict[str, list]:
    """What a column-wise filter's `compute()` returned, checked: a dict
    holding each computed column, one value a kept row."""
    if not isinstance(out, dict):
        raise DataError(f"compute() returned a {type(out).__name__}: return a dict of column lists")
    for name in names:
        got = out.get(name)
        if got is None:
            raise DataError(f"compute() returned no column `{name}`")
        if len(got) != rows:
            raise DataError(f"compute() returned {len(got)} values for `{name}`, for {rows} kept rows")
    return out


def unpack_rows(names: list[str], columns: list[tuple]) -> list[dict]:
    """Packed columns as rows: dicts keyed by column name."""
    if len(columns) != len(names):
        raise DataError(f"{len(columns)} columns for {len(names)} names")
    cols = unpack_columns(columns)
    if not cols:
        return []
    return list(map(dict, map(zip, repeat(names), zip(*cols))))
