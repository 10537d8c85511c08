"""Run a plugin's logic natively, without wasm: what `pytest` calls.

The calls go through the same steps the component takes (config parsed
from JSON into the `Config` dataclass, rows batched and checkpointed,
rows round-tripped through JSON), so what passes here behaves the same in
`sluice run`; what only the host does (validating the config against the
JSON Schema, Arrow types, grants) is checked by `sluice plugin test`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import config as _config
from . import plain_columns
from . import rows as _rows
from .plugin import Filter, Sink, Source, batches
from .schema import Checkpoint, Columns, Commit, Field, Partition, Stream


@dataclass
class ReadResult:
    """What reading a stream produced."""

    rows: list[dict] = field(default_factory=list)
    #: The last checkpointed state of each partition, by partition id.
    states: dict[str, Any] = field(default_factory=dict)
    #: Batches handed to the host, in order.
    batches: int = 0


def _config_of(cls: type, config: dict | Any) -> Any:
    text = json.dumps(config) if isinstance(config, dict) or config is None else config
    return _config.load(cls.Config, text or "{}")


def read(
    cls: type[Source],
    config: dict,
    stream: str | None = None,
    states: dict[str, Any] | None = None,
) -> ReadResult:
    """Read every partition of `stream` (the first when `None`), from
    `states` (partition id → state) as a run after an earlier one would."""
    plugin = cls()
    parsed = _config_of(cls, config)
    plugin.check(parsed)
    streams = plugin.streams(parsed)
    chosen = next((s for s in streams if stream in (None, s.name)), None)
    if chosen is None:
        raise KeyError(f"no stream {stream!r}")
    states = dict(states or {})
    out = ReadResult(states=dict(states))
    for part in plugin.partitions(parsed, chosen, states or None):
        spec = json.loads(json.dumps(part.spec))
        state = states.get(part.id)
        items = plugin.read(parsed, chosen, Partition(part.id, spec), state)
        for item in batches(items, plugin.batch_rows):
            if isinstance(item, Checkpoint):
                out.states[part.id] = json.loads(json.dumps(item.state))
            else:
                out.batches += 1
                rows = item.rows() if isinstance(item, Columns) else item
                out.rows.extend(_rows.decode(_rows.encode(rows)))
    return out


def run_filter(cls: type[Filter], config: dict, fields: list[Field], rows: list[dict]) -> list[dict]:
    """Pass `rows` through a filter as one batch, then `finish`; a
    column-wise filter (one whose `plan` returns a `Plan`) through `keep`
    and `compute`, its output assembled as the host assembles it."""
    plugin = cls()
    parsed = _config_of(cls, config)
    plugin.config = parsed
    plugin.open(parsed, fields)
    rows = _rows.decode(_rows.encode(rows))
    plan = plugin.plan(parsed, fields)
    if plan is not None:
        return _rows.decode(_rows.encode(_column_wise(plugin, plan, fields, rows)))
    plugin.output_fields(parsed, fields)
    out = plugin.process(rows) + plugin.finish()
    return _rows.decode(_rows.encode(out))


def _column_wise(plugin: Filter, plan: Any, fields: list[Field], rows: list[dict]) -> list[dict]:
    output = plan.output(fields)

    def columns_of(names: list[str], of: list[dict]) -> Columns:
        return Columns({n: [r.get(n) for r in of] for n in names})

    if plan.keep_reads is not None:
        flags = plugin.keep(columns_of(plan.keep_reads, rows))
        plain_columns.bitmap(flags, len(rows))  # the component's check of the flags
        rows = [r for r, keep in zip(rows, flags) if keep]
    computed: dict = {}
    if plan.computed and rows:
        out = plugin.compute(columns_of(plan.compute_reads, rows))
        computed = plain_columns.check_computed(out, [f.name for f in plan.computed], len(rows))
    return [
        {
            f.name: (r.get(f.name) if origin == "input" else computed[f.name][k])
            for f, origin, _ in output
        }
        for k, r in enumerate(rows)
    ]


def write(
    cls: type[Sink],
    config: dict,
    stream: str,
    fields: list[Field],
    batches_of_rows: list[list[dict]],
    task: str = "t0",
    fresh: bool = True,
) -> tuple[list[Commit], list[str]]:
    """Write each batch and commit once, as one task of a run; returns the
    commits and `finish_stream`'s outputs."""
    plugin = cls()
    parsed = _config_of(cls, config)
    plugin.check(parsed)
    plugin.begin_stream(parsed, stream, fresh)
    writer = plugin.open(parsed, stream, fields, task)
    written = 0
    for rows in batches_of_rows:
        decoded = _rows.decode(_rows.encode(rows))
        written += len(decoded)
        writer.write(decoded)
    commit = writer.commit() or Commit(rows=written)
    return [commit], list(plugin.finish_stream(parsed, stream) or [])


def json_schema(cls: type) -> dict:
    """The JSON Schema the host validates this plugin's config against."""
    return _config.plugin_schema(cls)


__all__ = ["ReadResult", "read", "run_filter", "write", "json_schema", "Stream"]
