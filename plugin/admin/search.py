"""Finding customers by what a person types: part of an email, a name or a company."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_

from plugin.models import Customer


def customer_matches(text: str) -> Any:
    """A WHERE clause: ``text`` (wildcards taken literally, any case) occurs in the customer's
    email, first, last or full name, or company."""
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    full_name = func.concat(Customer.first_name, " ", Customer.last_name)
    columns = (Customer.email, Customer.first_name, Customer.last_name, full_name, Customer.company_name)
    return or_(*(column.ilike(pattern, escape="\\") for column in columns))
