"""Slack: PRD-114's milestone alert in the CSM channel, through the Web API.

Slack answers most failures with HTTP 200 and ``{"ok": false, "error": "..."}``, so every
answer is checked here; real HTTP errors (429 with Retry-After, 5xx) are raised by the HTTP
client before that. The alert's buttons come back to ``/slack/interactions/<connection_id>``
with ``value`` = the milestone ids of the alert, comma separated (one, unless combined).

``chat.postMessage`` has no idempotency key either. Each alert carries message metadata with our
key, and :meth:`SlackConnector.find_alert` reads the recent history of the channel it went to.

PRD-114's alert goes to the account's own CSM: the CRM owner's email (``MilestoneAlert.owner_email``)
is matched to a Slack member with ``users.lookupByEmail``, then, by the ``csm_routing`` setting,
mentioned in the channel (``mention``, the default), sent a direct message (``dm``, through
``conversations.open``), or left out (``channel``). When nobody matches, or the lookup or the DM
fails, the alert goes to the channel and the effect's result says why (``fallback``).

A customer who crosses several milestones at once gets one alert (``MilestoneAlert.also``): a
section per milestone, and buttons whose ``value`` lists every milestone id, comma separated.

Escalations (:class:`~connectors.payloads.Escalation`) go to the team lead's channel, the
``escalation_channel`` setting, with their own metadata event type; without that setting the
planner never routes one here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, ClassVar

from marshmallow import fields, validate

from connectors.base import RECONCILE_SKEW, Capability, Connector, SettingsSchema, as_utc
from connectors.errors import ConnectorError
from connectors.payloads import CsmNotice, EffectResult, Escalation, MilestoneAlert, Money

EVENT_TYPE = "customer_milestone"
ESCALATION_EVENT_TYPE = "milestone_escalation"
CHANNEL_ID = r"^[CG][A-Z0-9]{6,}$"
# Errors worth trying again; every other ``error`` (invalid_auth, channel_not_found,
# not_in_channel, account_inactive, invalid_blocks…) fails the same way next time.
# https://docs.slack.dev/reference/methods/chat.postMessage (Errors)
TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "message_limit_exceeded",
        "internal_error",
        "fatal_error",
        "request_timeout",
        "service_unavailable",
        "team_added_to_org",
    }
)
HISTORY_PAGES = 10
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SYMBOLS = {"USD": "$", "CAD": "CA$", "AUD": "A$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}
# PRD-114 §5.1, in its order, with its emoji.
DEFAULT_IDEAS = (
    "Send congratulations email",
    "Social media shoutout (with permission)",
    "Consider milestone gift",
    "Invite to case study participation",
)
IDEA_EMOJI = (
    (("email", "e-mail"), ":email:"),
    (("social", "shoutout", "linkedin", "twitter"), ":bird:"),
    (("gift", "swag"), ":gift:"),
    (("case study", "testimonial", "review"), ":memo:"),
)
BUTTONS = (
    ("Send Celebration Email", "send_celebration_email", None),
    ("Request Social Permission", "request_social_permission", None),
    ("Mark Celebrated", "mark_celebrated", "primary"),
)
MENTION, DM, CHANNEL = "mention", "dm", "channel"
ROUTINGS = (MENTION, DM, CHANNEL)


class SlackSettings(SettingsSchema):
    bot_token = fields.String(
        required=True,
        metadata={"label": "Bot token", "help": "xoxb-…; needs chat:write and channels:history.", "secret": True},
    )
    signing_secret = fields.String(
        required=True,
        metadata={"label": "Signing secret", "help": "Verifies button clicks (X-Slack-Signature).", "secret": True},
    )
    channel = fields.String(
        required=True,
        # An id, not a #name: conversations.history (the check after a crash) only takes ids.
        validate=validate.Regexp(CHANNEL_ID, error="A channel ID such as C0123456789, not a #name."),
        metadata={"label": "CSM channel ID", "help": "e.g. C0123456789 (channel details → About); invite the bot to it."},
    )
    escalation_channel = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(CHANNEL_ID, error="A channel ID such as C0123456789, not a #name."),
        metadata={
            "label": "Team lead channel ID",
            "help": "Escalations go here: exceptional milestones, VIP customers, a recognition that failed for good. "
            "A channel ID such as C0123456789; invite the bot to it. Empty: escalations wait in Operations "
            "as 'no connection'.",
            "enables": "escalation",  # without it, planning does not route escalations to this connection
        },
    )
    csm_routing = fields.String(
        load_default=MENTION,
        validate=validate.OneOf(ROUTINGS),
        metadata={
            "label": "CSM routing",
            "help": "mention: @-mention the account's CSM (its CRM owner, found by email) in the channel; "
            "dm: send the alert to the CSM directly (needs im:write, im:history); channel: the channel only. "
            "Finding the CSM needs users:read.email; without a match the channel gets the alert.",
        },
    )


def mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def day(value: date) -> str:
    return f"{MONTHS[value.month - 1]} {value.day}, {value.year}"  # Jan 29, 2026, whatever the locale


def month(value: date) -> str:
    return f"{MONTHS[value.month - 1]} {value.year}"


def money(value: Money) -> str:
    """$65,000 — cents only when there are some."""
    places = 0 if value.amount == value.amount.to_integral_value() else 2
    number = f"{value.amount:,.{places}f}"
    symbol = SYMBOLS.get(value.currency)
    return f"{symbol}{number}" if symbol else f"{number} {value.currency}"


def health_label(score: int) -> str:
    if score >= 80:
        return "Excellent"
    if score >= 60:
        return "Good"
    if score >= 40:
        return "Fair"
    return "At risk"


def idea_line(number: int, idea: str) -> str:
    if idea.startswith(":"):  # already has its emoji
        return f"{number}. {mrkdwn(idea)}"
    lowered = idea.lower()
    emoji = next((e for words, e in IDEA_EMOJI if any(w in lowered for w in words)), ":sparkles:")
    return f"{number}. {emoji} {mrkdwn(idea)}"


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def detail_lines(detail: str, achieved_on: date, time_to_milestone: str | None) -> str:
    lines = [f"- Milestone: {mrkdwn(detail)}", f"- Achieved: {day(achieved_on)}"]
    if time_to_milestone:
        lines.append(f"- Time to milestone: {mrkdwn(time_to_milestone)}")
    return "\n".join(lines)


def alert_blocks(alert: MilestoneAlert, csm_user_id: str | None = None) -> list[dict[str, Any]]:
    """PRD-114 §5.1 as Block Kit, with a "*CSM:* @someone" line when the CSM is mentioned; a
    combined alert has a section per milestone instead of one "Details". Pure, so the demo can
    print what would be posted."""
    if alert.also:
        details = [section(f"*{mrkdwn(alert.milestone_name)}*\n"
                           + detail_lines(alert.detail, alert.achieved_on, alert.time_to_milestone))]
        details += [
            section(f"*{mrkdwn(m.milestone_name)}*\n" + detail_lines(m.detail, m.achieved_on, m.time_to_milestone))
            for m in alert.also
        ]
    else:
        details = [section("*Details:*\n" + detail_lines(alert.detail, alert.achieved_on, alert.time_to_milestone))]
    context = []
    if alert.customer_since is not None:
        context.append(f"- Customer since: {month(alert.customer_since)}")
    if alert.arr is not None:
        context.append(f"- Current ARR: {money(alert.arr)}")
    if alert.health_score is not None:
        context.append(f"- Health Score: {alert.health_score} ({health_label(alert.health_score)})")
    ideas = alert.celebration_ideas or DEFAULT_IDEAS
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f":trophy: Customer Milestone: {alert.customer_name}"[:150], "emoji": True},
        },
        section(f"*{'Milestones' if alert.also else 'Milestone'} Achieved:* {mrkdwn(alert.headline)}"),
        *([section(f"*CSM:* <@{csm_user_id}>")] if csm_user_id else []),
        *details,
    ]
    if context:
        blocks.append(section("*Customer Context:*\n" + "\n".join(context)))
    blocks.append(section("*Celebration Ideas:*\n" + "\n".join(idea_line(n, i) for n, i in enumerate(ideas, 1))))
    buttons = []
    for label, action_id, style in BUTTONS:
        button: dict[str, Any] = {
            "type": "button",
            "text": {"type": "plain_text", "text": label, "emoji": True},
            "action_id": action_id,
            "value": ",".join(alert.milestone_ids),  # every milestone of the message: a click acts on all
        }
        if style:
            button["style"] = style
        buttons.append(button)
    blocks.append({"type": "actions", "block_id": "milestone_actions", "elements": buttons})
    return blocks


def alert_text(alert: MilestoneAlert, csm_user_id: str | None = None) -> str:
    """The notification and screen-reader fallback for the blocks (a mention here notifies the CSM)."""
    text = f":trophy: Customer Milestone: {mrkdwn(alert.customer_name)} — {mrkdwn(alert.headline)}"
    return f"{text} (CSM: <@{csm_user_id}>)" if csm_user_id else text


def notice_text(notice: CsmNotice, csm_user_id: str | None = None) -> str:
    text = f"{mrkdwn(notice.headline)} — {mrkdwn(notice.customer_name)}"
    return f"{text} (CSM: <@{csm_user_id}>)" if csm_user_id else text


def notice_blocks(notice: CsmNotice, csm_user_id: str | None = None) -> list[dict[str, Any]]:
    """The notice as Block Kit: its headline, the CSM's mention, one line per fact."""
    blocks: list[dict[str, Any]] = [section(f"*{mrkdwn(notice.headline)}* — {mrkdwn(notice.customer_name)}")]
    if csm_user_id:
        blocks.append(section(f"*CSM:* <@{csm_user_id}>"))
    if notice.lines:
        blocks.append(section("\n".join(f"- {mrkdwn(line)}" for line in notice.lines)))
    return blocks


