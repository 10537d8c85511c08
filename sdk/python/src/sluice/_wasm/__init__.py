"""The component side of the SDK: only imported inside the wasm build,
where componentize-py has generated `wit_world` from the contract.

Calls from the host come in through the modules beside this one; every
call runs under `guarded`, so an exception becomes a typed WIT error
instead of a trap, with the traceback in its message.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any, Callable, TypeVar

from componentize_py_types import Err

from wit_world.imports import blob as wit_blob  # noqa: F401 (for sluice.blob)
from wit_world.imports import log as wit_log

# componentize-py keeps only the binding modules imported while it builds
# the component (it snapshots the interpreter), so the ones `sluice.http`
# uses are imported here, up front; a world without `wasi:http` has none.
try:
    from wit_world.imports import outgoing_handler, streams  # noqa: F401
    from wit_world.imports import wasi_http_types  # noqa: F401
except ImportError:
    pass

try:  # named so when the world also imports wasi:http's `types`
    from wit_world.imports import sluice_plugin_types as wit_types
except ImportError:
    from wit_world.imports import types as wit_types

from .. import config as _config
from .. import plain_columns as _columns
from ..errors import SluiceError
from ..plugin import exported, kind_of
from ..schema import Columns, Field

T = TypeVar("T")

_KINDS = {
    "config": wit_types.ErrorKind.CONFIG,
    "auth": wit_types.ErrorKind.AUTH,
    "transient": wit_types.ErrorKind.TRANSIENT,
    "data": wit_types.ErrorKind.DATA,
    "internal": wit_types.ErrorKind.INTERNAL,
}

_instance = None


def plugin() -> Any:
    """The one instance of the exported class serving free functions."""
    global _instance
    if _instance is None:
        _instance = exported()()
    return _instance


def guarded(body: Callable[[], T]) -> T:
    """Run `body`; a Python exception becomes a WIT error result."""
    try:
        return body()
    except Err:
        raise
    except SluiceError as e:
        raise Err(wit_types.Error(_KINDS.get(e.kind, _KINDS["internal"]), str(e))) from None
    except BaseException as e:  # a bug: say where, with the traceback
        message = f"{type(e).__name__}: {e}\n{traceback.format_exc().rstrip()}"
        raise Err(wit_types.Error(wit_types.ErrorKind.INTERNAL, message)) from None


def raise_error(error: Any) -> None:
    """Raise the `sluice` error for a WIT error a host capability returned."""
    from .. import errors

    by_kind = {
        wit_types.ErrorKind.CONFIG: errors.ConfigError,
        wit_types.ErrorKind.AUTH: errors.AuthError,
        wit_types.ErrorKind.TRANSIENT: errors.TransientError,
        wit_types.ErrorKind.DATA: errors.DataError,
    }
    raise by_kind.get(error.kind, errors.InternalError)(error.message)


def trapping(body: Callable[[], T]) -> T:
    """Run `body` where the contract has no error result: an exception
    traps, and the traceback printed to stderr goes into the host's error."""
    try:
        return body()
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        raise


def info() -> Any:
    cls = exported()
    kinds = {
        "source": wit_types.PluginKind.SOURCE,
        "filter": wit_types.PluginKind.FILTER,
        "sink": wit_types.PluginKind.SINK,
    }
    return trapping(
        lambda: wit_types.PluginInfo(
            name=cls.name,
            version=cls.version,
            kind=kinds[kind_of(cls)],
            description=cls.description or (cls.__doc__ or "").strip().split("\n")[0],
            config_schema=json.dumps(_config.plugin_schema(cls)),
            capabilities=list(cls.capabilities),
        )
    )


def load_config(text: str) -> Any:
    return _config.load(exported().Config, text)


def schema_of(fields: list[Field]) -> Any:
    """A host schema for `fields`."""
    return wit_types.Schema.from_fields(
        [
            wit_types.Field(
                name=f.name,
                type=f.type,
                nullable=f.nullable,
                metadata=list(f.metadata.items()),
            )
            for f in fields
        ]
    )


