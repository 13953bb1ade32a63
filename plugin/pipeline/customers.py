"""Finding (or creating) the customers a batch of events is about, set-based.

A customer is one person or company in a workspace, known on each connection by an external
id (``customer_identities``) and across platforms by email. Resolution costs a handful of
queries per batch, whatever its size.

Some platforms name a person by their id alone at first: a HubSpot webhook carries only the
contact id, and its email arrives in a later event. Such a customer stands on its own until the
email comes; if another customer of the workspace already has that email, they are the same
person seen from two sides, and :func:`merge_customer` folds the id-only one into it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, exists, insert, select, update
from sqlalchemy.orm import Session

from plugin.db import pairs_in, utcnow
from plugin.events import CustomerRef
from plugin.milestones.tenure import local_zone, tenure_columns
from plugin.models import Customer, CustomerIdentity, CustomerMetric, CustomerMilestone, Order, Workspace
from plugin.upsert import upsert

# Counted from each connection's order ledger, so two customers' counts add up when they merge.
LEDGER_METRICS = frozenset({"order_count", "lifetime_spend"})


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
                pairs_in(CustomerIdentity.connection_id, CustomerIdentity.external_id, by_identity)
            )
        ).all()
        known = {(r.connection_id, r.external_id): r.customer_id for r in rows}
        for key in wanted:
            if key.external_id and (key.connection_id, key.external_id) in known:
                found[key] = known[(key.connection_id, key.external_id)]

    merged = _link_emails(session, {k: found[k] for k in found if k.email})
    if merged:
        found = {key: merged.get(customer_id, customer_id) for key, customer_id in found.items()}
    missing = [k for k in wanted if k not in found]
    by_email = sorted({(k.workspace_id, k.email) for k in missing if k.email}, key=str)
    if by_email:
        emails = _customers_by_email(session, by_email)
        absent = [pair for pair in by_email if pair not in emails]
        if absent:
            session.execute(
                upsert(session, Customer.__table__, conflict=["workspace_id", "email"]),
                [_new_customer_row(ws, email, _ref_with_email(wanted, ws, email)) for ws, email in absent],
            )
            emails.update(_customers_by_email(session, absent))
        for key in missing:
            if key.email and (key.workspace_id, key.email) in emails:
                found[key] = emails[(key.workspace_id, key.email)]

    # The same id seen with its email elsewhere in this batch (a contact created, then its email set).
    by_identity_here: dict[tuple[uuid.UUID, str | None], uuid.UUID] = {
        (k.connection_id, k.external_id): found[k] for k in found if k.external_id
    }
    for key in [k for k in wanted if k not in found]:
        customer_id = by_identity_here.get((key.connection_id, key.external_id))
        if customer_id is None:
            # Known only by an external id (no email yet): a customer of its own.
            customer_id = by_identity_here[(key.connection_id, key.external_id)] = uuid.uuid4()
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
            upsert(session, CustomerIdentity.__table__, conflict=["connection_id", "external_id"]),
            [
                {"workspace_id": ws, "connection_id": conn, "external_id": ext, "customer_id": cid}
                for ws, conn, ext, cid in identities
            ],
        )
    return found


def _link_emails(session: Session, known: dict[RefKey, uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """A customer first known only by an id gets the email a later event brings; when another
    customer of the workspace already has it, the id-only customer is merged into that one.
    Returns ``{merged customer: the customer it is now}``."""
    if not known:
        return {}
    without = set(
        session.execute(
            select(Customer.id).where(Customer.id.in_(set(known.values())), Customer.email.is_(None))
        ).scalars()
    )
    merged: dict[uuid.UUID, uuid.UUID] = {}
    for key, customer_id in sorted(known.items(), key=lambda item: (str(item[1]), item[0].email or "")):
        if customer_id not in without:
            continue
        taken = session.scalar(
            select(Customer.id).where(Customer.workspace_id == key.workspace_id, Customer.email == key.email)
        )
        if taken is None:
            session.execute(
                update(Customer).where(Customer.id == customer_id, Customer.email.is_(None)).values(email=key.email)
            )
        elif merge_customer(session, customer_id, taken):
            merged[customer_id] = taken
        without.discard(customer_id)
    return merged


def link_identity(
    session: Session, workspace_id: uuid.UUID, connection_id: uuid.UUID, external_id: str, customer_id: uuid.UUID
) -> uuid.UUID:
    """Remember that ``external_id`` on the connection is ``customer_id`` — a platform told us (a
    CRM note found the customer's contact by their email), so its later webhooks about that record
    reach the customer directly. A customer already known by that id alone, without an email, is
    the same person seen earlier from the platform's side and is merged in. Returns the customer
    the id names now."""
    session.execute(
        upsert(session, CustomerIdentity.__table__, conflict=["connection_id", "external_id"]),
        {"workspace_id": workspace_id, "connection_id": connection_id, "external_id": external_id,
         "customer_id": customer_id},
    )
    holder = session.scalar(
        select(CustomerIdentity.customer_id).where(
            CustomerIdentity.connection_id == connection_id, CustomerIdentity.external_id == external_id
        )
    )
    if holder is None or holder == customer_id:
        return customer_id
    holder_email = session.scalar(select(Customer.email).where(Customer.id == holder))
    if holder_email is None and merge_customer(session, holder, customer_id):
        return customer_id
    return holder


def merge_customer(session: Session, source_id: uuid.UUID, target_id: uuid.UUID) -> bool:
    """Fold ``source`` (known by a platform id alone) into ``target``; False if there is nothing to do.

    Both rows are locked in id order, as every batch locks customers, so two workers never wait on
    each other in a cycle. ``source`` must still be without an email when locked (another worker
    may have merged it already). Then, in a fixed number of statements: its identities and orders
    point at ``target``; metrics ``target`` lacks move over, ``target`` keeping its own reading of
    a metric both have, except order counters, which add up (the orders moved too); milestones
    move unless ``target`` has the same one (definition and occurrence); context is copied (ARR,
    health score and owner from ``source``, the platform that knows them; names where ``target``
    has none; the earliest "customer since"); and ``source`` is deleted.
    """
    if source_id == target_id:
        return False
    customers = _table(Customer)
    rows = {
        row.id: row
        for row in session.execute(
            select(customers)
            .where(customers.c.id.in_(sorted((source_id, target_id))))
            .order_by(customers.c.id)
            .with_for_update()
        )
    }
    source, target = rows.get(source_id), rows.get(target_id)
    if source is None or target is None or source.email is not None or source.workspace_id != target.workspace_id:
        return False
    now = utcnow()
    for model in (CustomerIdentity, Order):
        table = _table(model)
        session.execute(update(table).where(table.c.customer_id == source_id).values(customer_id=target_id))
    _merge_metrics(session, source_id, target_id, now)
    milestones, theirs = _table(CustomerMilestone), _table(CustomerMilestone).alias("target_milestones")
    session.execute(
        update(milestones)
        .where(
            milestones.c.customer_id == source_id,
            ~exists().where(
                theirs.c.customer_id == target_id,
                theirs.c.definition_id == milestones.c.definition_id,
                theirs.c.occurrence == milestones.c.occurrence,
            ),
        )
        .values(customer_id=target_id)
    )
    values = _merged_profile(session, source, target)
    session.execute(update(customers).where(customers.c.id == target_id).values(**values, updated_at=now))
    session.execute(delete(customers).where(customers.c.id == source_id))
    return True


def _merge_metrics(session: Session, source_id: uuid.UUID, target_id: uuid.UUID, now: datetime) -> None:
    metrics = _table(CustomerMetric)
    rows = session.execute(
        select(metrics.c.customer_id, metrics.c.metric, metrics.c.value, metrics.c.observed_at).where(
            metrics.c.customer_id.in_((source_id, target_id))
        )
    ).all()
    ours = {r.metric: r for r in rows if r.customer_id == target_id}
    moved = []
    for row in (r for r in rows if r.customer_id == source_id):
        if row.metric in LEDGER_METRICS and row.metric in ours:
            value, observed = ours[row.metric].value + row.value, ours[row.metric].observed_at
        elif row.metric in ours:
            continue
        else:
            value, observed = row.value, row.observed_at
        moved.append({"customer_id": target_id, "metric": row.metric, "value": value, "observed_at": observed,
                      "updated_at": now})
    if moved:
        session.execute(
            upsert(session, metrics, conflict=["customer_id", "metric"], update=["value", "observed_at", "updated_at"]),
            moved,
        )


def _merged_profile(session: Session, source: Any, target: Any) -> dict[str, Any]:
    """The target's columns that change: ``source`` and ``target`` are locked ``customers`` rows."""
    values: dict[str, Any] = {}
    for name in ("first_name", "last_name", "company_name", "timezone"):
        if getattr(target, name) is None and getattr(source, name) is not None:
            values[name] = getattr(source, name)
    for name in ("arr", "health_score", "owner_email"):
        if getattr(source, name) is not None:
            values[name] = getattr(source, name)
    if source.properties:
        values["properties"] = {**source.properties, **(target.properties or {})}
    dates = [d for d in (source.customer_since, target.customer_since) if d is not None]
    since = min(dates) if dates else None
    if since != target.customer_since or "timezone" in values:
        workspace_zone = session.scalar(select(Workspace.timezone).where(Workspace.id == target.workspace_id))
        zone = local_zone(values.get("timezone", target.timezone), workspace_zone or "UTC")
        values.update(customer_since=since, **tenure_columns(since, zone))
    return values


def _table(model: type) -> Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


def _customers_by_email(
    session: Session, pairs: Sequence[tuple[uuid.UUID, str | None]]
) -> dict[tuple[uuid.UUID, str | None], uuid.UUID]:
    rows = session.execute(
        select(Customer.id, Customer.workspace_id, Customer.email).where(
            pairs_in(Customer.workspace_id, Customer.email, pairs)
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
