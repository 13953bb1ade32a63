"""Every inbound source, by platform name."""

from __future__ import annotations

from webhooks.base import WebhookSource
from webhooks.hubspot import HubSpotSource
from webhooks.shopify import ShopifySource
from webhooks.usage import UsageSource
from webhooks.woocommerce import WooCommerceSource

SOURCES: dict[str, WebhookSource] = {
    source.platform: source for source in (ShopifySource(), WooCommerceSource(), UsageSource(), HubSpotSource())
}


def source_for(platform: str) -> WebhookSource | None:
    return SOURCES.get(platform)
