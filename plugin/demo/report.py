"""What the demo did, read back from the database and the stand-ins, and printed for a person.

:func:`collect` gathers plain facts (so tests can check them); :func:`render` turns them into text.
"""

from __future__ import annotations

import html
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from connectors.hubspot import note_marker, visible_text
from connectors.hubspot_email import SEND_PATH
from connectors.registry import platforms_with
from plugin.demo.replay import ReplayResult
from plugin.demo.standins import HUBSPOT, OPERATION, SHOPIFY, SLACK, StandIns
from plugin.milestones.planning import KINDS
from plugin.milestones.wording import format_money
from plugin.models import Customer, CustomerMetric, CustomerMilestone, Effect, MilestoneDefinition, Order
from plugin.models import effect as effect_status

HUBSPOT_CALLS = {
    ("POST", "/crm/v3/objects/contacts/search"): "contact searches",
    ("POST", "/crm/v3/objects/contacts"): "contacts created",
    ("POST", "/crm/v3/objects/notes"): "timeline notes created",
    ("POST", SEND_PATH): "transactional emails sent",
}
# The sample email is the one RHF's seed gets wrong (its text promises a $5 credit nobody gives).
EMAIL_SHOWCASE = ("order-10-thank-you", "first-order-welcome", "thank-you-note")
# The sample alert and note show the grandest milestone the demo reached.
SHOWCASE = ("order-100", "spend-5000", "order-50", "spend-2500", "order-25", "spend-1000", "order-10", "order-1")


@dataclass(frozen=True)
class MilestoneRow:
    key: str
    name: str
    type: str
    count: int
    waiting_for_review: int


@dataclass
class DemoReport:
    customers: int
    orders_in_ledger: int
    orders_counted: int
    milestones: list[MilestoneRow]
    effects: Counter[tuple[str, str]]  # (kind, status) -> count
    task_titles: Counter[str]
    credit_total: Decimal
    credit_currency: str
    credits_by_amount: Counter[Decimal]
    calls: Counter[str]  # what the stand-ins were asked, by label
    slack_posts: int
    slack_sample: str | None
    note_sample_html: str | None
    email_sample: tuple[str, str, str] | None  # (template, subject, text)
    busiest_email: str | None
    replay: ReplayResult
    swept: dict[str, int]
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def milestone_total(self) -> int:
        return sum(row.count for row in self.milestones)

    def effects_with(self, status: str) -> Counter[str]:
        return Counter({kind: n for (kind, s), n in self.effects.items() if s == status})


