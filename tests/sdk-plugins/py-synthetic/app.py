"""A synthetic source: `rows` rows of 8 columns, for tests and `cargo xtask bench sdk`."""

from dataclasses import dataclass

import sluice


@dataclass
class Config:
    rows: int = 1000
    #: Rows a partition reads; partitions split the rows evenly.
    partitions: int = 1
    #: Checkpoint every this many rows (0: never).
    checkpoint_every: int = 0
    #: Yield columns (`sluice.columns`) instead of dicts.
    as_columns: bool = False


FIELDS = [
    sluice.Field("id", "int64", nullable=False),
    sluice.Field("name", "string"),
    sluice.Field("amount", "decimal(12,2)"),
    sluice.Field("ratio", "float64"),
    sluice.Field("active", "bool"),
    sluice.Field("day", "date"),
    sluice.Field("at", "timestamptz"),
    sluice.Field("note", "string"),
]


def columns_of(lo, hi):
    ids = range(lo, hi)
    return sluice.columns(
        id=list(ids),
        name=[f"name-{i}" for i in ids],
        amount=[f"{i % 100000}.{i % 100:02d}" for i in ids],
        ratio=[i / 7 for i in ids],
        active=[i % 2 == 0 for i in ids],
        day=["2026-12-07"] * (hi - lo),
        at=["2026-12-07T10:00:00Z"] * (hi - lo),
        note=[None if i % 10 == 0 else "x" for i in ids],
    )


class Synthetic(sluice.Source):
    name = "py-synthetic"
    description = "Synthetic rows, written in Python"
    Config = Config

    def streams(self, config):
        return [sluice.Stream("synthetic", FIELDS, primary_key=["id"], incremental=True)]

    def partitions(self, config, stream, state):
        per = -(-config.rows // config.partitions)
        return [
            sluice.Partition(f"p{i}", {"start": i * per, "end": min((i + 1) * per, config.rows)})
            for i in range(config.partitions)
        ]

    def read(self, config, stream, partition, state):
        start = partition.spec["start"] if state is None else state["next"]
        end = partition.spec["end"]
        step = config.checkpoint_every or (end - start) or 1
        for lo in range(start, end, step):
            hi = min(lo + step, end)
            if config.as_columns:
                # A batch's worth of columns at a time, not the whole range.
                for clo in range(lo, hi, 8192):
                    yield columns_of(clo, min(clo + 8192, hi))
            else:
                for i in range(lo, hi):
                    yield {
                        "id": i,
                        "name": f"name-{i}",
                        "amount": f"{i % 100000}.{i % 100:02d}",
                        "ratio": i / 7,
                        "active": i % 2 == 0,
                        "day": "2026-12-07",
                        "at": "2026-12-07T10:00:00Z",
                        "note": None if i % 10 == 0 else "x",
                    }
            if config.checkpoint_every:
                yield sluice.Checkpoint({"next": hi})


sluice.export(Synthetic)