def escalation_blocks(escalation: Escalation) -> list[dict[str, Any]]:
    """The team lead's message: why, which milestones, who, and the next step (with its link)."""
    step = mrkdwn(escalation.next_step)
    if escalation.link:
        step += f" <{escalation.link}|Open in the admin>"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f":rotating_light: Escalation: {escalation.customer_name}"[:150],
                     "emoji": True},
        },
        section("*Why:*\n" + "\n".join(f"- {mrkdwn(r)}" for r in escalation.reasons)),
    ]
    if escalation.milestones:
        title = "Milestones" if len(escalation.milestones) > 1 else "Milestone"
        blocks.append(section(f"*{title}:*\n" + "\n".join(f"- {mrkdwn(m)}" for m in escalation.milestones)))
    who = mrkdwn(escalation.customer_name) + (f" ({mrkdwn(escalation.customer_email)})" if escalation.customer_email else "")
    blocks.append(section(f"*Customer:* {who}" + "".join(f"\n- {mrkdwn(c)}" for c in escalation.customer_context)))
    blocks.append(section(f"*Next step:* {step}"))
    return blocks


def escalation_text(escalation: Escalation) -> str:
    first = escalation.reasons[0] if escalation.reasons else "needs the team lead"
    return f":rotating_light: Escalation: {mrkdwn(escalation.customer_name)} — {mrkdwn(first)}"


