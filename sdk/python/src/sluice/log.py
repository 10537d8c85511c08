"""Logging to the host: lines appear in `sluice run`'s log, tagged with the
plugin's name. Python's `logging` goes there too inside the component.
Natively (tests) they go to the `logging` module's `sluice.plugin` logger."""

from __future__ import annotations

import logging
import sys

IN_WASM = sys.platform == "wasi"
_native = logging.getLogger("sluice.plugin")


def _emit(level: str, message: str) -> None:
    if IN_WASM:
        from ._wasm import log

        log(level, str(message))
    else:
        _native.log(_LEVELS[level], message)


_LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


def trace(message: str) -> None:
    _emit("trace", message)


def debug(message: str) -> None:
    _emit("debug", message)


def info(message: str) -> None:
    _emit("info", message)


def warn(message: str) -> None:
    _emit("warn", message)


def error(message: str) -> None:
    _emit("error", message)


class HostHandler(logging.Handler):
    """Sends `logging` records to the host log."""

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else (
            "warn" if record.levelno >= logging.WARNING else (
                "info" if record.levelno >= logging.INFO else "debug"
            )
        )
        try:
            _emit(level, self.format(record))
        except Exception:  # logging must never fail the call
            pass


if IN_WASM:
    logging.basicConfig(level=logging.INFO, handlers=[HostHandler()], force=True)
