"""HTTP: inbound webhooks, health, and the admin API."""
