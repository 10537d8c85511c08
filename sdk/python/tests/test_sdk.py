"""The SDK natively: config schemas, batching, checkpoints, JSON rows."""

import base64
import dataclasses
import datetime
import decimal
import json
import sys
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

import sluice
from sluice import config as cfg
from sluice import plain_columns, rows, testing
from sluice.plugin import batches

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "sdk-plugins" / "py-synthetic"))


@dataclass
class Auth:
    token_secret: str = "api_token"


@dataclass
class Config:
    """A config."""

    url: str = field(metadata={"description": "the API"})
    page_size: int = 100
    mode: Literal["full", "incremental"] = "full"
    tags: list[str] = field(default_factory=list)
    limits: dict[str, float] = field(default_factory=dict)
    auth: Optional[Auth] = None


def test_json_schema_follows_the_type_hints():
    schema = cfg.json_schema(Config)
    assert schema["required"] == ["url"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["url"] == {"type": "string", "description": "the API"}
    assert props["page_size"] == {"type": "integer", "default": 100}
    assert props["mode"]["enum"] == ["full", "incremental"]
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["limits"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert props["auth"]["anyOf"][1] == {"type": "null"}
    assert props["auth"]["anyOf"][0]["properties"]["token_secret"]["type"] == "string"
    json.dumps(schema)


def test_config_is_built_into_the_dataclass_with_paths_in_errors():
    built = cfg.load(Config, '{"url": "http://x", "limits": {"a": 1}, "auth": {}}')
    assert built.url == "http://x" and built.page_size == 100
    assert built.limits == {"a": 1.0} and isinstance(built.limits["a"], float)
    assert built.auth == Auth()
    with pytest.raises(sluice.ConfigError, match=r"config.page_size: expected integer"):
        cfg.load(Config, '{"url": "x", "page_size": "ten"}')
    with pytest.raises(sluice.ConfigError, match=r"config.url is required"):
        cfg.load(Config, "{}")
    with pytest.raises(sluice.ConfigError, match=r"unknown key `nope`"):
        cfg.load(Config, '{"url": "x", "nope": 1}')
    with pytest.raises(sluice.ConfigError, match="not JSON"):
        cfg.load(Config, "{")


def test_rows_round_trip_with_exact_values():
    text = rows.encode(
        [
            {
                "d": decimal.Decimal("12.30"),
                "t": datetime.datetime(2026, 12, 7, 10, tzinfo=datetime.timezone.utc),
                "day": datetime.date(2026, 12, 7),
                "b": b"\x00\xff",
                "s": 'a "q"\nnew line',
                "n": None,
            }
        ]
    )
    assert "\n" not in text and text.startswith("[")
    back = rows.decode(text + "\n")
    assert back == [
        {
            "d": "12.30",
            "t": "2026-12-07T10:00:00+00:00",
            "day": "2026-12-07",
            "b": "00ff",
            "s": 'a "q"\nnew line',
            "n": None,
        }
    ]
    with pytest.raises(sluice.DataError, match="cannot be written as JSON"):
        rows.encode([{"x": object()}])
    with pytest.raises(sluice.DataError):
        rows.encode([{"x": float("nan")}])
    assert rows.decode("") == []


def test_a_checkpoint_closes_the_batch_before_it():
    items = [{"i": 1}, {"i": 2}, sluice.Checkpoint(2), {"i": 3}, sluice.columns(i=[4, 5])]
    out = list(batches(iter(items), batch_rows=10))
    assert out == [[{"i": 1}, {"i": 2}], sluice.Checkpoint(2), [{"i": 3}], {"i": [4, 5]}]
    assert isinstance(out[-1], sluice.Columns)
    # Columns stay columns, joined up to a batch, a missing column null.
    parts = [sluice.columns(a=[1, 2], b=["x", "y"]), sluice.columns(a=[3])] * 6
    out = list(batches(iter(parts), batch_rows=8))
    assert [b.num_rows() for b in out] == [8, 9, 1]
    assert out[0]["b"] == ["x", "y", None] * 2 + ["x", "y"]
    with pytest.raises(sluice.DataError, match="different lengths"):
        list(batches(iter([sluice.columns(a=[1], b=[])]), 10))
    assert [len(b) for b in batches(({"i": i} for i in range(25)), 10)] == [10, 10, 5]
    with pytest.raises(sluice.DataError, match="yielded a int"):
        list(batches(iter([1]), 10))


def _batches_one_at_a_time(items, batch_rows):
    """What `batches` yields, item by item: the reference it must match."""
    rows, parts, out = [], [], []

    def flush():
        nonlocal rows, parts
        if rows:
            out.append(rows)
        if parts:
            out.append(sluice.Columns.concat(parts))
        rows, parts = [], []

    for item in items:
        if isinstance(item, sluice.Columns):
            if rows:
                flush()
            if item.num_rows():
                parts.append(item)
            if sum(p.num_rows() for p in parts) >= batch_rows:
                flush()
        elif isinstance(item, dict):
            if parts:
                flush()
            rows.append(item)
            if len(rows) >= batch_rows:
                flush()
        else:
            flush()
            out.append(item)
    flush()
    return out


class _Boom(Exception):
    pass


def test_batches_match_one_item_at_a_time_and_fail_in_their_turn():
    """Random runs of rows, columns and checkpoints, some ending in an
    exception: batched the same as one item at a time, and everything
    yielded before the exception comes out before it."""
    import random

    rng = random.Random(0x5EED)
    for _ in range(500):
        items = []
        for i in range(rng.randrange(60)):
            roll = rng.random()
            if roll < 0.8:
                items.append({"i": i})
            elif roll < 0.9:
                items.append(sluice.Checkpoint(i))
            else:
                items.append(sluice.columns(i=list(range(rng.randrange(4)))))
        fails = rng.random() < 0.3
        batch_rows = rng.randrange(1, 12)

        def read():
            yield from items
            if fails:
                raise _Boom("after the last item")

        want = _batches_one_at_a_time(items, batch_rows)
        got = []
        try:
            for batch in batches(read(), batch_rows):
                got.append(batch)
        except _Boom:
            assert fails
        else:
            assert not fails
        if fails:
            # The last batch of rows held is lost with the failure; a
            # checkpoint never is, nor anything before one.
            last = max((k for k, b in enumerate(want) if isinstance(b, sluice.Checkpoint)), default=-1)
            assert got[: last + 1] == want[: last + 1], (items, batch_rows)
            assert want[: len(got)] == got, (items, batch_rows)
        else:
            assert got == want, (items, batch_rows)


def test_the_synthetic_source_reads_and_resumes():
    import app

    done = testing.read(app.Synthetic, {"rows": 100, "partitions": 3, "checkpoint_every": 10})
    assert sorted(r["id"] for r in done.rows) == list(range(100))
    assert done.states == {"p0": {"next": 34}, "p1": {"next": 68}, "p2": {"next": 100}}
    again = testing.read(app.Synthetic, {"rows": 100, "partitions": 3}, states={"p0": {"next": 30}, "p1": {"next": 68}, "p2": {"next": 100}})
    assert [r["id"] for r in again.rows] == [30, 31, 32, 33]
    cols = testing.read(app.Synthetic, {"rows": 5, "as_columns": True})
    assert cols.rows == testing.read(app.Synthetic, {"rows": 5}).rows


def test_export_takes_only_plugins_with_names():
    with pytest.raises(TypeError):
        sluice.export(int)

    class Nameless(sluice.Source):
        pass

    with pytest.raises(TypeError, match="needs a `name`"):
        sluice.export(Nameless)


def test_http_errors_are_typed():
    r = sluice.http.Response(401, body=b"no", url="u")
    with pytest.raises(sluice.AuthError):
        r.raise_for_status()
    with pytest.raises(sluice.TransientError):
        sluice.http.Response(503, url="u").raise_for_status()
    with pytest.raises(sluice.DataError):
        sluice.http.Response(404, url="u").raise_for_status()
    assert sluice.http.Response(200, body=b'{"a": 1}').json() == {"a": 1}


FIELDS = [
    sluice.Field("id", "int64", nullable=False),
    sluice.Field("name", "string"),
    sluice.Field("amount", "decimal(12,2)"),
    sluice.Field("ratio", "float64"),
    sluice.Field("active", "bool"),
    sluice.Field("day", "date"),
    sluice.Field("raw", "binary"),
    sluice.Field("tags", "List(Utf8)"),
    sluice.Field("big", "uint64"),
]


def _packed(rows):
    names = [f.name for f in FIELDS]
    kinds = [plain_columns.kind_of(f.type) for f in FIELDS]
    return names, plain_columns.pack_rows(names, kinds, rows)


def test_rows_pack_into_columns_of_plain_values_and_back():
    rows_in = [
        {
            "id": i,
            "name": None if i % 3 == 0 else f"名前 {i}" if i % 2 else f"n{i}",
            "amount": decimal.Decimal(f"{i}.5") if i % 2 else f"{i}.25",
            "ratio": None if i == 4 else i / 7 if i % 2 else i,
            "active": None if i == 5 else i % 2 == 0,
            "day": datetime.date(2026, 12, i + 1),
            "raw": None if i == 2 else bytes([i, 0, 255]),
            "tags": ["a", str(i)],
            "big": 2**64 - 1 - i,
        }
        for i in range(10)
    ]
    names, packed = _packed(rows_in)
    forms = [form for form, _, _ in packed]
    assert forms == [
        "int64-base64", "text-joined", "text-joined", "float64-base64", "boolean-base64",
        "text-joined", "json", "json", "text-joined",
    ]  # fmt: skip
    # Each a little-endian array in base64, or strings joined by a separator.
    assert packed[0] == ("int64-base64", base64.b64encode(array("q", range(10)).tobytes()).decode(), [])
    assert packed[4][1] == base64.b64encode(bytes([1, 0, 1, 0, 1, 0, 1, 0, 1, 0])).decode()
    assert packed[1][1] == ("\x1f", "".join(("" if i % 3 == 0 else rows_in[i]["name"]) + "\x1f" for i in range(10)))
    assert packed[1][2] == [0, 3, 6, 9]
    # Floats cross as floats, whatever number a row held.
    assert all(type(v) is float for v in plain_columns.unpack_column(*packed[3][:2]))
    assert packed[6][1][3] == '"0300ff"' and packed[6][1][2] == "null"
    back = plain_columns.unpack_rows(names, packed)
    assert [r["id"] for r in back] == list(range(10))
    assert [r["name"] for r in back] == [r["name"] for r in rows_in]
    assert back[1]["amount"] == "1.5" and back[2]["amount"] == "2.25"
    assert back[4]["ratio"] is None and back[3]["ratio"] == 3 / 7 and back[2]["ratio"] == 2.0
    assert [r["active"] for r in back] == [None if i == 5 else i % 2 == 0 for i in range(10)]
    assert back[0]["day"] == "2026-12-01"
    assert back[2]["raw"] is None and back[3]["raw"] == "0300ff"
    assert back[7]["tags"] == ["a", "7"]
    assert back[0]["big"] == str(2**64 - 1)


def test_values_that_do_not_fit_their_form_cross_as_json():
    # A float in an integer column, a number in a string column, a 2 in a
    # bool column: each column goes as JSON values, which the host reads
    # (and refuses) exactly as it reads JSON Lines.
    rows_in = [{"id": 1.5, "name": 7, "active": 2}, {"id": 2, "name": "x", "active": True}]
    names, packed = _packed(rows_in)
    assert [p[0] for p in packed[:5]] == ["json", "json", "text-joined", "float64-base64", "json"]
    back = plain_columns.unpack_rows(names, packed)
    assert back[0]["id"] == 1.5 and back[0]["name"] == 7 and back[0]["active"] == 2
    assert back[1]["name"] == "x" and back[1]["active"] is True
    # Missing keys are null; a row that is not a dict is named.
    assert all(r["ratio"] is None for r in back)
    with pytest.raises(sluice.DataError, match="a row is a list"):
        _packed([{"id": 1}, [1, 2]])
    with pytest.raises(sluice.DataError, match="cannot be written as JSON"):
        _packed([{"tags": [object()]}])


def test_text_holding_the_separator_crosses_as_a_list():
    values = ["a\x1fb", None, "", "語"]
    packed = plain_columns.pack_column("string", values)
    assert packed == ("text", ["a\x1fb", "", "", "語"], [1])
    assert plain_columns.unpack_columns([packed]) == [values]
    # Joined, an empty value and an empty column stay apart.
    for col in ([""], [], ["", ""]):
        assert plain_columns.unpack_columns([plain_columns.pack_column("string", col)]) == [col]


def test_no_rows_and_no_columns_pack_to_empty_columns():
    names, packed = _packed([])
    assert len(packed) == len(FIELDS)
    assert plain_columns.unpack_rows(names, packed) == []
    assert plain_columns.pack_rows([], [], [{"x": 1}]) == []


class Tagger(sluice.Filter):
    """Column-wise: keeps even ids, replaces `name`, adds `len`, drops `x`."""

    name = "tagger"

    def plan(self, config, fields):
        return sluice.Plan(
            keep_reads=["id"],
            compute_reads=["name"],
            computed=[sluice.Field("len", "int64"), sluice.Field("name", "string")],
            drop=["x"],
        )

    def keep(self, columns):
        return [i % 2 == 0 for i in columns["id"]]

    def compute(self, columns):
        names = columns["name"]
        return {"name": [n.upper() for n in names], "len": [len(n) for n in names]}


def test_a_column_wise_filter_keeps_computes_and_assembles_like_the_host():
    fields = [sluice.Field("id", "int64"), sluice.Field("name", "string"), sluice.Field("x", "bool")]
    rows_in = [{"id": i, "name": f"n{i}", "x": True} for i in range(5)]
    out = testing.run_filter(Tagger, {}, fields, rows_in)
    assert out == [{"id": i, "name": f"N{i}", "len": 2} for i in (0, 2, 4)]
    assert [name for name in out[0]] == ["id", "name", "len"]
    with pytest.raises(sluice.ConfigError, match="column `nope`"):
        sluice.Plan(keep_reads=["nope"]).output(fields)


def test_keep_flags_become_a_bitmap_least_significant_bit_first():
    assert plain_columns.bitmap([], 0) == b""
    assert plain_columns.bitmap([True, False, True], 3) == bytes([0b101])
    flags = [i % 3 == 0 for i in range(20)]
    bits = plain_columns.bitmap(flags, 20)
    assert len(bits) == 3
    assert [bool(bits[i // 8] >> (i % 8) & 1) for i in range(20)] == flags
    assert plain_columns.bitmap([0] * 9, 9) == bytes(2)
    with pytest.raises(sluice.DataError, match="2 flags for 3 rows"):
        plain_columns.bitmap([True, True], 3)
