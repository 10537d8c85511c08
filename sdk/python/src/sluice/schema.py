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


@dataclass(frozen=True)
class Plan:
    """How a column-wise filter uses every batch (see `Filter.plan`).

    The output is the input's columns in order, less `drop`, with each
    `computed` column taking the place of the input column of its name, and
    the other computed columns after them.
    """

    #: Input columns `keep` gets; `None`: every row stays and `keep` is
    #: never called.
    keep_reads: list[str] | None = None
    #: Input columns `compute` gets, for the kept rows only.
    compute_reads: list[str] = field(default_factory=list)
    #: The columns `compute` returns.
    computed: list[Field] = field(default_factory=list)
    #: Input columns left out of the output.
    drop: list[str] = field(default_factory=list)

    def output(self, fields: list[Field]) -> list[tuple[Field, str, int]]:
        """Each output column: its field, and where it comes from, as
        (`"input"`, index in `fields`) or (`"computed"`, index in `computed`)."""
        from .errors import ConfigError

        names = [f.name for f in fields]
        for name in [*(self.keep_reads or []), *self.compute_reads, *self.drop]:
            if name not in names:
                raise ConfigError(f"the plan names a column `{name}` the input does not have ({', '.join(names)})")
        computed = {f.name: j for j, f in enumerate(self.computed)}
        if len(computed) != len(self.computed):
            raise ConfigError("the plan computes one column twice")
        out = []
        for i, f in enumerate(fields):
            if f.name in computed:
                j = computed.pop(f.name)
                out.append((self.computed[j], "computed", j))
            elif f.name not in self.drop:
                out.append((f, "input", i))
        out.extend((self.computed[j], "computed", j) for j in computed.values())
        return out


def columns(**cols: list) -> "Columns":
    """Rows given as columns (equal-length lists), for a reader to yield."""
    return Columns(cols)


class Columns(dict):
    """Rows as a dict of equal-length column lists (see `columns`)."""

    def num_rows(self) -> int:
        """The columns' common length."""
        lengths = {len(v) for v in self.values()}
        if len(lengths) > 1:
            from .errors import DataError

            raise DataError(f"columns of different lengths: {sorted(lengths)}")
        return lengths.pop() if lengths else 0

    def rows(self) -> list[dict]:
        """The rows as dicts."""
        self.num_rows()
        names = list(self)
        return [dict(zip(names, values)) for values in zip(*self.values())]

    @staticmethod
    def concat(parts: "list[Columns]") -> "Columns":
        """`parts` one after another; a column missing from a part is null there."""
        if len(parts) == 1:
            return parts[0]
        names = list(dict.fromkeys(name for part in parts for name in part))
        out = Columns({name: [] for name in names})
        for part in parts:
            rows = part.num_rows()
            for name in names:
                values = part.get(name)
                out[name].extend([None] * rows if values is None else values)
        return out
