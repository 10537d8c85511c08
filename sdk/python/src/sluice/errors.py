"""Typed errors: raise one and the host knows whether to retry.

Any other exception is a bug in the plugin: the host gets an `internal`
error whose message carries the Python traceback.
"""


class SluiceError(Exception):
    """Base of the typed errors; its `kind` is the WIT `error-kind`."""

    kind = "internal"


class ConfigError(SluiceError):
    """The config is wrong: fix the job file. Never retried."""

    kind = "config"


class AuthError(SluiceError):
    """Credentials were refused. Never retried."""

    kind = "auth"


class TransientError(SluiceError):
    """Worth retrying: a dropped connection, a throttled request."""

    kind = "transient"


class DataError(SluiceError):
    """The data is bad: a malformed row, a value that does not fit."""

    kind = "data"


class InternalError(SluiceError):
    """A bug in the plugin, said on purpose."""

    kind = "internal"
