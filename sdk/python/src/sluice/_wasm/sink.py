"""`sluice:plugin/sink` for a `sluice.Sink`."""

from __future__ import annotations

from typing import Any

from wit_world import exports
from wit_world.exports import sink as wit

from . import RowCodec, fields_of, guarded, info, load_config, plugin, trapping, wit_types
from ..schema import Commit


class Sink(exports.Sink):
    def info(self) -> wit_types.PluginInfo:
        return info()

    def check(self, config: str) -> None:
        guarded(lambda: plugin().check(load_config(config)))

    def begin_stream(self, config: str, stream: str, fresh: bool) -> None:
        guarded(lambda: plugin().begin_stream(load_config(config), stream, fresh))

    def finish_stream(self, config: str, stream: str) -> list[str]:
        return guarded(lambda: list(plugin().finish_stream(load_config(config), stream) or []))


class Writer(wit.Writer):
    """One task's writer; counts rows so a bare `commit()` can report them."""

    def __init__(self, writer: Any, codec: RowCodec) -> None:
        self.writer = writer
        self.codec = codec
        self.rows = 0

    @classmethod
    def open(cls, config: str, stream: str, schema: bytes, task: str) -> "Writer":
        def body():
            fields = fields_of(schema)
            return cls(plugin().open(load_config(config), stream, fields, task), RowCodec(fields))

        return guarded(body)

    def write(self, batch: Any) -> None:
        def body():
            rows = self.codec.rows(batch)
            self.rows += len(rows)
            self.writer.write(rows)

        guarded(body)

    def commit(self) -> wit.CommitInfo:
        def body():
            done = self.writer.commit() or Commit(rows=self.rows)
            self.rows = 0
            return wit.CommitInfo(rows=done.rows, bytes=done.bytes, outputs=list(done.outputs))

        return guarded(body)

    def abort(self) -> None:
        trapping(self.writer.abort)
