"""The one exception tree of scd-monitor.

::

    ScdMonitorError
    ├── ConfigError        a catalog or settings file is invalid (fatal at start-up)
    ├── StoreError         the database refused a read or a write
    └── SinkError          a delivery failed (``permanent`` says whether to retry)

Failures caused by *targets* are never exceptions: probes turn them into a
:class:`~scd_monitor.probes.base.ProbeResult` with an :class:`ErrorKind`.
"""

from __future__ import annotations


class ScdMonitorError(Exception):
    """Base class of every error scd-monitor raises on purpose."""


class ConfigError(ScdMonitorError):
    """A catalog or settings file is invalid.

    ``problems`` holds one human-readable line per problem, each naming the file,
    the line and the offending key where they are known.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __reduce__(self) -> tuple[type[ConfigError], tuple[list[str]]]:
        # Pickled across processes (the SLA worker) with its problems, not its message.
        return (type(self), (self.problems,))


class StoreError(ScdMonitorError):
    """The store could not read or write."""


class ConflictError(StoreError):
    """A write lost a race with another process (a unique key taken meanwhile)."""


class NotFoundError(StoreError):
    """The row asked for (an incident code, a delivery id) does not exist."""


class NoStoreDataError(StoreError):
    """A database opened for reading holds nothing scd-monitor wrote: a mistyped SQLite
    path, an empty or non-database file, a PostgreSQL database without its tables."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(
            f"{url} holds no scd-monitor data; start the daemon on it first, or check the URL"
        )


class SinkError(ScdMonitorError):
    """A delivery to a sink failed; ``permanent`` failures are not retried."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        self.permanent = permanent
        super().__init__(message)
