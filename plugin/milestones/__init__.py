"""Milestone definitions, awarding, and planning how each award is celebrated."""
