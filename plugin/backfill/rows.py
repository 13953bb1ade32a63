"""What every history source yields: pages of customer and order rows, in the ledger's terms.

The webhook path speaks in :mod:`plugin.events`; so do the API sources, which build
``CustomerRef`` and ``OrderSnapshot`` (WooCommerce through the webhook normaliser itself) and
turn them into rows here with the ledger's own merge (:func:`plugin.ledger.orders.merge_snapshot`),
so an imported order is the ledger row a webhook would have written. The CSV source hands out
its pages as the file's own bytes (:class:`CsvChunk`): PostgreSQL reads a clean page itself
(:mod:`plugin.backfill.csv_copy`), and only what needs a closer look is read into rows in
Python — a million frozen dataclasses cost more than the whole database work of an import.

A customer row is keyed like the pipeline resolves customers: by the platform's customer id
when there is one, else by (normalised) email.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from plugin.events import CustomerRef, OrderSnapshot
from plugin.ledger.orders import merge_snapshot
from plugin.pipeline.customers import normalize_email


class CustomerRow(NamedTuple):
    key: str
    external_id: str | None
    email: str | None
    first_name: str | None
    last_name: str | None
    created_at: datetime | None  # account creation on the platform


class OrderRow(NamedTuple):
    external_id: str
    customer_key: str | None
    currency: str
    total: Decimal
    refunds: dict[str, str]  # refund id -> amount, as the ledger keeps them
    paid: bool
    cancelled: bool
    placed_at: datetime
    updated_at: datetime
    line_items: list[dict[str, Any]]

    @property
    def refunded(self) -> Decimal:
        return sum((Decimal(v) for v in self.refunds.values()), Decimal(0))


@dataclass(frozen=True)
class CsvChunk:
    """Whole records of a CSV file, as its bytes, for the database to read in bulk."""

    columns: dict[str, int]  # column name -> position in the file's rows
    width: int  # columns in the file's header
    data: bytes  # the records, header excluded
    first_row: int  # data rows of the file before this chunk


MAX_PROBLEMS = 5


@dataclass
class Page:
    """One unit of import, committed with the cursor that resumes after it: rows, or a CSV chunk."""

    cursor: dict[str, Any]
    customers: list[CustomerRow] = field(default_factory=list)
    orders: list[OrderRow] = field(default_factory=list)
    csv: CsvChunk | None = None
    skipped: int = 0  # records that could not be read
    problems: list[str] = field(default_factory=list)  # why, for the first few of them

    def skip(self, problem: str) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


class Source(Protocol):
    name: str

    def pages(self, cursor: Mapping[str, Any]) -> Iterator[Page]:
        """Pages after ``cursor`` (``{}``: from the start). Each page's cursor resumes after it."""
        ...


class InvalidSource(ValueError):
    """The source cannot be read at all (bad file, missing columns, wrong platform)."""


def customer_key(external_id: str | None, email: str | None) -> str | None:
    if external_id:
        return f"id:{external_id}"
    return f"email:{email}" if email else None


def customer_row(ref: CustomerRef) -> CustomerRow | None:
    email = normalize_email(ref.email)
    key = customer_key(ref.external_id, email)
    if key is None:
        return None
    return CustomerRow(key, ref.external_id, email, ref.first_name, ref.last_name, ref.created_at)


def order_row(snapshot: OrderSnapshot) -> OrderRow:
    state = merge_snapshot(None, snapshot)
    ref = snapshot.customer
    return OrderRow(
        external_id=snapshot.external_id,
        customer_key=customer_key(ref.external_id, normalize_email(ref.email)) if ref else None,
        currency=state.currency,
        total=state.total,
        refunds=dict(state.refunds),
        paid=state.paid,
        cancelled=state.cancelled,
        placed_at=snapshot.placed_at,
        updated_at=snapshot.updated_at,
        line_items=list(state.line_items),
    )


def page_of(
    cursor: dict[str, Any],
    customers: list[CustomerRef],
    orders: list[OrderSnapshot],
    skipped: list[str] | None = None,
) -> Page:
    """A page from canonical events; an order's customer is imported with it."""
    refs = customers + [o.customer for o in orders if o.customer is not None]
    page = Page(
        cursor=cursor,
        customers=[row for row in map(customer_row, refs) if row is not None],
        orders=[order_row(o) for o in orders],
    )
    for problem in skipped or []:
        page.skip(problem)
    return page
