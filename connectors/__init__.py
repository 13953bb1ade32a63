"""Outbound: how we talk to each platform. One module per platform, one registry."""
