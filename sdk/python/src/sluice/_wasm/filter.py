"""`sluice:plugin/filter` for a `sluice.Filter` (row-wise: no plan)."""

from __future__ import annotations

from typing import Any, Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import filter as wit

from . import batch_of, fields_of, guarded, info, load_config, rows_of, schema_of, trapping, wit_types
from ..plugin import exported


class Filter(exports.Filter):
    def info(self) -> wit_types.PluginInfo:
        return info()


class Transformer(wit.Transformer):
    """One task's filter: a fresh instance of the exported class."""

    def __init__(self, instance: Any, schema: Any) -> None:
        self.instance = instance
        self.schema = schema

    @classmethod
    def open(cls, config: str, input_schema: bytes) -> "Transformer":
        def body():
            parsed = load_config(config)
            fields = fields_of(input_schema)
            instance = exported()()
            instance.config = parsed
            output = instance.output_fields(parsed, fields)
            instance.open(parsed, fields)
            return cls(instance, schema_of(output))

        return guarded(body)

    def output_schema(self) -> bytes:
        return trapping(lambda: self.schema.to_ipc())

    def plan(self) -> Optional[wit.Plan]:
        return None

    def keep(self, columns: Any) -> bytes:
        raise Err(wit_types.Error(wit_types.ErrorKind.INTERNAL, "a row-wise filter has no keep"))

    def compute(self, columns: Any) -> Any:
        raise Err(wit_types.Error(wit_types.ErrorKind.INTERNAL, "a row-wise filter has no compute"))

    def _out(self, rows: list[dict]) -> list[Any]:
        return [batch_of(self.schema, rows)] if rows else []

    def process(self, batch: Any) -> list[Any]:
        return guarded(lambda: self._out(self.instance.process(rows_of(batch))))

    def finish(self) -> list[Any]:
        return guarded(lambda: self._out(self.instance.finish()))