def collect(
    session: Session, workspace_id: uuid.UUID, standins: StandIns, replay: ReplayResult, swept: dict[str, int], currency: str
) -> DemoReport:
    def scalar(query: Any) -> int:
        return int(session.scalar(query) or 0)

    customers = scalar(select(func.count()).select_from(Customer).where(Customer.workspace_id == workspace_id))
    in_ledger = scalar(
        select(func.count()).select_from(Order).where(Order.workspace_id == workspace_id, Order.has_snapshot.is_(True))
    )
    counted = scalar(select(func.count()).select_from(Order).where(Order.workspace_id == workspace_id, Order.counted.is_(True)))
    milestones = [
        MilestoneRow(r.key, r.name, r.type, int(r.found), int(r.review or 0))
        for r in session.execute(
            select(
                MilestoneDefinition.key,
                MilestoneDefinition.name,
                MilestoneDefinition.type,
                func.count(CustomerMilestone.id).label("found"),
                func.sum(case((CustomerMilestone.status == "pending_review", 1), else_=0)).label("review"),
            )
            .outerjoin(CustomerMilestone, CustomerMilestone.definition_id == MilestoneDefinition.id)
            .where(MilestoneDefinition.workspace_id == workspace_id)
            .group_by(MilestoneDefinition.id, MilestoneDefinition.key, MilestoneDefinition.name,
                      MilestoneDefinition.type, MilestoneDefinition.sort_order)
            .order_by(MilestoneDefinition.sort_order)
        )
    ]
    effects: Counter[tuple[str, str]] = Counter()
    for kind, status, n in session.execute(
        select(Effect.kind, Effect.status, func.count()).where(Effect.workspace_id == workspace_id).group_by(Effect.kind, Effect.status)
    ):
        effects[(kind, status)] = int(n)
    titles: Counter[str] = Counter(
        str((payload or {}).get("title"))
        for payload in session.execute(
            select(Effect.payload).where(Effect.workspace_id == workspace_id, Effect.status == effect_status.OPEN_TASK)
        ).scalars()
    )
    credits: Counter[Decimal] = Counter()
    credit_currency = currency
    for payload in session.execute(
        select(Effect.payload).where(
            Effect.workspace_id == workspace_id, Effect.kind == "store_credit", Effect.status == effect_status.SUCCEEDED
        )
    ).scalars():
        amount = payload["request"]["amount"]
        credits[Decimal(amount["amount"])] += 1
        credit_currency = amount["currency"]
    showcase = _showcase_milestone(session, workspace_id)
    busiest = session.execute(
        select(Customer.email)
        .join(CustomerMetric, CustomerMetric.customer_id == Customer.id)
        .where(Customer.workspace_id == workspace_id, CustomerMetric.metric == "order_count")
        .order_by(CustomerMetric.value.desc(), Customer.email)
        .limit(1)
    ).scalar()
    slack_posts = standins.recorded(SLACK, "/chat.postMessage")
    return DemoReport(
        customers=customers,
        orders_in_ledger=in_ledger,
        orders_counted=counted,
        milestones=milestones,
        effects=effects,
        task_titles=titles,
        credit_total=sum((amount * n for amount, n in credits.items()), Decimal("0")),
        credit_currency=credit_currency,
        credits_by_amount=credits,
        calls=_calls(standins),
        slack_posts=len(slack_posts),
        slack_sample=_slack_sample(slack_posts, showcase),
        note_sample_html=_note_sample(standins, showcase),
        email_sample=_email_sample(standins),
        busiest_email=busiest,
        replay=replay,
        swept=swept,
    )


def _showcase_milestone(session: Session, workspace_id: uuid.UUID) -> str | None:
    """The id of a milestone of the grandest definition whose Slack alert went out."""
    rows = session.execute(
        select(MilestoneDefinition.key, CustomerMilestone.id)
        .join(CustomerMilestone, CustomerMilestone.definition_id == MilestoneDefinition.id)
        .join(Effect, Effect.milestone_id == CustomerMilestone.id)
        .where(
            MilestoneDefinition.workspace_id == workspace_id,
            Effect.kind == "slack_alert",
            Effect.status == effect_status.SUCCEEDED,
        )
        .order_by(CustomerMilestone.achieved_at)
    ).all()
    first_of: dict[str, str] = {}
    for key, milestone_id in rows:
        first_of.setdefault(key, str(milestone_id))
    return next((first_of[key] for key in SHOWCASE if key in first_of), next(iter(first_of.values()), None))


def _calls(standins: StandIns) -> Counter[str]:
    calls: Counter[str] = Counter()
    for request in standins.recorded():
        if request.service == SHOPIFY:
            named = OPERATION.search(str((request.body or {}).get("query") or ""))
            calls[f"Shopify {named.group(1) if named else 'GraphQL'}"] += 1
        elif request.service == HUBSPOT:
            path = request.path.removeprefix("/hubspot")
            calls[f"HubSpot {HUBSPOT_CALLS.get((request.method, path), f'{request.method} {path}')}"] += 1
        else:
            calls[f"Slack {request.path.rsplit('/', 1)[-1]}"] += 1
    return calls


