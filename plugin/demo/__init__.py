"""``milestones demo``: a realistic sample store replayed through the real webhook endpoint."""
