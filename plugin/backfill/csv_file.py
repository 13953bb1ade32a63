"""History from a CSV file: one row per order, with its customer.

Columns (a header row names them; order does not matter, others are ignored):

==================== ========= =====================================================================
column               required  meaning
==================== ========= =====================================================================
order_id             yes       the platform's order id (the one its webhooks carry)
placed_at            yes       when the order was placed, ISO 8601; without an offset it is UTC
total                yes       the order total, a decimal ("42.50")
currency             yes       ISO 4217 code
status               no        paid (default), completed, processing, fulfilled, partially_refunded,
                               refunded, pending, on-hold, failed, authorized, cancelled, voided
refunded             no        the amount refunded so far (a refunded order without it: its total)
customer_id          no        the platform's customer id; without it the customer is the email
email                no        the customer's email
first_name           no
last_name            no
customer_created_at  no        when the customer's account was created, ISO 8601
updated_at           no        when the order last changed (default: placed_at), for the ledger's
                               "newest snapshot wins" rule against what webhooks delivered
==================== ========= =====================================================================

The file is cut into pages of whole records, each kept as the file's own bytes
(:class:`~plugin.backfill.rows.CsvChunk`): on PostgreSQL a clean page goes to the server with
``COPY … (FORMAT csv)`` and is checked and converted there (:mod:`plugin.backfill.csv_copy`);
otherwise — SQLite, or a page with anything unusual in it — :func:`parse_chunk` reads it here,
row by row, and a row that cannot be read is skipped and reported, never half-imported.
The cursor is the number of data rows consumed, so a resumed run skips them. A refund from the
file has no id of its own: it is kept under the id ``csv``, so the same order refunded again
later by webhook counts both.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from plugin.backfill.rows import CsvChunk, CustomerRow, InvalidSource, OrderRow, Page, customer_key
from plugin.pipeline.customers import normalize_email

ROWS_PER_PAGE = 100_000
REQUIRED = ("order_id", "placed_at", "total", "currency")
OPTIONAL = (
    "status", "refunded", "customer_id", "email", "first_name", "last_name", "customer_created_at", "updated_at",
)
PAID = frozenset({"paid", "completed", "processing", "fulfilled", "partially_refunded", "partially-refunded"})
REFUNDED = frozenset({"refunded"})
UNPAID = frozenset({"pending", "on-hold", "on_hold", "failed", "authorized", "unpaid"})
CANCELLED = frozenset({"cancelled", "canceled", "voided"})
STATUSES = PAID | REFUNDED | UNPAID | CANCELLED
CSV_REFUND_ID = "csv"
ZERO = Decimal(0)


class CsvHistory:
    name = "csv"

    def __init__(self, path: str | Path, *, rows_per_page: int = ROWS_PER_PAGE) -> None:
        self.path = Path(path)
        self.rows_per_page = rows_per_page

    def pages(self, cursor: Mapping[str, Any]) -> Iterator[Page]:
        done = int(cursor.get("row") or 0)
        try:
            handle = self.path.open("rb")
        except OSError as exc:
            raise InvalidSource(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        with handle:
            header, _ = _records(handle, 1)
            if header.startswith(b"\xef\xbb\xbf"):
                header = header[3:]
            names = next(csv.reader(io.StringIO(header.decode("utf-8"))), None)
            columns = _columns(names, self.path)
            width = len(names or ())
            remaining = done
            while remaining:  # a resumed run: past the rows already imported, a page at a time
                _, count = _records(handle, min(remaining, self.rows_per_page))
                if not count:
                    return
                remaining -= count
            while True:
                data, count = _records(handle, self.rows_per_page)
                if not count:
                    return
                yield Page(cursor={"row": done + count}, csv=CsvChunk(columns, width, data, done))
                done += count


def _records(handle: BinaryIO, wanted: int) -> tuple[bytes, int]:
    """The bytes of the next ``wanted`` records (fewer at the end) and how many they are. A quoted
    field may hold line breaks, so a line with an odd number of quotes opens or closes a record."""
    lines = list(islice(handle, wanted))
    data = b"".join(lines)
    if b'"' not in data:
        return data, len(lines)
    count, open_quote, pending = 0, False, lines
    while True:
        for line in pending:
            if line.count(b'"') % 2:
                open_quote = not open_quote
            if not open_quote:
                count += 1
        if not open_quote and count >= wanted or not pending:
            break
        pending = list(islice(handle, wanted - count if not open_quote else 1))
        lines += pending
    # the records past ``wanted`` cannot happen: each completed line is one record at most
    return b"".join(lines), count


def _columns(header: list[str] | None, path: Path) -> dict[str, int]:
    if not header:
        raise InvalidSource(f"{path} is empty: the first row names the columns ({', '.join(REQUIRED)}, …)")
    index = {name.strip().lower(): i for i, name in enumerate(header)}
    missing = [name for name in REQUIRED if name not in index]
    if missing:
        raise InvalidSource(f"{path} has no column {', '.join(missing)}; it needs {', '.join(REQUIRED)}")
    return {name: index[name] for name in REQUIRED + OPTIONAL if name in index}


def parse_chunk(chunk: CsvChunk) -> list[Page]:
    """The chunk's rows read in Python, as pages without a repeated order id (the ledger merges
    a repeat on the next one). Unreadable rows are counted on the page they fell in."""
    reader = csv.reader(io.StringIO(chunk.data.decode("utf-8", errors="replace")))
    builder = _PageBuilder(chunk.columns, chunk.first_row)
    pages = []
    for row in reader:
        if builder.has_order(row):
            pages.append(builder.finish())
            builder = _PageBuilder(chunk.columns, builder.consumed)
        builder.add(row)
    pages.append(builder.finish())
    return pages


class _PageBuilder:
    def __init__(self, columns: dict[str, int], consumed: int) -> None:
        self.columns = columns
        self.consumed = consumed  # data rows before this page, then through it
        self.page = Page(cursor={})
        self.customers: dict[str, CustomerRow] = {}
        self.order_ids: set[str] = set()
        self.times: dict[str, datetime] = {}

    def has_order(self, row: list[str]) -> bool:
        return self._field(row, "order_id") in self.order_ids

    def add(self, row: list[str]) -> None:
        self.consumed += 1
        if not row:
            return  # a blank line
        try:
            self._add(row)
        except (ValueError, InvalidOperation) as exc:
            self.page.skip(f"row {self.consumed}: {exc}")

    def finish(self) -> Page:
        self.page.cursor = {"row": self.consumed}
        self.page.customers = list(self.customers.values())
        return self.page

    def _field(self, row: list[str], name: str) -> str:
        at = self.columns.get(name)
        return row[at].strip() if at is not None and at < len(row) else ""

    def _time(self, text: str, name: str) -> datetime:
        found = self.times.get(text)
        if found is None:
            try:
                found = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"{name} is not an ISO 8601 date: {text!r}") from None
            found = found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)
            self.times[text] = found
        return found

    def _add(self, row: list[str]) -> None:
        order_id = self._field(row, "order_id")
        if not order_id:
            raise ValueError("order_id is empty")
        currency = self._field(row, "currency").upper()
        if len(currency) != 3 or not currency.isalpha():
            raise ValueError(f"currency is not a 3-letter code: {currency!r}")
        total = _amount(self._field(row, "total"), "total")
        status = self._field(row, "status").lower() or "paid"
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        refunded = _amount(self._field(row, "refunded") or "0", "refunded")
        if status in REFUNDED and not refunded:
            refunded = total
        placed_at = self._time(self._field(row, "placed_at"), "placed_at")
        updated = self._field(row, "updated_at")
        updated_at = self._time(updated, "updated_at") if updated else placed_at
        key = self._customer(row)
        self.order_ids.add(order_id)
        self.page.orders.append(
            OrderRow(
                external_id=order_id,
                customer_key=key,
                currency=currency,
                total=total,
                refunds={CSV_REFUND_ID: str(refunded)} if refunded else {},
                paid=status in PAID or status in REFUNDED,
                cancelled=status in CANCELLED,
                placed_at=placed_at,
                updated_at=updated_at,
                line_items=[],
            )
        )

    def _customer(self, row: list[str]) -> str | None:
        external_id = self._field(row, "customer_id") or None
        email = normalize_email(self._field(row, "email"))
        key = customer_key(external_id, email)
        if key is not None and key not in self.customers:
            created = self._field(row, "customer_created_at")
            self.customers[key] = CustomerRow(
                key=key,
                external_id=external_id,
                email=email,
                first_name=self._field(row, "first_name") or None,
                last_name=self._field(row, "last_name") or None,
                created_at=self._time(created, "customer_created_at") if created else None,
            )
        return key


def _amount(text: str, name: str) -> Decimal:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{name} is not a decimal amount: {text!r}") from None
    if not amount.is_finite() or amount < ZERO:
        raise ValueError(f"{name} is not a decimal amount: {text!r}")
    return amount
