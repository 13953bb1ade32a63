"""plugin.json is the outside world's view of the plugin: it must match the code."""

from __future__ import annotations

import json
from pathlib import Path

from connectors.registry import CONNECTORS
from plugin.schema import heads
from plugin.web import ingest
from webhooks.registry import SOURCES
from webhooks.shopify import TOPICS

MANIFEST = json.loads((Path(__file__).resolve().parent.parent / "plugin.json").read_text())


def test_every_webhook_source_is_in_the_manifest_and_back():
    assert set(MANIFEST["webhooks"]) == set(SOURCES)


def test_the_shopify_topics_are_the_ones_the_source_accepts():
    assert set(MANIFEST["webhooks"]["shopify"]["topics"]) == set(TOPICS)


def test_every_connector_is_in_the_manifest_with_its_kind_capabilities_and_settings():
    assert set(MANIFEST["connectors"]) == set(CONNECTORS)
    for platform, cls in CONNECTORS.items():
        entry = MANIFEST["connectors"][platform]
        assert entry["kind"] == cls.kind
        assert set(entry["capabilities"]) == {c.value for c in cls.capabilities}
        assert set(entry["settings"]) == set(cls.settings_schema._declared_fields)


def test_every_manifest_endpoint_is_a_route_of_the_app(app):
    rules = {rule.rule for rule in app.url_map.iter_rules()} | set(ingest.ROUTES)
    for name, path in MANIFEST["endpoints"].items():
        assert path.rstrip("/") in {r.rstrip("/") for r in rules} or path == "/api/", name
    assert MANIFEST["webhooks"]["shopify"]["endpoint"] in rules


def test_the_migrations_have_one_head():
    assert len(heads()) == 1
