"""Inbound: how each platform talks to us. Verify, find the dedupe key, normalise to events."""
