"""One message, not three: the milestones one customer crosses at once are celebrated together.

RHF's quiet rule: "several milestones crossed at once by one customer produce one combined
message". A *group* is the milestones one customer crossed at the same moment — one order past
several thresholds, one usage reading, one scan day's anniversaries — or on the same occasion
(``Crossing.occasion``: a backfill pass celebrating a customer's history), among those one
``award()`` call records, in the order they were crossed, at most :data:`MAX_COVERED` per
message. Grouping by moment, not by inbox batch, keeps the messages the same however deliveries
happen to be batched: two orders a week apart stay two messages, even when a worker catches up
on both at once. The members of one award share ``created_at`` (award stamps them with one clock
reading): that is how any member finds the message that covers it.

The planner first plans every milestone on its own, so routing, review holds, opt-outs, the
holdout and the money rules apply exactly as before. Then, within a group, the message effects
(:data:`MESSAGE_KINDS`: Slack alert, CRM note, celebration email) that will be sent (``pending``)
the same way — same kind and connection, and for an alert the same channel — become one effect:

* ``milestone_id`` is its first covered milestone and ``payload["covers"]`` lists them all, so
  the feed, the dashboard and the Slack buttons reach every one (:func:`covered_by`,
  :func:`has_recognition`, :func:`effects_of`);
* its idempotency key is made from the sorted covered ids;
* the alert has a section per milestone and buttons that act on all of them, the note lists
  each milestone, and the email is written when it is sent, with every covered milestone and
  the rewards each one actually got (:mod:`plugin.celebrations.context`).

Money, tags and tasks stay per milestone. A message that is not sent now — held for review,
cancelled by an opt-out or the holdout, or with no connected platform to send it — stays with its
own milestone, saying why: approving a milestone releases only its own effects.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import Boolean

from plugin.milestones import wording
from plugin.models import CustomerMilestone, Effect
from plugin.models import effect as status

if TYPE_CHECKING:
    from plugin.milestones.award import Crossing

MESSAGE_KINDS = frozenset({"slack_alert", "crm_note", "email"})
INTERNAL_KINDS = frozenset({"escalation"})  # effects for the team, not a recognition of the milestone
# A Slack button's value holds every id of its message (2,000 characters at most), and a
# message has at most 50 blocks: 40 milestones fit both.
MAX_COVERED = 40
COVERS = "covers"

Awarded = Sequence[tuple[dict[str, Any], "Crossing"]]


def groups(awarded: Awarded) -> list[list[uuid.UUID]]:
    """The milestone ids of each group (a customer's crossings of one moment or occasion), in
    the order they were crossed."""
    found: dict[tuple[uuid.UUID, Any], list[uuid.UUID]] = defaultdict(list)
    for milestone, crossing in awarded:
        found[(crossing.customer_id, crossing.occasion or crossing.achieved_at)].append(milestone["id"])
    return [ids[i : i + MAX_COVERED] for ids in found.values() for i in range(0, len(ids), MAX_COVERED)]


def message_key(kind: str, milestone_ids: Iterable[uuid.UUID | str], variant: str = "") -> str:
    """The idempotency key of a combined message: the kind and a digest of the sorted ids."""
    digest = hashlib.sha256("|".join(sorted(str(i) for i in milestone_ids)).encode()).hexdigest()[:40]
    return f"combined:{kind}{':' + variant if variant else ''}:{digest}"


def combine(rows: list[dict[str, Any]], awarded: Awarded) -> list[dict[str, Any]]:
    """``rows`` with each group's like message effects merged into one (see the module doc)."""
    member_of: dict[uuid.UUID, int] = {}
    for number, group in enumerate(groups(awarded)):
        if len(group) > 1:
            member_of.update((milestone_id, number) for milestone_id in group)
    if not member_of:
        return rows
    buckets: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    seen: dict[tuple[uuid.UUID, str], int] = defaultdict(int)
    placed: dict[int, tuple[Any, ...]] = {}
    for position, row in enumerate(rows):
        kind, milestone_id = row["kind"], row["milestone_id"]
        if kind not in MESSAGE_KINDS or milestone_id not in member_of:
            continue
        nth = seen[(milestone_id, kind)]
        seen[(milestone_id, kind)] += 1
        if row["status"] != status.PENDING:
            continue
        channel = ((row.get("payload") or {}).get("action") or {}).get("channel") or ""
        key = (member_of[milestone_id], kind, nth, channel, row["connection_id"])
        buckets[key].append(row)
        placed[position] = key
    merged = {key: _merge(found, key[2], key[3]) for key, found in buckets.items() if len(found) > 1}
    out: list[dict[str, Any]] = []
    for position, row in enumerate(rows):
        bucket = placed.get(position)
        if bucket is None or bucket not in merged:
            out.append(row)
        elif buckets[bucket][0] is row:
            out.append(merged[bucket])
    return out


def _merge(rows: list[dict[str, Any]], nth: int, channel: str) -> dict[str, Any]:
    first = rows[0]
    ids = [row["milestone_id"] for row in rows]
    variant = ":".join(part for part in (str(nth) if nth else "", channel) if part)
    key = message_key(first["kind"], ids, variant)
    payload: dict[str, Any] = {**first["payload"], COVERS: [str(i) for i in ids]}
    requests = [(row.get("payload") or {}).get("request") for row in rows]
    if all(requests):
        payload["request"] = _merge_requests(first["kind"], key, [r for r in requests if r])
    return {**first, "idempotency_key": key, "payload": payload}


def _merge_requests(kind: str, key: str, requests: list[dict[str, Any]]) -> dict[str, Any]:
    first = requests[0]
    if kind == "slack_alert":
        names = [str(r["milestone_name"]) for r in requests]
        also = [
            {field: r.get(field) for field in ("milestone_id", "milestone_name", "detail", "achieved_on",
                                               "time_to_milestone")}
            for r in requests[1:]
        ]
        return {**first, "idempotency_key": key, "headline": f"{wording.joined(names)}!", "also": also}
    if kind == "crm_note":
        return {
            **first,
            "idempotency_key": key,
            "body_html": "".join(str(r["body_html"]) for r in requests),
            "occurred_at": max((str(r["occurred_at"]) for r in requests), key=datetime.fromisoformat),
        }
    return {**first, "idempotency_key": key}


# --- which milestones an effect is about --------------------------------------------------------


def covered_by(milestone_id: uuid.UUID, payload: dict[str, Any] | None) -> list[uuid.UUID]:
    """The milestones an effect is about: those its payload covers, else its own."""
    covers = (payload or {}).get(COVERS)
    if not covers:
        return [milestone_id]
    found = []
    for value in covers:
        try:
            found.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return found or [milestone_id]


class _covers(FunctionElement[bool]):
    """SQL: whether ``effects.payload["covers"]`` lists a milestone id."""

    type = Boolean()
    inherit_cache = True
    name = "covers"


@compiles(_covers, "postgresql")
def _covers_postgresql(element: _covers, compiler: Any, **kw: Any) -> str:
    payload, milestone_id = list(element.clauses)
    # jsonb: an array contains a string when that string is one of its elements.
    return (f"(({compiler.process(payload, **kw)} -> 'covers') @> "
            f"to_jsonb(CAST({compiler.process(milestone_id, **kw)} AS TEXT)))")


@compiles(_covers)
def _covers_other(element: _covers, compiler: Any, **kw: Any) -> str:
    payload, milestone_id = list(element.clauses)
    # SQLite keeps a UUID as 32 hex digits; the payload has them with dashes.
    return (f"EXISTS (SELECT 1 FROM json_each({compiler.process(payload, **kw)}, '$.covers') AS c "
            f"WHERE replace(c.value, '-', '') = {compiler.process(milestone_id, **kw)})")


def has_recognition(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """SQL, correlated to :class:`CustomerMilestone`: whether the milestone has a recognition
    effect meeting ``conditions`` — one of its own, or a combined message of its group that
    covers it. Escalations to the team lead are not recognitions. Both branches use indexes
    (effects by milestone, milestones by customer)."""
    sibling = aliased(CustomerMilestone)
    conditions = (*conditions, Effect.kind.not_in(INTERNAL_KINDS))
    own = exists().where(Effect.milestone_id == CustomerMilestone.id, *conditions)
    shared = exists().where(
        sibling.customer_id == CustomerMilestone.customer_id,
        sibling.created_at == CustomerMilestone.created_at,
        sibling.id != CustomerMilestone.id,
        Effect.milestone_id == sibling.id,
        _covers(Effect.payload, CustomerMilestone.id),
        *conditions,
    )
    return or_(own, shared)


def effects_of(session: Session, milestones: Sequence[CustomerMilestone]) -> dict[uuid.UUID, list[Effect]]:
    """Each milestone's effects, its own and the combined messages that cover it, by id: the
    effects of every milestone of the same passes, kept where they belong."""
    found: dict[uuid.UUID, list[Effect]] = defaultdict(list)
    if not milestones:
        return found
    wanted = {m.id for m in milestones}
    passes = {(m.customer_id, m.created_at) for m in milestones}
    same_pass = select(CustomerMilestone.id).where(
        or_(*(and_(CustomerMilestone.customer_id == customer_id, CustomerMilestone.created_at == created_at)
              for customer_id, created_at in passes))
    )
    for effect in session.execute(select(Effect).where(Effect.milestone_id.in_(same_pass)).order_by(Effect.id)).scalars():
        for milestone_id in covered_by(effect.milestone_id, effect.payload):
            if milestone_id in wanted:
                found[milestone_id].append(effect)
    return found


def recognitions(session: Session, *where: ColumnElement[bool]) -> dict[uuid.UUID, list[tuple[str, str, dict[str, Any]]]]:
    """``(kind, status, payload)`` of the recognition effects of each milestone matching
    ``where`` (conditions on :class:`CustomerMilestone`): its own, then the combined messages of
    its group that cover it; escalations left out. Two set-based queries, whatever the count."""
    found: dict[uuid.UUID, list[tuple[str, str, dict[str, Any]]]] = defaultdict(list)
    recognition = Effect.kind.not_in(INTERNAL_KINDS)
    columns = (Effect.kind, Effect.status, Effect.payload)
    own = (select(Effect.milestone_id, *columns).join(CustomerMilestone, CustomerMilestone.id == Effect.milestone_id)
           .where(*where, recognition))
    sibling = aliased(CustomerMilestone)
    shared = (
        select(CustomerMilestone.id, *columns)
        .join(sibling, and_(sibling.customer_id == CustomerMilestone.customer_id,
                            sibling.created_at == CustomerMilestone.created_at, sibling.id != CustomerMilestone.id))
        .join(Effect, Effect.milestone_id == sibling.id)
        .where(*where, recognition, _covers(Effect.payload, CustomerMilestone.id))
    )
    for query in (own, shared):
        for milestone_id, kind, state, payload in session.execute(query).tuples():
            found[milestone_id].append((kind, state, payload or {}))
    return found
