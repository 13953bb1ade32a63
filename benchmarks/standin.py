"""A local stand-in for Shopify's Admin GraphQL endpoint, so store-credit effects never leave the machine.

The bench workspace has one connection, Shopify, whose ``base_url`` points here. Of the default
catalogue's recognitions only store credit (order-25, order-50) needs Shopify; notes, Slack
alerts, emails and tags are planned as ``no_connection`` and tasks as ``open_task``, so this
server sees exactly one call per credit. It answers ``storeCreditAccountCredit`` in the documented
shape (https://shopify.dev/docs/api/admin-graphql/latest/mutations/storeCreditAccountCredit) and
records every call (operation and variables), so the benchmark can check "one call per effect".
Tags (``tagsAdd``) and discount codes (``discountCodeBasicCreate``) are answered the same way.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _credit(variables: dict, number: int) -> dict:
    amount = (variables.get("creditInput") or {}).get("creditAmount") or {}
    money = {"amount": amount.get("amount"), "currencyCode": amount.get("currencyCode")}
    return {"storeCreditAccountCredit": {
        "storeCreditAccountTransaction": {
            "id": f"gid://shopify/StoreCreditAccountCreditTransaction/{number}", "amount": money,
            "createdAt": "2026-07-01T00:00:00Z",
            "account": {"id": f"gid://shopify/StoreCreditAccount/{number}", "balance": money},
        },
        "userErrors": [],
    }}


def _tags(variables: dict, number: int) -> dict:
    return {"tagsAdd": {"node": {"id": variables.get("id")}, "userErrors": []}}


def _discount(variables: dict, number: int) -> dict:
    return {"discountCodeBasicCreate": {
        "codeDiscountNode": {"id": f"gid://shopify/DiscountCodeNode/{number}"}, "userErrors": []}}


# GraphQL operation name in the query -> documented answer shape
ANSWERS = {"storeCreditAccountCredit": _credit, "tagsAdd": _tags, "discountCodeBasicCreate": _discount}


class StandIn:
    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()  # (operation, variables) -> times
        self.lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                query = str(body.get("query") or "")
                variables = body.get("variables") or {}
                operation = next((name for name in ANSWERS if name in query), "unknown")
                with standin.lock:
                    standin.calls[(operation, json.dumps(variables, sort_keys=True))] += 1
                    number = sum(standin.calls.values())
                answer = json.dumps({"data": ANSWERS.get(operation, lambda v, n: {})(variables, number)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> StandIn:
        self.thread.start()
        return self

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
