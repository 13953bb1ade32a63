"""Finding (or creating) the customers a batch of events is about, set-based.

A customer is one person or company in a workspace, known on each connection by an external
id (``customer_identities``) and across platforms by email. Resolution costs a handful of
queries per batch, whatever its size.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.orm import Session

from plugin.db import upsert_statement
from plugin.events import CustomerRef
from plugin.models import Customer, CustomerIdentity


@dataclass(frozen=True)
class RefKey:
    workspace_id: uuid.UUID
    connection_id: uuid.UUID
    external_id: str | None
    email: str | None

    @classmethod
    def of(cls, workspace_id: uuid.UUID, connection_id: uuid.UUID, ref: CustomerRef) -> RefKey:
        return cls(workspace_id, connection_id, ref.external_id, normalize_email(ref.email))


def normalize_email(email: str | None) -> str | None:
    email = (email or "").strip().lower()
    return email or None


def resolve(session: Session, refs: Iterable[tuple[RefKey, CustomerRef]]) -> dict[RefKey, uuid.UUID]:
    """Customer id for every identifiable ref, creating customers and identities as needed."""
    wanted = {key: ref for key, ref in refs if key.external_id or key.email}
    found: dict[RefKey, uuid.UUID] = {}
    if not wanted:
        return found

    by_identity = sorted({(k.connection_id, k.external_id) for k in wanted if k.external_id})
    if by_identity:
        rows = session.execute(
            select(CustomerIdentity.connection_id, CustomerIdentity.external_id, CustomerIdentity.customer_id).where(
                tuple_(CustomerIdentity.connection_id, CustomerIdentity.external_id).in_(by_identity)
            )
        ).all()
        known = {(r.connection_id, r.external_id): r.customer_id for r in rows}
        for key in wanted:
            if key.external_id and (key.connection_id, key.external_id) in known:
                found[key] = known[(key.connection_id, key.external_id)]

    _fill_missing_emails(session, {k: found[k] for k in found if k.email})
    missing = [k for k in wanted if k not in found]
    by_email = sorted({(k.workspace_id, k.email) for k in missing if k.email}, key=str)
    if by_email:
        emails = _customers_by_email(session, by_email)
        absent = [pair for pair in by_email if pair not in emails]
        if absent:
            session.execute(
                upsert_statement(session, Customer.__table__)
                .values(
                    [
                        _new_customer_row(ws, email, _ref_with_email(wanted, ws, email))
                        for ws, email in absent
                    ]
                )
                .on_conflict_do_nothing(index_elements=["workspace_id", "email"])
            )
            emails.update(_customers_by_email(session, absent))
        for key in missing:
            if key.email and (key.workspace_id, key.email) in emails:
                found[key] = emails[(key.workspace_id, key.email)]

    for key in [k for k in wanted if k not in found]:
        # Known only by an external id (no email yet): a customer of its own.
        customer_id = uuid.uuid4()
        session.execute(
            insert(Customer).values(_new_customer_row(key.workspace_id, None, wanted[key], customer_id))
        )
        found[key] = customer_id

    identities = sorted(
        {(k.workspace_id, k.connection_id, k.external_id, found[k]) for k in wanted if k.external_id},
        key=lambda row: (str(row[1]), row[2]),
    )
    if identities:
        session.execute(
            upsert_statement(session, CustomerIdentity.__table__)
            .values(
                [
                    {"workspace_id": ws, "connection_id": conn, "external_id": ext, "customer_id": cid}
                    for ws, conn, ext, cid in identities
                ]
            )
            .on_conflict_do_nothing(index_elements=["connection_id", "external_id"])
        )
    return found


def _fill_missing_emails(session: Session, known: dict[RefKey, uuid.UUID]) -> None:
    """A customer first known only by an id gets the email a later event brings — unless
    another customer of the workspace already has it (merging people is an admin's call)."""
    if not known:
        return
    without = set(
        session.execute(
            select(Customer.id).where(Customer.id.in_(set(known.values())), Customer.email.is_(None))
        ).scalars()
    )
    for key, customer_id in sorted(known.items(), key=lambda item: str(item[1])):
        if customer_id not in without:
            continue
        taken = session.scalar(
            select(Customer.id).where(Customer.workspace_id == key.workspace_id, Customer.email == key.email)
        )
        if taken is None:
            session.execute(update(Customer).where(Customer.id == customer_id).values(email=key.email))
            without.discard(customer_id)


def _customers_by_email(
    session: Session, pairs: Sequence[tuple[uuid.UUID, str | None]]
) -> dict[tuple[uuid.UUID, str | None], uuid.UUID]:
    rows = session.execute(
        select(Customer.id, Customer.workspace_id, Customer.email).where(
            tuple_(Customer.workspace_id, Customer.email).in_(pairs)
        )
    ).all()
    return {(r.workspace_id, r.email): r.id for r in rows}


def _ref_with_email(wanted: dict[RefKey, CustomerRef], workspace_id: uuid.UUID, email: str | None) -> CustomerRef:
    return next(ref for key, ref in wanted.items() if key.workspace_id == workspace_id and key.email == email)


def _new_customer_row(
    workspace_id: uuid.UUID, email: str | None, ref: CustomerRef, customer_id: uuid.UUID | None = None
) -> dict[str, object]:
    from plugin.db import utcnow

    now = utcnow()
    return {
        "id": customer_id or uuid.uuid4(),
        "workspace_id": workspace_id,
        "email": email,
        "first_name": ref.first_name,
        "last_name": ref.last_name,
        "company_name": ref.company_name,
        "customer_since": ref.created_at,
        "timezone": ref.timezone,
        "properties": {},
        "created_at": now,
        "updated_at": now,
    }