def _slack_sample(posts: list[Any], milestone_id: str | None) -> str | None:
    chosen = next(
        (p for p in posts if ((p.body or {}).get("metadata") or {}).get("event_payload", {}).get("milestone_id") == milestone_id),
        posts[0] if posts else None,
    )
    return slack_as_text(chosen.body["blocks"]) if chosen is not None else None


def slack_as_text(blocks: list[dict[str, Any]]) -> str:
    """Block Kit as the plain text a person reads in the channel (PRD-114 §5.1's layout)."""
    parts = []
    for block in blocks:
        if block.get("type") == "header":
            parts.append(block["text"]["text"])
        elif block.get("type") == "section":
            text = re.sub(r"\*([^*\n]+)\*", r"\1", block["text"]["text"])
            parts.append(html.unescape(text))
        elif block.get("type") == "actions":
            parts.append(" ".join(f"[{e['text']['text']}]" for e in block.get("elements", [])))
    return "\n\n".join(parts)


def _note_sample(standins: StandIns, milestone_id: str | None) -> str | None:
    notes = [str(((r.body or {}).get("properties") or {}).get("hs_note_body")) for r in standins.recorded(HUBSPOT, "/objects/notes")]
    marker = note_marker(milestone_id) if milestone_id else None
    return next((n for n in notes if marker and marker in n), notes[0] if notes else None)


def _email_sample(standins: StandIns) -> tuple[str, str, str] | None:
    sent = [dict((r.body or {}).get("customProperties") or {}) for r in standins.recorded(HUBSPOT, SEND_PATH)]
    rank = {key: n for n, key in enumerate(EMAIL_SHOWCASE)}
    sent.sort(key=lambda p: rank.get(str(p.get("template")), len(rank)))
    if not sent:
        return None
    first = sent[0]
    return str(first.get("template")), str(first.get("subject")), str(first.get("message_text"))


def why_no_connection(kind: str) -> str:
    """Plainly: no connector can do this kind yet, or which platforms could if connected."""
    spec = KINDS.get(kind)
    if spec is None or spec.capability is None:
        return f"{kind}: no platform performs it"
    able = platforms_with(spec.capability)
    if not able:
        return f"{kind}: no connector can {spec.capability.value.replace('_', ' ')} yet"
    return f"{kind}: possible with {', '.join(sorted(able))}, none connected for this customer here"


# -- rendering ---------------------------------------------------------------------------------

EXPLAIN = {
    effect_status.SUCCEEDED: "done through the connectors (stand-ins)",
    effect_status.OPEN_TASK: "tasks for people, done by hand in the admin",
    effect_status.HELD: "rewards held until an admin approves the milestone",
    effect_status.NO_CONNECTION: "no connected platform can do these yet",
    effect_status.PENDING: "still waiting (should be none)",
    effect_status.IN_FLIGHT: "stuck in flight (should be none)",
    effect_status.DEAD: "failed for good (should be none)",
}


def _n(value: int) -> str:
    return f"{value:,}"


def render(report: DemoReport) -> str:
    sections = (_happened(report), _milestones(report), _effects(report), _calls_made(report), _samples(report))
    return "\n".join(line for section in sections for line in section) + "\n"


def _happened(report: DemoReport) -> list[str]:
    replay = report.replay
    left = sum(report.effects_with(s).total() for s in (effect_status.PENDING, effect_status.IN_FLIGHT))
    return [
        "",
        "What happened",
        "-------------",
        f"Deliveries  {_n(replay.sent)} signed webhooks in {replay.seconds:.1f} s "
        f"({replay.sent / max(replay.seconds, 1e-9):.0f}/s): "
        + ", ".join(f"{topic} {_n(n)}" for topic, n in sorted(replay.by_topic.items())),
        f"            accepted {_n(replay.accepted)} · duplicates ignored {_n(replay.duplicates)} "
        f"(re-sent on purpose {_n(replay.resent_on_purpose)}) · orders delivered out of order {_n(replay.out_of_order)}"
        f" · rejected {_n(replay.rejected)}",
        f"Sweeper     found inbox {report.swept.get('inbox', 0)}, effects {report.swept.get('effects', 0)} waiting; "
        + ("nothing is left to run" if not left else f"{_n(left)} effects are still waiting (see below)"),
        f"Customers   {_n(report.customers)}",
        f"Orders      {_n(report.orders_counted)} counted of {_n(report.orders_in_ledger)} in the ledger "
        "(cancelled and fully refunded orders do not count)",
    ]


