"""Every connector, by platform name. Adding a platform means one module and one line here."""

from __future__ import annotations

from connectors.base import Capability, Connector
from connectors.hubspot import HubSpotConnector
from connectors.klaviyo import KlaviyoConnector
from connectors.salesforce import SalesforceConnector
from connectors.shopify import ShopifyConnector
from connectors.slack import SlackConnector
from connectors.smtp import SmtpConnector
from connectors.usage import UsageConnector
from connectors.woocommerce import WooCommerceConnector

CONNECTORS: dict[str, type[Connector]] = {
    cls.platform: cls for cls in (ShopifyConnector, HubSpotConnector, SalesforceConnector, SlackConnector, WooCommerceConnector,
                UsageConnector, KlaviyoConnector, SmtpConnector)
}


def connector_class(platform: str) -> type[Connector]:
    try:
        return CONNECTORS[platform]
    except KeyError:
        raise KeyError(f"unknown platform {platform!r}; known: {', '.join(sorted(CONNECTORS))}") from None


def platforms_with(capability: Capability) -> list[str]:
    return [name for name, cls in CONNECTORS.items() if capability in cls.capabilities]
