"""`sluice:plugin/filter` for a `sluice.Filter`: row-wise (`process`), or
column-wise when its `plan` returns a `sluice.Plan` (`keep`, `compute`)."""

from __future__ import annotations

from itertools import compress
from typing import Any, Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import filter as wit

from . import RowCodec, fields_of, guarded, info, load_config, trapping, wit_types
from .. import plain_columns
from ..errors import DataError
from ..plugin import exported
from ..schema import Columns, Plan


class Filter(exports.Filter):
    def info(self) -> wit_types.PluginInfo:
        return info()


class ColumnWise:
    """A plan's codecs: the columns `keep` and `compute` read, the ones
    `compute` returns, and the plan as the host takes it."""

    def __init__(self, plan: Plan, fields: list) -> None:
        by_name = {f.name: i for i, f in enumerate(fields)}
        output = plan.output(fields)
        keep_reads = None if plan.keep_reads is None else [by_name[n] for n in plan.keep_reads]
        compute_reads = [by_name[n] for n in plan.compute_reads]
        self.keep_codec = RowCodec([fields[i] for i in keep_reads or []])
        self.compute_codec = RowCodec([fields[i] for i in compute_reads])
        self.computed = RowCodec(list(plan.computed))
        # When `compute` reads only columns `keep` read, it takes them from
        # what `keep` got (the kept rows), not from the host a second time.
        self.reuse = plan.keep_reads is not None and set(plan.compute_reads) <= set(plan.keep_reads)
        self.last_keep: Optional[tuple[Columns, list]] = None
        self.output_fields = [f for f, _, _ in output]
        self.wit = wit.Plan(
            keep_reads=keep_reads,
            compute_reads=compute_reads,
            columns=[
                wit.OutputColumn_Input(i) if origin == "input" else wit.OutputColumn_Computed(i)
                for _, origin, i in output
            ],
        )


class Transformer(wit.Transformer):
    """One task's filter: a fresh instance of the exported class."""

    def __init__(self, instance: Any, input: RowCodec, output: RowCodec, plan: Optional[ColumnWise]) -> None:
        self.instance = instance
        self.input = input
        self.output = output
        self.column_wise = plan

    @classmethod
    def open(cls, config: str, input_schema: bytes) -> "Transformer":
        def body():
            parsed = load_config(config)
            fields = fields_of(input_schema)
            instance = exported()()
            instance.config = parsed
            instance.open(parsed, fields)
            plan = instance.plan(parsed, fields)
            if plan is not None:
                column_wise = ColumnWise(plan, fields)
                return cls(instance, RowCodec(fields), RowCodec(column_wise.output_fields), column_wise)
            output = instance.output_fields(parsed, fields)
            return cls(instance, RowCodec(fields), RowCodec(output), None)

        return guarded(body)

    def output_schema(self) -> bytes:
        return trapping(lambda: self.output.schema.to_ipc())

    def plan(self) -> Optional[wit.Plan]:
        return None if self.column_wise is None else self.column_wise.wit

    def _require_plan(self, call: str) -> ColumnWise:
        if self.column_wise is None:
            raise Err(wit_types.Error(wit_types.ErrorKind.INTERNAL, f"a row-wise filter has no {call}"))
        return self.column_wise

    def keep(self, columns: Any) -> bytes:
        plan = self._require_plan("keep")

        def body():
            values, rows = plan.keep_codec.columns(columns)
            flags = self.instance.keep(values)
            bits = plain_columns.bitmap(flags, rows)
            if plan.reuse:
                plan.last_keep = (values, flags)
            return bits

        return guarded(body)

    def compute(self, columns: Any) -> Any:
        plan = self._require_plan("compute")

        def body():
            if plan.last_keep is not None:
                kept, flags = plan.last_keep
                plan.last_keep = None
                with columns:
                    rows = columns.num_rows()
                values = Columns({n: list(compress(kept[n], flags)) for n in plan.compute_codec.names})
                if len(next(iter(values.values()), [None] * rows)) != rows:
                    raise DataError(f"{rows} kept rows, but keep() kept a different number")
            else:
                values, rows = plan.compute_codec.columns(columns)
            out = plain_columns.check_computed(self.instance.compute(values), plan.computed.names, rows)
            return plan.computed.batch(Columns(out))

        return guarded(body)

    def _out(self, rows: list[dict]) -> list[Any]:
        return [self.output.batch(rows)] if rows else []

    def process(self, batch: Any) -> list[Any]:
        return guarded(lambda: self._out(self.instance.process(self.input.rows(batch))))

    def finish(self) -> list[Any]:
        return guarded(lambda: self._out(self.instance.finish()))
