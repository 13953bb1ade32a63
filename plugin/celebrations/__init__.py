"""Celebration emails: the seeds' messages as templates, rendered in a sandbox when the email runs.

``templates`` holds the defaults and finds a workspace's overrides, ``render`` turns a template
and a context into subject/html/text, ``context`` gathers the personalisation and the rewards
actually given, and ``prepare`` is the effect runner's hook that builds the email from the
database once the milestone's rewards are settled.
"""