def fields_of(schema_ipc: bytes) -> list[Field]:
    """The columns of a schema the host passed as IPC."""
    with wit_types.Schema.from_ipc(schema_ipc) as schema:
        return [
            Field(f.name, f.type, f.nullable, dict(f.metadata)) for f in schema.fields()
        ]


class RowCodec:
    """Rows to and from host batches for one list of fields, as columns of
    plain values (`batch.from-columns`, `batch.to-columns`; see
    `sluice.plain_columns`)."""

    def __init__(self, fields: list[Field]) -> None:
        self.fields = fields
        self.names = [f.name for f in fields]
        self.kinds = [_columns.kind_of(f.type) for f in fields]
        self._schema = None

    @property
    def schema(self) -> Any:
        """The host schema, made on first use and kept for the task."""
        if self._schema is None:
            self._schema = schema_of(self.fields)
        return self._schema

    def batch(self, rows: "list[dict] | Columns") -> Any:
        """A host batch holding `rows` (dicts, or `sluice.columns`)."""
        if isinstance(rows, Columns):
            packed = _columns.pack_columns(self.names, self.kinds, rows, rows.num_rows())
        else:
            packed = _columns.pack_rows(self.names, self.kinds, rows)
        return wit_types.Batch.from_columns(self.schema, [_wit_column(c) for c in packed])

    def _packed(self, batch: Any) -> tuple[list[tuple], int]:
        """A batch the host passed as packed columns, and its rows (the
        handle is dropped)."""
        with batch:
            rows = batch.num_rows()
            columns = batch.to_columns(True)
        return [_py_column(c) for c in columns], rows

    def columns(self, batch: Any) -> tuple[Columns, int]:
        """The columns of a batch the host passed, and its rows."""
        packed, rows = self._packed(batch)
        return Columns(zip(self.names, _columns.unpack_columns(packed))), rows

    def rows(self, batch: Any) -> list[dict]:
        """The rows of a batch the host passed."""
        return _columns.unpack_rows(self.names, self._packed(batch)[0])


_FORMS = {
    "int64": wit_types.ColumnValues_Int64,
    "float64": wit_types.ColumnValues_Float64,
    "boolean": wit_types.ColumnValues_Boolean,
    "text": wit_types.ColumnValues_Text,
    "binary": wit_types.ColumnValues_Binary,
    "json": wit_types.ColumnValues_Json,
    "int64-base64": wit_types.ColumnValues_Int64Base64,
    "float64-base64": wit_types.ColumnValues_Float64Base64,
    "boolean-base64": wit_types.ColumnValues_BooleanBase64,
    "text-joined": wit_types.ColumnValues_TextJoined,
}
_FORM_OF = {case: form for form, case in _FORMS.items()}


def _wit_column(packed: tuple) -> Any:
    form, values, nulls = packed
    if form == "text-joined":
        values = wit_types.JoinedText(separator=values[0], text=values[1])
    return wit_types.Column(values=_FORMS[form](values), nulls=nulls)


def _py_column(column: Any) -> tuple:
    values = column.values
    form = _FORM_OF[type(values)]
    value = values.value
    if form == "text-joined":
        value = (value.separator, value.text)
    return (form, value, column.nulls)


def dump_state(state: Any) -> str:
    return json.dumps(state, separators=(",", ":"))


def load_state(state: str | None) -> Any:
    if state is None:
        return None
    try:
        return json.loads(state)
    except ValueError:
        return state


def log(level: str, message: str) -> None:
    levels = {
        "trace": wit_log.Level.TRACE,
        "debug": wit_log.Level.DEBUG,
        "info": wit_log.Level.INFO,
        "warn": wit_log.Level.WARN,
        "error": wit_log.Level.ERROR,
    }
    wit_log.log(levels[level], message)
