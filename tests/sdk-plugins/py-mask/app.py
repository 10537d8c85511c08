"""A row filter in Python: masks e-mail addresses and drops test accounts."""

from dataclasses import dataclass, field

import sluice


@dataclass
class Config:
    #: The column holding e-mail addresses.
    email: str = "email"
    #: Rows whose address ends with one of these are dropped.
    drop_domains: list[str] = field(default_factory=lambda: ["@example.com"])
    #: Work column-wise (`plan`, `keep`, `compute`) instead of a row at a time.
    columnwise: bool = False


def mask(address: str) -> str:
    user, at, domain = address.partition("@")
    return (user[:1] + "***" + at + domain) if at else "***"


class Mask(sluice.Filter):
    name = "py-mask"
    description = "Masks e-mail addresses and drops test accounts (Python)"
    Config = Config

    def open(self, config, fields):
        if config.email not in [f.name for f in fields]:
            raise sluice.ConfigError(f"no column `{config.email}` in the input")
        self.column = config.email
        self.drop = tuple(config.drop_domains)

    def plan(self, config, fields):
        if not config.columnwise:
            return None
        email = [f for f in fields if f.name == self.column][0]
        return sluice.Plan(keep_reads=[self.column], compute_reads=[self.column], computed=[email])

    def keep(self, columns):
        drop = self.drop
        return [a is None or not a.endswith(drop) for a in columns[self.column]]

    def compute(self, columns):
        return {self.column: [None if a is None else mask(a) for a in columns[self.column]]}

    def process(self, rows):
        out = []
        column, drop = self.column, self.drop
        for row in rows:
            address = row[column]
            if address is not None:
                if address.endswith(drop):
                    continue
                row[column] = mask(address)
            out.append(row)
        return out


sluice.export(Mask)
