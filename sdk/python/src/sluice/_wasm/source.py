"""`sluice:plugin/source` for a `sluice.Source`."""

from __future__ import annotations

import json
from typing import Any, Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import source as wit

from . import (
    RowCodec,
    dump_state,
    guarded,
    info,
    load_config,
    load_state,
    plugin,
    schema_of,
    wit_types,
)
from ..plugin import batches
from ..schema import Checkpoint, Partition, Stream


def partition_states(state: Optional[str]) -> Any:
    """The host passes every partition's saved state as one JSON object,
    `{"<partition id>": "<state>"}`: each state decoded as `read` gets it."""
    if state is None:
        return None
    states = json.loads(state)
    if not isinstance(states, dict):
        return states
    return {pid: load_state(value) for pid, value in states.items()}


def _stream(config: Any, name: str) -> Stream:
    for stream in plugin().streams(config):
        if stream.name == name:
            return stream
    from ..errors import ConfigError

    raise ConfigError(f"no stream `{name}`")


class Source(exports.Source):
    def info(self) -> wit_types.PluginInfo:
        return info()

    def check(self, config: str) -> None:
        guarded(lambda: plugin().check(load_config(config)))

    def discover(self, config: str) -> list[wit.StreamInfo]:
        def body():
            out = []
            for stream in plugin().streams(load_config(config)):
                with schema_of(stream.fields) as schema:
                    ipc = schema.to_ipc()
                modes = [wit.SyncMode.FULL_REFRESH]
                if stream.incremental:
                    modes.append(wit.SyncMode.INCREMENTAL)
                out.append(
                    wit.StreamInfo(
                        name=stream.name,
                        schema=ipc,
                        primary_key=list(stream.primary_key),
                        cursor_fields=list(stream.cursor_fields),
                        sync_modes=modes,
                    )
                )
            return out

        return guarded(body)

    def partitions(self, config: str, stream: str, state: Optional[str]) -> list[wit.Partition]:
        def body():
            parsed = load_config(config)
            found = _stream(parsed, stream)
            parts = plugin().partitions(parsed, found, partition_states(state))
            return [wit.Partition(stream=stream, id=p.id, spec=json.dumps(p.spec)) for p in parts]

        return guarded(body)


class Reader(wit.Reader):
    """Reads one partition: rows from `read` grouped into host batches."""

    def __init__(self, codec: RowCodec, events: Any, first: Any) -> None:
        self.codec = codec
        self.events = events
        # `read` is a generator: nothing in it runs until the first item
        # is asked for. That item is taken in `open`, so a failure before
        # the first row (a refused login) fails `reader.open`, as it would
        # in a reader written as a class.
        self.first = first

    @classmethod
    def open(cls, config: str, partition: wit.Partition, state: Optional[str]) -> "Reader":
        def body():
            parsed = load_config(config)
            stream = _stream(parsed, partition.stream)
            spec = json.loads(partition.spec) if partition.spec else None
            items = plugin().read(parsed, stream, Partition(partition.id, spec), load_state(state))
            events = batches(items, plugin().batch_rows)
            return cls(RowCodec(stream.fields), events, next(events, None))

        return guarded(body)

    def next(self) -> Optional[wit.Event]:
        def body():
            item, self.first = self.first, None
            if item is None:
                item = next(self.events, None)
            if item is None:
                return None
            if isinstance(item, Checkpoint):
                return wit.Event_Checkpoint(dump_state(item.state))
            return wit.Event_Batch(self.codec.batch(item))

        return guarded(body)
