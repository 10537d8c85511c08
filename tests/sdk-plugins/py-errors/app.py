"""A source that fails on purpose, where and how its config says: every
error kind, from every call, must reach the user typed and named."""

from dataclasses import dataclass
from typing import Literal

import sluice

ERRORS = {
    "config": sluice.ConfigError,
    "auth": sluice.AuthError,
    "transient": sluice.TransientError,
    "data": sluice.DataError,
}


@dataclass
class Config:
    fail_in: Literal["none", "check", "discover", "partitions", "open", "next"] = "none"
    kind: Literal["config", "auth", "transient", "data", "bug", "bad-row"] = "config"
    rows: int = 10


def fail(config, call):
    if config.fail_in != call or config.kind == "bad-row":
        return
    if config.kind == "bug":
        {}["no such key"]  # a plain Python bug: KeyError with a traceback
    raise ERRORS[config.kind](f"{config.kind} failure in {call}, on purpose")


class Errors(sluice.Source):
    name = "py-errors"
    Config = Config
    # Where and how it fails is not what it reads: a run that fails and a
    # run that does not share their saved state.
    state_ignores = ["fail_in", "kind"]

    def check(self, config):
        fail(config, "check")

    def streams(self, config):
        fail(config, "discover")
        return [sluice.Stream("s", [sluice.Field("n", "int64", nullable=False)])]

    def partitions(self, config, stream, state):
        fail(config, "partitions")
        return [sluice.Partition("all")]

    def read(self, config, stream, partition, state):
        fail(config, "open")
        start = 0 if state is None else state + 1
        for n in range(start, config.rows):
            if n == config.rows // 2:
                fail(config, "next")
                if config.fail_in == "next" and config.kind == "bad-row":
                    yield {"n": "not a number"}
            yield {"n": n}
            if n % 3 == 2:
                yield sluice.Checkpoint(n)


sluice.export(Errors)