class SlackConnector(Connector):
    platform: ClassVar[str] = "slack"
    kind: ClassVar[str] = "chat"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHECK_CONNECTION, Capability.POST_ALERT})
    settings_schema: ClassVar[type[SettingsSchema]] = SlackSettings
    default_base_url: ClassVar[str] = "https://slack.com/api"

    def check_connection(self) -> None:
        # https://docs.slack.dev/reference/methods/auth.test
        self.call("POST", "auth.test")

    def post_alert(self, alert: MilestoneAlert) -> EffectResult:
        """The alert in the CSM channel, mentioning the account's CSM, or in a DM to them."""
        return self._deliver(alert, lambda mention: (alert_text(alert, mention), alert_blocks(alert, mention)))

    def post_notice(self, notice: CsmNotice) -> EffectResult:
        """A plain message about a milestone (revoked, a credit not taken back), routed like the alert."""
        return self._deliver(notice, lambda mention: (notice_text(notice, mention), notice_blocks(notice, mention)))

    def find_notice(self, notice: CsmNotice, since: datetime) -> EffectResult | None:
        return self.find_alert(notice, since)

    def post_escalation(self, escalation: Escalation) -> EffectResult:
        """The escalation in the team lead's channel (the ``escalation_channel`` setting)."""
        # https://docs.slack.dev/reference/methods/chat.postMessage
        posted = self.call(
            "POST",
            "chat.postMessage",
            json={
                "channel": self.setting("escalation_channel"),
                "text": escalation_text(escalation),
                "blocks": escalation_blocks(escalation),
                "metadata": {
                    "event_type": ESCALATION_EVENT_TYPE,
                    "event_payload": {"milestone_id": escalation.milestone_id,
                                      "idempotency_key": escalation.idempotency_key},
                },
                "unfurl_links": False,
                "unfurl_media": False,
            },
        )
        channel, ts = posted["channel"], posted["ts"]
        return EffectResult(external_id=f"{channel}:{ts}", detail={"channel": channel, "ts": ts})

    def find_escalation(self, escalation: Escalation, since: datetime) -> EffectResult | None:
        """The escalation an earlier attempt posted since ``since``, or None."""
        return self._find_in(self.setting("escalation_channel"), escalation, since, ESCALATION_EVENT_TYPE)

    def _deliver(
        self, item: MilestoneAlert | CsmNotice, render: Callable[[str | None], tuple[str, list[dict[str, Any]]]]
    ) -> EffectResult:
        """Post ``render(mention)`` to the CSM channel (mentioning the CSM) or to the CSM's DM."""
        channel = item.channel or self.setting("channel")
        routing = self.settings.get("csm_routing") or MENTION
        csm, fallback = self._csm(item, routing)
        target, mention, routed = channel, csm, (MENTION if csm else CHANNEL)
        if csm and routing == DM:
            try:
                target, mention, routed = self.open_dm(csm), None, DM
            except ConnectorError as exc:
                fallback = f"could not open a DM with the CSM ({exc.message}): mentioned in the channel"
        text, blocks = render(mention)
        # https://docs.slack.dev/reference/methods/chat.postMessage
        # https://docs.slack.dev/messaging/message-metadata
        posted = self.call(
            "POST",
            "chat.postMessage",
            json={
                "channel": target,
                "text": text,
                "blocks": blocks,
                "metadata": {
                    "event_type": EVENT_TYPE,
                    "event_payload": {"milestone_id": item.milestone_id, "idempotency_key": item.idempotency_key},
                },
                "unfurl_links": False,
                "unfurl_media": False,
            },
        )
        channel, ts = posted["channel"], posted["ts"]
        detail: dict[str, Any] = {"channel": channel, "ts": ts}
        if item.owner_email and routing != CHANNEL:
            detail.update(routed=routed, csm_user_id=csm)
            if fallback:
                detail["fallback"] = fallback
        return EffectResult(external_id=f"{channel}:{ts}", detail=detail)

    def _csm(self, alert: MilestoneAlert | CsmNotice, routing: str) -> tuple[str | None, str | None]:
        """The CSM's Slack user id, or None and why the channel gets the alert instead."""
        if routing == CHANNEL or not alert.owner_email:
            return None, None
        try:
            user = self.lookup_user_by_email(alert.owner_email)
        except ConnectorError as exc:
            return None, f"users.lookupByEmail failed ({exc.message}): posted in the channel"
        if user is None:
            return None, f"no Slack member has the CRM owner's email {alert.owner_email}: posted in the channel"
        return user, None

    def open_dm(self, user_id: str) -> str:
        """The id of the direct-message channel with this member (the same one every time)."""
        # https://docs.slack.dev/reference/methods/conversations.open (scope im:write)
        answer = self.call("POST", "conversations.open", json={"users": user_id})
        channel = answer.get("channel") or {}
        if not channel.get("id"):
            raise ConnectorError("slack conversations.open: no channel in the answer", permanent=True)
        return str(channel["id"])

    def find_alert(self, alert: MilestoneAlert | CsmNotice, since: datetime) -> EffectResult | None:
        """The message an earlier attempt posted for this alert since ``since``, or None: in the CSM's
        DM when alerts go there (unless that attempt fell back to the channel), then in the channel."""
        channels = []
        if (self.settings.get("csm_routing") or MENTION) == DM and alert.owner_email:
            try:
                user = self.lookup_user_by_email(alert.owner_email)
                if user is not None:
                    channels.append(self.open_dm(user))
            except ConnectorError as exc:
                if not exc.permanent:
                    raise  # cannot tell where it went yet: look again later rather than post twice
        channels.append(alert.channel or self.setting("channel"))
        for channel in channels:
            found = self._find_in(channel, alert, since)
            if found is not None:
                return found
        return None

    def _find_in(
        self, channel: str, alert: MilestoneAlert | CsmNotice | Escalation, since: datetime, event_type: str = EVENT_TYPE
    ) -> EffectResult | None:
        oldest = as_utc(since) - RECONCILE_SKEW
        params: dict[str, Any] = {
            "channel": channel,
            "oldest": f"{oldest.timestamp():.6f}",
            "include_all_metadata": "true",
            "limit": 200,
        }
        # https://docs.slack.dev/reference/methods/conversations.history
        for _ in range(HISTORY_PAGES):
            page = self.call("GET", "conversations.history", params=params)
            for message in page.get("messages", []):
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == event_type and payload.get("idempotency_key") == alert.idempotency_key:
                    return EffectResult(
                        external_id=f"{channel}:{message['ts']}",
                        detail={"channel": channel, "ts": message["ts"], "reconciled": True},
                    )
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                return None
            params["cursor"] = cursor
        return None

    def update_message(self, channel: str, ts: str, blocks: list[dict[str, Any]], text: str) -> EffectResult:
        """Replace a message we posted (the alert, once a button was clicked)."""
        # https://docs.slack.dev/reference/methods/chat.update
        answer = self.call("POST", "chat.update", json={"channel": channel, "ts": ts, "blocks": blocks, "text": text})
        channel, ts = answer.get("channel", channel), answer.get("ts", ts)
        return EffectResult(external_id=f"{channel}:{ts}", detail={"channel": channel, "ts": ts})

    def lookup_user_by_email(self, email: str) -> str | None:
        """The Slack user id of the member with this email (needs users:read.email), or None."""
        # https://docs.slack.dev/reference/methods/users.lookupByEmail
        try:
            answer = self.call("GET", "users.lookupByEmail", params={"email": email})
        except ConnectorError as exc:
            if exc.permanent and exc.message.startswith("slack users.lookupByEmail: users_not_found"):
                return None
            raise
        user = answer.get("user") or {}
        return str(user["id"]) if user.get("id") else None

    def call(self, http_method: str, api_method: str, **kwargs: Any) -> dict[str, Any]:
        """One Web API call; ``ok: false`` becomes a ConnectorError, transient or permanent."""
        headers = {"Authorization": f"Bearer {self.setting('bot_token')}"}
        if "json" in kwargs:
            headers["Content-Type"] = "application/json; charset=utf-8"
        answer = self.http.json(http_method, f"{self.base_url}/{api_method}", headers=headers, **kwargs)
        if not isinstance(answer, dict):
            raise ConnectorError(f"slack: unexpected answer from {api_method}")
        if answer.get("ok"):
            return answer
        error = str(answer.get("error") or "unknown_error")
        hints = "; ".join((answer.get("response_metadata") or {}).get("messages") or [])
        message = f"slack {api_method}: {error}" + (f" ({hints})" if hints else "")
        raise ConnectorError(message, permanent=error not in TRANSIENT_ERRORS)
