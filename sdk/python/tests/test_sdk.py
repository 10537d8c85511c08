"""The SDK natively: config schemas, batching, checkpoints, JSON rows."""

import dataclasses
import datetime
import decimal
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

import sluice
from sluice import config as cfg
from sluice import rows, testing
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
    assert out == [[{"i": 1}, {"i": 2}], sluice.Checkpoint(2), [{"i": 3}, {"i": 4}, {"i": 5}]]
    assert [len(b) for b in batches(({"i": i} for i in range(25)), 10)] == [10, 10, 5]
    with pytest.raises(sluice.DataError, match="yielded a int"):
        list(batches(iter([1]), 10))


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
