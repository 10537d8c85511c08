"""The three kinds of plugin: subclass one, then `sluice.export(YourClass)`.

Every method gets the config already parsed into the class's `Config`
dataclass (or a dict when there is none). Raise `ConfigError`,
`AuthError`, `TransientError` or `DataError` to fail a call with that
kind; any other exception fails it as an internal error with the
traceback in the message.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Any, Iterable, Iterator

from .schema import Checkpoint, Columns, Commit, Field, Partition, Plan, Stream


class Plugin:
    """What every plugin says about itself."""

    #: Short name, e.g. `rest-users`.
    name: str = ""
    #: The plugin's own semver.
    version: str = "0.1.0"
    #: One line for `sluice plugin list`.
    description: str = ""
    #: The config dataclass; `None` takes any JSON object as a dict.
    Config: type | None = None
    #: Host capabilities it needs: `http`, `blob`, `codec`, `sql`.
    capabilities: list[str] = []
    #: Config keys that change how it reads or writes but not what (a
    #: page size, a timeout): changing them keeps the job's saved state,
    #: which every other key is part of the key of.
    state_ignores: list[str] = []


class Source(Plugin):
    """Reads streams of rows.

    `streams` says what there is, `partitions` splits a stream into slices
    read in parallel (one by default), and `read` yields the rows of one
    slice as dicts (or `sluice.columns(...)`), with a `Checkpoint` whenever
    the rows so far should not be read again after a restart.
    """

    #: Rows a batch holds before it is handed to the host.
    batch_rows: int = 8192

    def check(self, config: Any) -> None:
        """Prove the config and connectivity without reading data."""

    def streams(self, config: Any) -> list[Stream]:
        """The streams this source can read. Called before every read, so
        keep it cheap."""
        raise NotImplementedError(f"{type(self).__name__} must define streams()")

    def partitions(self, config: Any, stream: Stream, states: Any) -> list[Partition]:
        """Slices of `stream`, given every partition's saved state by
        partition id (`None` on a first run)."""
        return [Partition()]

    def read(
        self, config: Any, stream: Stream, partition: Partition, state: Any
    ) -> Iterable[dict | Columns | Checkpoint]:
        """The rows of one partition, from `state` (the last `Checkpoint`'s
        state, or `None`)."""
        raise NotImplementedError(f"{type(self).__name__} must define read()")


class Filter(Plugin):
    """Transforms rows between a source and a sink.

    A fresh instance serves each task: `open` gets the config and the
    input columns, `map` transforms one row (return it, a changed dict,
    `None` to drop it, or a list of rows), or override `process` to see a
    whole batch of rows at once and `finish` to emit rows held back.

    A filter that keeps some rows and computes some columns can work
    column-wise instead, which is several times faster: `plan` names the
    columns it reads, `keep` gets those as lists and says which rows stay,
    and `compute` gets the kept rows' columns and returns the new values.
    No dict is made a row, and columns it does not read never reach
    Python: the host passes them through.
    """

    def plan(self, config: Any, fields: list[Field]) -> Plan | None:
        """A `sluice.Plan` to work column-wise (`keep` and `compute`), or
        `None` (the default) to work row-wise (`map` or `process`)."""
        return None

    def keep(self, columns: Columns) -> list:
        """Column-wise: one flag a row, true for the rows that stay, given
        the plan's `keep_reads` columns."""
        raise NotImplementedError(f"{type(self).__name__} must define keep()")

    def compute(self, columns: Columns) -> dict[str, list]:
        """Column-wise: the plan's `computed` columns (name → list of
        values, one a kept row), given its `compute_reads` columns of the
        kept rows."""
        raise NotImplementedError(f"{type(self).__name__} must define compute()")

    def output_fields(self, config: Any, fields: list[Field]) -> list[Field]:
        """The columns of the rows this filter returns, given its input's."""
        return fields

    def open(self, config: Any, fields: list[Field]) -> None:
        """Called once per task before any row, with the input columns."""

    def map(self, row: dict) -> dict | list[dict] | None:
        """One row in, zero or more out."""
        return row

    def process(self, rows: list[dict]) -> list[dict]:
        """One batch of rows in, any number out (by default, `map` each)."""
        out: list[dict] = []
        for row in rows:
            mapped = self.map(row)
            if mapped is None:
                continue
            if isinstance(mapped, dict):
                out.append(mapped)
            else:
                out.extend(mapped)
        return out

    def finish(self) -> list[dict]:
        """Rows held back, emitted after the last batch."""
        return []


