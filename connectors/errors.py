"""The one error type every connector raises; the job layer decides what to do with it."""

from __future__ import annotations


class ConnectorError(Exception):
    """A call to another system failed.

    ``permanent`` errors (bad credentials, a customer that does not exist, a validation error)
    are not retried: the effect goes dead and the admin sees ``message``. Transient ones are
    retried with backoff, no sooner than ``retry_after`` seconds when the platform said so.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.status = status

    def __repr__(self) -> str:
        return f"ConnectorError({self.message!r}, permanent={self.permanent}, status={self.status})"
