"""A local stand-in for Shopify's Admin GraphQL endpoint, so store-credit effects never leave the machine.

The bench workspace has one connection, Shopify, whose ``base_url`` points here. Of the default
catalogue's recognitions only store credit (order-25, order-50) needs Shopify; notes, Slack
alerts, emails and tags are planned as ``no_connection`` and tasks as ``open_task``, so this
server sees exactly one call per credit. It answers ``storeCreditAccountCredit`` in the documented
shape (https://shopify.dev/docs/api/admin-graphql/latest/mutations/storeCreditAccountCredit) and
records who was credited, so the benchmark can check "one credit per milestone".
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StandIn:
    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                variables = body.get("variables") or {}
                amount = ((variables.get("creditInput") or {}).get("creditAmount") or {})
                with standin.lock:
                    standin.calls[(str(variables.get("id")), str(amount.get("amount")))] += 1
                    number = sum(standin.calls.values())
                answer = json.dumps({
                    "data": {
                        "storeCreditAccountCredit": {
                            "storeCreditAccountTransaction": {
                                "id": f"gid://shopify/StoreCreditAccountCreditTransaction/{number}",
                                "amount": {"amount": amount.get("amount"), "currencyCode": amount.get("currencyCode")},
                                "createdAt": "2026-07-01T00:00:00Z",
                                "account": {
                                    "id": f"gid://shopify/StoreCreditAccount/{number}",
                                    "balance": {"amount": amount.get("amount"), "currencyCode": amount.get("currencyCode")},
                                },
                            },
                            "userErrors": [],
                        }
                    }
                }).encode()
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
