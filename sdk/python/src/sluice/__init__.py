"""Write Sluice connectors in Python.

A plugin is a class: subclass `Source`, `Filter` or `Sink`, give it a
`name` and a `Config` dataclass, and call `sluice.export(YourClass)`.
`sluice plugin build` turns the module into a WebAssembly component
(componentize-py); it then runs sandboxed, reaching only what a job grants.

    import sluice
    from dataclasses import dataclass

    @dataclass
    class Config:
        rows: int = 10

    class Counter(sluice.Source):
        name = "counter"
        Config = Config

        def streams(self, config):
            return [sluice.Stream("numbers", [sluice.Field("n", "int64", nullable=False)])]

        def read(self, config, stream, partition, state):
            for n in range(config.rows):
                yield {"n": n}

    sluice.export(Counter)
"""

from . import blob, http, log
from .errors import AuthError, ConfigError, DataError, InternalError, SluiceError, TransientError
from .plugin import Filter, Plugin, Sink, Source, Writer, export
from .schema import Checkpoint, Columns, Commit, Field, Partition, Plan, Stream, columns

__version__ = "0.2.0"
#: The contract this SDK builds against.
WIT_VERSION = "0.2.0"

__all__ = [
    "AuthError",
    "Checkpoint",
    "Columns",
    "Commit",
    "ConfigError",
    "DataError",
    "Field",
    "Filter",
    "InternalError",
    "Partition",
    "Plan",
    "Plugin",
    "Sink",
    "SluiceError",
    "Source",
    "Stream",
    "TransientError",
    "Writer",
    "columns",
    "export",
    "blob",
    "http",
    "log",
]
