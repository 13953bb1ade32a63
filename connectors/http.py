"""The one HTTP choke point for every outbound call.

It turns transport failures and HTTP error statuses into :class:`ConnectorError` with the
right ``permanent`` flag and ``retry_after``, truncates third-party bodies before they reach
logs or error messages, and never logs secrets (headers are not logged at all).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from connectors.errors import ConnectorError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5.0, 20.0)
BODY_EXCERPT = 300
# Statuses worth trying again; everything else 4xx is the request's fault and permanent.
TRANSIENT_STATUSES = frozenset({408, 409, 423, 425, 429, 500, 502, 503, 504})


def excerpt(text: str, limit: int = BODY_EXCERPT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpClient:
    def __init__(self, session: requests.Session | None = None, timeout: Any = DEFAULT_TIMEOUT) -> None:
        self.session = session or requests.Session()
        self.timeout = timeout

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.Timeout as exc:
            raise ConnectorError(f"{method} {url}: timed out") from exc
        except requests.RequestException as exc:
            raise ConnectorError(f"{method} {url}: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise self.error_for(method, url, response)
        return response

    @staticmethod
    def error_for(method: str, url: str, response: requests.Response) -> ConnectorError:
        status = response.status_code
        message = f"{method} {url} answered {status}: {excerpt(response.text)}"
        log.warning("outbound call failed: %s", message)
        return ConnectorError(
            message,
            permanent=status not in TRANSIENT_STATUSES,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            status=status,
        )

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.request(method, url, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise ConnectorError(f"{method} {url}: answer is not JSON: {excerpt(response.text)}") from exc
