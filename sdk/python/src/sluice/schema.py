"""What a plugin says about its data, without Arrow.

Column types are named as a job's `columns:` names them: `int64`,
`float64`, `string`, `bool`, `date`, `timestamp` (no zone),
`timestamptz`, `decimal(15,2)`, `binary`, and Arrow's own syntax for the
rest. The host turns them into an Arrow schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Field:
    """One column."""

    name: str
    type: str
    nullable: bool = True
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Stream:
    """A stream a source can read, as `discover` reports it."""

    name: str
    fields: list[Field]
    primary_key: list[str] = field(default_factory=list)
    cursor_fields: list[str] = field(default_factory=list)
    #: Whether a run can read only what is new since the last (the source
    #: then checkpoints a state and gets it back).
    incremental: bool = False


@dataclass(frozen=True)
class Partition:
    """A slice of a stream one task reads. `spec` is any JSON value the
    reader needs to find its slice."""

    id: str = "all"
    spec: Any = None


@dataclass(frozen=True)
class Checkpoint:
    """Yielded by a reader: `state` (any JSON value) covers every row before
    it, and comes back to `read` in the next run once the sink committed
    those rows."""

    state: Any


@dataclass(frozen=True)
class Commit:
    """What a sink writer's commit made durable, for the run summary."""

    rows: int = 0
    bytes: int = 0
    outputs: list[str] = field(default_factory=list)


def columns(**cols: list) -> "Columns":
    """Rows given as columns (equal-length lists), for a reader to yield."""
    return Columns(cols)


class Columns(dict):
    """Rows as a dict of equal-length column lists (see `columns`)."""

    def rows(self) -> list[dict]:
        names = list(self)
        lengths = {len(v) for v in self.values()}
        if len(lengths) > 1:
            from .errors import DataError

            raise DataError(f"columns of different lengths: {sorted(lengths)}")
        return [dict(zip(names, values)) for values in zip(*self.values())]
