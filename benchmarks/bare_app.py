"""The bare endpoint the ingest path is compared with: read the body, verify the Shopify HMAC, 200.

A plain WSGI callable (no Flask, no database, no Redis), served by gunicorn with exactly the
settings of the ingest run. The secret comes from ``BENCH_SHOP_SECRET``.
"""

from __future__ import annotations

import os

from webhooks.shopify import ShopifySource

_SOURCE = ShopifySource()
_SECRETS = [os.environ.get("BENCH_SHOP_SECRET", "")]


def app(environ, start_response):  # type: ignore[no-untyped-def]
    if environ["REQUEST_METHOD"] != "POST":
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    headers = {key[5:].replace("_", "-"): value for key, value in environ.items() if key.startswith("HTTP_")}
    verdict = _SOURCE.verify(body, headers, _SECRETS, url="http://bench/webhooks/shopify", method="POST")
    if not verdict.ok:
        answer = b'{"error":"signature verification failed"}'
        start_response("401 UNAUTHORIZED", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
        return [answer]
    answer = b'{"status":"ok"}'
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
    return [answer]
