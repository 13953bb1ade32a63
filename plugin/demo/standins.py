"""Local stand-ins for Shopify Admin GraphQL, HubSpot (CRM v3, transactional email) and Slack's Web API.

The demo points each connection's ``base_url`` here, so the real connectors make real HTTP
calls and parse real answers, and nothing leaves the machine. Every request is recorded (path
and JSON body) for the report. The answers carry exactly the fields the connectors read, in the
shapes of the platforms' documentation; the stand-ins keep just enough state (HubSpot contacts,
store-credit balances, tags, discount codes, webhook subscriptions, posted Slack messages) for
the connectors' lookups to answer truthfully.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

SHOPIFY, HUBSPOT, SLACK = "shopify", "hubspot", "slack"
SLACK_CHANNEL_ID = "C0RHFCELEB"
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{8,}")
OPERATION = re.compile(r"^\s*(?:query|mutation)\s+(\w+)")


@dataclass(frozen=True)
class RecordedRequest:
    service: str
    method: str
    path: str
    body: Any


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _State:
    ids: itertools.count = field(default_factory=lambda: itertools.count(1001))
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # email -> contact
    notes: list[dict[str, Any]] = field(default_factory=list)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # customer gid -> account
    tags: dict[str, set[str]] = field(default_factory=dict)  # customer gid -> tags
    discounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # CODE -> discount node
    sends: set[str] = field(default_factory=set)  # HubSpot single-send sendIds
    messages: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)  # Shopify webhook subscriptions


class StandIns:
    """The WSGI app of all three stand-ins, and what they were asked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recorded: list[RecordedRequest] = []
        self._state = _State()
        self._routes = Map(
            [
                Rule("/shopify/admin/api/<version>/graphql.json", endpoint="shopify_graphql", methods=["POST"]),
                Rule("/hubspot/crm/v3/objects/contacts/search", endpoint="hubspot_contact_search", methods=["POST"]),
                Rule("/hubspot/crm/v3/objects/contacts", endpoint="hubspot_contact_create", methods=["POST"]),
                Rule("/hubspot/crm/v3/objects/contacts", endpoint="hubspot_contact_list", methods=["GET"]),
                Rule("/hubspot/crm/v3/objects/contacts/<contact>", endpoint="hubspot_contact_read", methods=["GET"]),
                Rule("/hubspot/crm/v3/objects/notes", endpoint="hubspot_note_create", methods=["POST"]),
                Rule("/hubspot/crm/v3/objects/notes/search", endpoint="hubspot_note_search", methods=["POST"]),
                Rule("/hubspot/marketing/v3/transactional/single-email/send", endpoint="hubspot_single_send",
                     methods=["POST"]),
                Rule("/slack/api/<api_method>", endpoint="slack", methods=["GET", "POST"]),
            ]
        )

    # -- what was asked ------------------------------------------------------------------------
    def recorded(self, service: str | None = None, path_suffix: str = "") -> list[RecordedRequest]:
        with self._lock:
            found = list(self._recorded)
        return [r for r in found if (service is None or r.service == service) and r.path.endswith(path_suffix)]

    def store_credits(self) -> list[RecordedRequest]:
        """The ``storeCreditAccountCredit`` mutations Shopify was sent."""
        return [r for r in self.recorded(SHOPIFY) if _operation(r.body) == "storeCreditAccountCredit"]

    # -- WSGI ----------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = self._dispatch(request)
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        adapter = self._routes.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except HTTPException as exc:  # NotFound, MethodNotAllowed: answer like an unknown API path
            return _json({"message": f"no stand-in for {request.method} {request.path}"}, exc.code or 404)
        body = request.get_json(silent=True) if request.method == "POST" else None
        service = request.path.split("/", 2)[1]
        with self._lock:
            self._recorded.append(RecordedRequest(service, request.method, request.path, body))
            if service == HUBSPOT and not request.headers.get("Authorization", "").startswith("Bearer "):
                return _json({"status": "error", "category": "INVALID_AUTHENTICATION"}, 401)
            if service == SHOPIFY and not request.headers.get("X-Shopify-Access-Token"):
                return _json({"errors": "[API] Invalid API key or access token"}, 401)
            handler = getattr(self, f"_{endpoint}")
            return handler(request, body or {}, **args)

    # -- Shopify Admin GraphQL -----------------------------------------------------------------
    def _shopify_graphql(self, request: Request, body: dict[str, Any], version: str) -> Response:
        variables = body.get("variables") or {}
        operation = _operation(body)
        if operation == "storeCreditAccountCredit":
            return _json({"data": {"storeCreditAccountCredit": self._credit(variables)}})
        if operation == "recentStoreCredits":
            account = self._state.accounts.get(str(variables.get("customerId")))
            nodes = [account] if account else []
            return _json({"data": {"customer": {"id": variables.get("customerId"), "storeCreditAccounts": {"nodes": nodes}}}})
        if operation == "tagsAdd":
            owner = str(variables.get("id"))
            self._state.tags.setdefault(owner, set()).update(str(t) for t in variables.get("tags") or [])
            return _json({"data": {"tagsAdd": {"node": {"id": owner}, "userErrors": []}}})
        if operation == "discountCodeBasicCreate":
            return _json({"data": {"discountCodeBasicCreate": self._discount(variables.get("basicCodeDiscount") or {})}})
        if operation == "codeDiscountNodeByCode":
            node = self._state.discounts.get(str(variables.get("code") or "").upper())
            return _json({"data": {"codeDiscountNodeByCode": node}})
        if operation == "shopName":
            return _json({"data": {"shop": {"name": "Red Hill Fresh"}}})
        if operation == "webhookSubscriptions":
            nodes = [self._subscription_node(s, version) for s in self._state.subscriptions]
            return _json({"data": {"webhookSubscriptions": {"nodes": nodes,
                                                            "pageInfo": {"hasNextPage": False, "endCursor": None}}}})
        if operation == "webhookSubscriptionCreate":
            return _json({"data": {"webhookSubscriptionCreate": self._subscribe(variables, version)}})
        return _json({"errors": [{"message": f"the stand-in does not answer {operation or 'this query'}",
                                  "extensions": {"code": "UNSUPPORTED_BY_STAND_IN"}}]})

    def _subscribe(self, variables: dict[str, Any], version: str) -> dict[str, Any]:
        """``webhookSubscriptionCreate``: the address is ``uri`` from 2025-10, ``callbackUrl`` before;
        the same topic to the same address twice is refused as Shopify refuses it."""
        given = variables.get("webhookSubscription") or {}
        address = str(given.get("uri") or given.get("callbackUrl") or "")
        topic = str(variables.get("topic") or "")
        if not address or not topic:
            return {"webhookSubscription": None, "userErrors": [
                {"field": ["webhookSubscription", "callbackUrl"], "message": "Address can't be blank"}]}
        if any(s["topic"] == topic and s["address"] == address for s in self._state.subscriptions):
            return {"webhookSubscription": None, "userErrors": [
                {"field": ["webhookSubscription", "callbackUrl"], "message": "Address for this topic has already been taken"}]}
        subscription = {"id": f"gid://shopify/WebhookSubscription/{next(self._state.ids)}", "topic": topic,
                        "address": address, "format": str(given.get("format") or "JSON")}
        self._state.subscriptions.append(subscription)
        return {"webhookSubscription": self._subscription_node(subscription, version), "userErrors": []}

    @staticmethod
    def _subscription_node(subscription: dict[str, Any], version: str) -> dict[str, Any]:
        node = {"id": subscription["id"], "topic": subscription["topic"], "format": subscription["format"]}
        if version >= "2025-10":  # https://shopify.dev/changelog/consolidate-webhook-graphql-surfaces
            return {**node, "uri": subscription["address"]}
        return {**node, "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": subscription["address"]}}

    def _discount(self, basic: dict[str, Any]) -> dict[str, Any]:
        code = str(basic.get("code") or "")
        if code.upper() in self._state.discounts:
            return {"codeDiscountNode": None, "userErrors": [
                {"field": ["basicCodeDiscount", "code"], "code": "TAKEN", "message": "Code must be unique. Please try a different code."}
            ]}
        eligibility = "context" if "context" in basic else "customerSelection"
        customers = ((basic.get(eligibility) or {}).get("customers") or {}).get("add") or []
        node = {
            "id": f"gid://shopify/DiscountCodeNode/{next(self._state.ids)}",
            "codeDiscount": {
                "title": basic.get("title"),
                "startsAt": basic.get("startsAt"),
                "endsAt": basic.get("endsAt"),
                "codes": {"nodes": [{"code": code}]},
                eligibility: {"customers": [{"id": c} for c in customers]},
            },
        }
        self._state.discounts[code.upper()] = node
        return {"codeDiscountNode": node, "userErrors": []}

    def _credit(self, variables: dict[str, Any]) -> dict[str, Any]:
        money = (variables.get("creditInput") or {}).get("creditAmount") or {}
        try:
            amount = Decimal(str(money["amount"]))
            currency = str(money["currencyCode"])
        except (KeyError, InvalidOperation):
            return {"storeCreditAccountTransaction": None,
                    "userErrors": [{"field": ["creditInput", "creditAmount"], "message": "Amount is invalid", "code": "INVALID"}]}
        if amount <= 0:
            return {"storeCreditAccountTransaction": None,
                    "userErrors": [{"field": ["creditInput", "creditAmount", "amount"], "message": "Amount must be positive",
                                    "code": "NEGATIVE_OR_ZERO_AMOUNT"}]}
        owner = str(variables.get("id"))
        account = self._state.accounts.setdefault(
            owner,
            {
                "id": f"gid://shopify/StoreCreditAccount/{next(self._state.ids)}",
                "balance": {"amount": "0.0", "currencyCode": currency},
                "transactions": {"nodes": []},
            },
        )
        balance = Decimal(account["balance"]["amount"]) + amount
        account["balance"] = {"amount": str(balance), "currencyCode": currency}
        transaction = {
            "id": f"gid://shopify/StoreCreditAccountCreditTransaction/{next(self._state.ids)}",
            "amount": {"amount": str(amount), "currencyCode": currency},
            "createdAt": _now(),
        }
        account["transactions"]["nodes"].insert(0, transaction)
        return {
            "storeCreditAccountTransaction": {
                **transaction,
                "account": {"id": account["id"], "balance": account["balance"]},
            },
            "userErrors": [],
        }

    # -- HubSpot CRM v3 ------------------------------------------------------------------------
    def _hubspot_contact_search(self, request: Request, body: dict[str, Any]) -> Response:
        filters = [f for group in body.get("filterGroups") or [] for f in group.get("filters") or []]
        email = next((str(f.get("value")).lower() for f in filters if f.get("propertyName") == "email"), None)
        contact = self._state.contacts.get(email or "")
        results = [contact] if contact else []
        return _json({"total": len(results), "results": results})

    def _hubspot_contact_create(self, request: Request, body: dict[str, Any]) -> Response:
        properties = dict(body.get("properties") or {})
        email = str(properties.get("email") or "").lower()
        if email in self._state.contacts:
            return _json({"status": "error", "message": "Contact already exists", "category": "CONFLICT"}, 409)
        now = _now()
        contact = {"id": str(next(self._state.ids)), "properties": properties, "createdAt": now, "updatedAt": now,
                   "archived": False}
        self._state.contacts[email] = contact
        return _json(contact, 201)

    def _hubspot_contact_list(self, request: Request, body: dict[str, Any]) -> Response:
        return _json({"results": list(self._state.contacts.values())[:1]})

    def _hubspot_contact_read(self, request: Request, body: dict[str, Any], contact: str) -> Response:
        found = self._state.contacts.get(contact.lower())
        if found is None:
            return _json({"status": "error", "message": "resource not found", "category": "OBJECT_NOT_FOUND"}, 404)
        return _json(found)

    def _hubspot_note_create(self, request: Request, body: dict[str, Any]) -> Response:
        now = _now()
        note = {
            "id": str(next(self._state.ids)),
            "properties": {**(body.get("properties") or {}), "hs_createdate": now},
            "associations": body.get("associations") or [],
            "createdAt": now,
            "updatedAt": now,
            "archived": False,
        }
        self._state.notes.append(note)
        return _json({k: v for k, v in note.items() if k != "associations"}, 201)

    def _hubspot_note_search(self, request: Request, body: dict[str, Any]) -> Response:
        filters = [f for group in body.get("filterGroups") or [] for f in group.get("filters") or []]
        contact_id = next((str(f.get("value")) for f in filters if f.get("propertyName") == "associations.contact"), None)
        results = [
            {"id": n["id"], "properties": n["properties"]}
            for n in reversed(self._state.notes)
            if any(str((a.get("to") or {}).get("id")) == contact_id for a in n["associations"])
        ]
        return _json({"total": len(results), "results": results})

    def _hubspot_single_send(self, request: Request, body: dict[str, Any]) -> Response:
        message = body.get("message") or {}
        if not isinstance(body.get("emailId"), int) or not message.get("to"):
            return _json({"status": "error", "category": "VALIDATION_ERROR", "message": "emailId and message.to are required"},
                         400)
        send_id = str(message.get("sendId") or next(self._state.ids))
        result = "IDEMPOTENT_IGNORE" if send_id in self._state.sends else "SENT"
        self._state.sends.add(send_id)
        now = _now()
        return _json({"requestedAt": now, "startedAt": now, "completedAt": now, "statusId": f"status-{next(self._state.ids)}",
                      "status": "COMPLETE", "sendResult": result})

    # -- Slack Web API -------------------------------------------------------------------------
    def _slack(self, request: Request, body: dict[str, Any], api_method: str) -> Response:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return _json({"ok": False, "error": "not_authed"})
        if api_method == "auth.test":
            return _json({"ok": True, "team": "Red Hill Fresh", "user": "milestones", "bot_id": "B0MILESTONE"})
        if api_method == "chat.postMessage":
            ts = f"{int(datetime.now(UTC).timestamp())}.{next(self._state.ids):06d}"
            message = {"type": "message", "ts": ts, "text": body.get("text"), "blocks": body.get("blocks"),
                       "metadata": body.get("metadata")}
            self._state.messages.append(message)
            return _json({"ok": True, "channel": SLACK_CHANNEL_ID, "ts": ts, "message": message})
        if api_method in ("chat.update", "conversations.history"):
            channel = str(body.get("channel") or request.args.get("channel") or "")
            if not CHANNEL_ID.fullmatch(channel):  # like Slack: these take a conversation ID, not a #name
                return _json({"ok": False, "error": "channel_not_found"})
        if api_method == "chat.update":
            return _json({"ok": True, "channel": body.get("channel"), "ts": body.get("ts"), "text": body.get("text")})
        if api_method == "users.lookupByEmail":
            return _json({"ok": False, "error": "users_not_found"})
        if api_method == "conversations.history":
            return _json({"ok": True, "messages": list(reversed(self._state.messages))[:200], "has_more": False})
        return _json({"ok": False, "error": "unknown_method"})


def _operation(body: Any) -> str:
    """The GraphQL operation's name (``mutation tagsAdd(…)`` → ``tagsAdd``), or ""."""
    named = OPERATION.search(str((body or {}).get("query") or "")) if isinstance(body, dict) else None
    return named.group(1) if named else ""


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


class _QuietHandler(WSGIRequestHandler):
    """Keep-alive, and no access log: the stand-ins' traffic is summarised by the report instead."""

    protocol_version = "HTTP/1.1"  # the connectors' requests.Session reuses one connection

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class StandInServer:
    """The stand-ins on 127.0.0.1 and a free port, served from a daemon thread."""

    def __init__(self, standins: StandIns | None = None) -> None:
        self.standins = standins or StandIns()
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self.standins, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-standins", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def base_url(self, service: str) -> str:
        """The connection ``base_url`` that sends a connector's calls to its stand-in."""
        return {SHOPIFY: f"{self.url}/shopify", HUBSPOT: f"{self.url}/hubspot", SLACK: f"{self.url}/slack/api"}[service]

    def start(self) -> StandInServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
