"""A row filter in Python: masks e-mail addresses and drops test accounts."""

from dataclasses import dataclass, field

import sluice


@dataclass
class Config:
    #: The column holding e-mail addresses.
    email: str = "email"
    #: Rows whose address ends with one of these are dropped.
    drop_domains: list[str] = field(default_factory=lambda: ["@example.com"])


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