class Writer:
    """Writes one task's rows; made by `Sink.open`."""

    def write(self, rows: list[dict]) -> None:
        """Take one batch of rows."""
        raise NotImplementedError(f"{type(self).__name__} must define write()")

    def commit(self) -> Commit | None:
        """Make what was written since the last commit durable and visible.
        `None` reports the rows written since then."""
        return None

    def abort(self) -> None:
        """Discard everything written."""


class Sink(Plugin):
    """Writes streams of rows and commits them."""

    def check(self, config: Any) -> None:
        """Prove the config and connectivity without writing data."""

    def begin_stream(self, config: Any, stream: str, fresh: bool) -> None:
        """Before any writer of `stream` opens; `fresh`: start over,
        discard what an unfinished earlier run staged."""

    def finish_stream(self, config: Any, stream: str) -> list[str]:
        """After every task committed: publish what the commits staged.
        Returns outputs for the run summary."""
        return []

    def open(self, config: Any, stream: str, fields: list[Field], task: str) -> Writer:
        """A writer for one task (`task` is unique in the run)."""
        raise NotImplementedError(f"{type(self).__name__} must define open()")


_END = object()
_DICTS = frozenset([dict])


def batches(
    items: Iterable[dict | Columns | Checkpoint], batch_rows: int
) -> Iterator[list[dict] | Columns | Checkpoint]:
    """Group what a reader yields into batches: dicts into lists of rows,
    `sluice.columns` into `Columns` (kept as columns, which cross to the
    host without becoming dicts), a checkpoint closing the batch before it
    so its state covers exactly those rows."""
    # Rows wait as dicts or as columns, never both: a dict flushes the
    # columns held, and columns flush the dicts.
    rows: list[dict] = []
    parts: list[Columns] = []
    held = 0  # rows in `parts`
    source = iter(items)
    # Items taken from `source` ahead, to handle one at a time before it,
    # and the exception `source` raised after them.
    pending: deque = deque()
    failure: BaseException | None = None

    def flush() -> list[list[dict] | Columns]:
        nonlocal rows, parts, held
        out: list[list[dict] | Columns] = []
        if rows:
            out.append(rows)
        if parts:
            out.append(Columns.concat(parts))
        rows, parts, held = [], [], 0
        return out

    def take() -> Any:
        nonlocal failure
        if pending:
            return pending.popleft()
        if failure is not None:
            error, failure = failure, None
            raise error
        return next(source, _END)

    while (item := take()) is not _END:
        # A row (a dict, or a dict subclass other than Columns); the common
        # case is tested first, and cheaply.
        if type(item) is dict or (isinstance(item, dict) and not isinstance(item, Columns)):
            if parts:
                yield from flush()
            rows.append(item)
            want = batch_rows - len(rows)
            if want > 0 and not pending and failure is None:
                # Rows after rows, the usual run: take the rest of the batch
                # in one C loop and check their types in another. Anything
                # else among them waits in `pending`, in order, as does an
                # exception, after the items taken before it.
                more: list = []
                try:
                    more.extend(islice(source, want))
                except Exception as e:  # noqa: BLE001 (raised in its turn)
                    failure = e
                if failure is None and set(map(type, more)) <= _DICTS:
                    rows.extend(more)
                else:
                    pending.extend(more)
            if len(rows) >= batch_rows:
                yield from flush()
        elif isinstance(item, Columns):
            n = item.num_rows()
            if rows:
                yield from flush()
            if n:
                parts.append(item)
                held += n
            if held >= batch_rows:
                yield from flush()
        elif isinstance(item, Checkpoint):
            yield from flush()
            yield item
        else:
            from .errors import DataError

            raise DataError(
                f"read() yielded a {type(item).__name__}: yield dicts, sluice.columns(...) or sluice.Checkpoint"
            )
    yield from flush()


_exported: type | None = None


def export(cls: type) -> type:
    """Make `cls` (a `Source`, `Filter` or `Sink` subclass) this component's plugin."""
    global _exported
    if not (isinstance(cls, type) and issubclass(cls, (Source, Filter, Sink))):
        raise TypeError("sluice.export takes a subclass of sluice.Source, sluice.Filter or sluice.Sink")
    if not cls.name:
        raise TypeError(f"{cls.__name__} needs a `name`")
    _exported = cls
    return cls


def exported() -> type:
    """The class `export` was given."""
    if _exported is None:
        raise RuntimeError("no plugin exported: call sluice.export(YourPlugin) in your module")
    return _exported


def kind_of(cls: type) -> str:
    """`source`, `filter` or `sink`."""
    for kind, base in (("source", Source), ("filter", Filter), ("sink", Sink)):
        if issubclass(cls, base):
            return kind
    raise TypeError(f"{cls.__name__} is not a Sluice plugin")
