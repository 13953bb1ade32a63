"""Slack interactivity: the buttons of PRD-114's alert, answered at ``/slack/interactions/<id>``.

``signature`` checks Slack's request signing, ``interactions`` is the endpoint (verify, parse,
hand to a job, answer 200 with an empty body well inside Slack's 3 seconds), and ``actions`` is
the job: record what the button asked for, once, then update the alert to show who did it.
"""