def _milestones(report: DemoReport) -> list[str]:
    lines = ["", f"Milestones found: {_n(report.milestone_total)}", f"  {'key':<16}{'name':<22}{'count':>7}   note"]
    for row in report.milestones:
        if row.count == 0 and row.type not in ("order", "spend", "time"):
            continue
        note = f"{row.waiting_for_review} wait for review" if row.waiting_for_review else ""
        if row.type == "time" and row.count == 0:
            note = "from the daily scan, not from webhooks"
        lines.append(f"  {row.key:<16}{row.name:<22}{_n(row.count):>7}   {note}".rstrip())
    lines.append("  (PRD-114's usage, adoption and ROI milestones need usage or CRM data; a store sends none.)")
    if any(row.waiting_for_review for row in report.milestones):
        lines.append("  RHF reviews 100th orders and $5,000+ customers personally: those milestones wait in the")
        lines.append("  admin's review queue, and their rewards are held until someone approves them.")
    credits = ", ".join(
        f"{_n(n)} × {format_money(amount, report.credit_currency)}" for amount, n in sorted(report.credits_by_amount.items())
    )
    lines += ["", f"Store credit applied: {report.credit_total:,.2f} {report.credit_currency}"
              + (f"  ({credits})" if credits else "")]
    return lines


def _effects(report: DemoReport) -> list[str]:
    lines = ["", "Effects by status"]
    for status in (effect_status.SUCCEEDED, effect_status.OPEN_TASK, effect_status.HELD, effect_status.NO_CONNECTION,
                   effect_status.PENDING, effect_status.IN_FLIGHT, effect_status.DEAD):
        kinds = report.effects_with(status)
        if not kinds and status not in (effect_status.HELD, effect_status.SUCCEEDED):
            continue
        if status == effect_status.OPEN_TASK:
            detail = "; ".join(f"{title} ×{n}" for title, n in sorted(report.task_titles.items()))
        else:
            detail = ", ".join(f"{kind} {_n(n)}" for kind, n in sorted(kinds.items()))
        lines.append(f"  {status:<14}{_n(kinds.total()):>7}   {EXPLAIN.get(status, '')}" + (f": {detail}" if detail else ""))
    unsupported = report.effects_with(effect_status.NO_CONNECTION)
    if unsupported:
        lines.append("  Effects nobody can perform are kept as no_connection (visible in the admin, never dropped):")
        lines += [f"    {why_no_connection(kind)}" for kind in sorted(unsupported)]
    return lines


def _calls_made(report: DemoReport) -> list[str]:
    return ["", "What the stand-ins were asked"] + [f"  {label:<36}{_n(n):>7}" for label, n in sorted(report.calls.items())]


def _samples(report: DemoReport) -> list[str]:
    lines: list[str] = []
    if report.slack_sample:
        lines += ["", "A Slack alert as posted to #csm-celebrations (C0CSMCELEB)", ""]
        lines += ["    " + line if line else "" for line in report.slack_sample.splitlines()]
    if report.email_sample:
        template, subject, text = report.email_sample
        lines += ["", f"A celebration email as sent through HubSpot (template {template}, written from the rewards given)",
                  "", f"    Subject: {subject}", ""]
        lines += ["    " + line if line.strip() else "" for line in text.strip().splitlines()]
    if report.note_sample_html:
        lines += ["", "A HubSpot note as created on the contact's timeline", "",
                  "    " + visible_text(report.note_sample_html), "", "    HTML: " + report.note_sample_html]
    return lines
