"""A sink that writes JSON Lines files through the `blob` grant: each
commit writes one file, staged under a hidden name and renamed into
place, so a failed task leaves no partial file."""

from dataclasses import dataclass
import json
import time

import sluice


@dataclass
class Config:
    #: Output directory inside the grant.
    prefix: str = "out"


class JsonlWriter(sluice.Writer):
    def __init__(self, config, stream, fields, task):
        self.dir = f"{config.prefix}/{stream}"
        # `task` is unique within a run: the time keeps runs apart.
        self.task = f"{time.time_ns():x}-{task}"
        self.names = [f.name for f in fields]
        self.lines = []
        self.part = 0

    def write(self, rows):
        for row in rows:
            if list(row) != self.names:
                raise sluice.DataError(f"row keys {list(row)} are not the schema's {self.names}")
            self.lines.append(json.dumps(row, separators=(",", ":")))

    def commit(self):
        if not self.lines:
            return sluice.Commit()
        path = f"{self.dir}/{self.task}-{self.part:04d}.jsonl"
        text = "\n".join(self.lines) + "\n"
        sluice.blob.write(f"{path}.partial", text)
        sluice.blob.rename(f"{path}.partial", path)
        done = sluice.Commit(rows=len(self.lines), bytes=len(text.encode()), outputs=[path])
        self.lines, self.part = [], self.part + 1
        return done

    def abort(self):
        self.lines = []


class JsonlSink(sluice.Sink):
    name = "py-jsonl-sink"
    description = "JSON Lines files through the blob grant, written in Python"
    Config = Config
    capabilities = ["blob"]

    def check(self, config):
        # The grant must let it write, read back and delete.
        probe = f"{config.prefix}/.check"
        sluice.blob.write(probe, "ok")
        if sluice.blob.read(probe) != b"ok":
            raise sluice.ConfigError(f"{probe} did not read back as written")
        sluice.blob.delete(probe)

    def begin_stream(self, config, stream, fresh):
        if fresh:
            for obj in sluice.blob.list(f"{config.prefix}/{stream}/*.jsonl"):
                sluice.blob.delete(obj.path)

    def finish_stream(self, config, stream):
        return [f"{config.prefix}/{stream}/"]

    def open(self, config, stream, fields, task):
        return JsonlWriter(config, stream, fields, task)


sluice.export(JsonlSink)
