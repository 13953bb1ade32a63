"""From inbox rows to counters and milestones, one transaction per batch."""
